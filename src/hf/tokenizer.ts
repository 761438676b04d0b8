/**
 * Text <-> token ids through the Hugging Face JS tokenizer (`@huggingface/tokenizers`) reading the
 * model's own tokenizer.json / tokenizer_config.json, and chat templates through `@huggingface/jinja`.
 * Also gives each token's character span in the decoded text, which needle spans and PASTA highlights
 * need.
 */
import fs from 'node:fs';
import path from 'node:path';
import { Tokenizer } from '@huggingface/tokenizers';
import { Template } from '@huggingface/jinja';
import { HeadwiseError } from '../errors.js';

export interface ChatMessage {
  role: string;
  content: string;
}

function readJson(file: string, required: boolean): Record<string, unknown> | null {
  if (!fs.existsSync(file)) {
    if (required) throw new HeadwiseError(`${file}: not found`);
    return null;
  }
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    throw new HeadwiseError(`${file}: not valid JSON (${(e as Error).message})`);
  }
}

export class HfTokenizer {
  private readonly tok: Tokenizer;
  private readonly chatTemplate: Template | null;
  readonly config: Record<string, unknown>;

  private constructor(tokenizerJson: Record<string, unknown>, config: Record<string, unknown>, where: string) {
    try {
      this.tok = new Tokenizer(tokenizerJson as never, config as never);
    } catch (e) {
      throw new HeadwiseError(`${where}: cannot build tokenizer (${(e as Error).message})`);
    }
    this.config = config;
    const tpl = config.chat_template;
    this.chatTemplate = typeof tpl === 'string' ? new Template(tpl) : null;
  }

  static load(dir: string): HfTokenizer {
    const file = path.join(dir, 'tokenizer.json');
    const json = readJson(file, true)!;
    const config = readJson(path.join(dir, 'tokenizer_config.json'), false) ?? {};
    return new HfTokenizer(json, config, file);
  }

  /** Token ids of `text`, with the special tokens the model's post-processor adds (e.g. BOS). */
  encode(text: string, addSpecialTokens = true): number[] {
    return this.tok.encode(text, { add_special_tokens: addSpecialTokens } as never).ids;
  }

  decode(ids: number[], skipSpecialTokens = true): string {
    return this.tok.decode(ids, { skip_special_tokens: skipSpecialTokens } as never);
  }

  /** The token's surface string (e.g. "ĠThe"). */
  tokenString(id: number): string {
    return this.tok.decode([id], { skip_special_tokens: false, clean_up_tokenization_spaces: false } as never);
  }

  get hasChatTemplate(): boolean {
    return this.chatTemplate !== null;
  }

  /** Renders messages with the tokenizer's chat template. */
  applyChatTemplate(messages: ChatMessage[], addGenerationPrompt = true): string {
    if (!this.chatTemplate) throw new HeadwiseError('tokenizer_config.json has no chat_template');
    return this.chatTemplate.render({
      messages,
      add_generation_prompt: addGenerationPrompt,
      bos_token: this.config.bos_token ?? '',
      eos_token: this.config.eos_token ?? '',
    });
  }

  /**
   * Character span [start, end) of every token within `decode(ids, false)`, computed from the lengths
   * of cumulative decodes so multi-byte characters split across tokens stay consistent.
   */
  offsets(ids: number[]): Array<[number, number]> {
    const spans: Array<[number, number]> = [];
    let prev = 0;
    let text = '';
    // Decoding each prefix is quadratic; decode token by token and re-sync only when a token is not
    // a whole character sequence on its own (byte-level fragments show up as U+FFFD).
    for (let i = 0; i < ids.length; i++) {
      const piece = this.tok.decode([ids[i]], { skip_special_tokens: false, clean_up_tokenization_spaces: false } as never);
      if (piece.includes('\uFFFD')) {
        text = this.tok.decode(ids.slice(0, i + 1), { skip_special_tokens: false, clean_up_tokenization_spaces: false } as never);
      } else {
        text += piece;
      }
      // A token that only completes a character begun by the previous one shares that character.
      spans.push(text.length === prev && prev > 0 ? [prev - 1, prev] : [prev, text.length]);
      prev = text.length;
    }
    return spans;
  }
}
