/**
 * Text <-> token ids through the Hugging Face JS tokenizer (`@huggingface/tokenizers`) reading the
 * model's own tokenizer.json / tokenizer_config.json, and chat templates through `@huggingface/jinja`.
 * Also gives each token's character span in the decoded text, which needle spans and PASTA highlights
 * need. Both files are checked first (`tokenizerChecks.ts`); the library's own failures on what passes
 * are reported as a malformed file, never as its internal messages; the chat template is compiled on
 * first use, so a broken one only matters to `--chat`.
 */

/** A library failure as one line: its own messages kept, JavaScript engine errors (TypeError …) not. */
function libraryFailure(e: unknown): string {
  if (e instanceof TypeError || e instanceof RangeError || e instanceof ReferenceError || e instanceof SyntaxError) return 'the tokenizer library cannot use it';
  return String((e as Error)?.message ?? e).split('\n')[0];
}
import fs from 'node:fs';
import path from 'node:path';
import { Tokenizer } from '@huggingface/tokenizers';
import { Template } from '@huggingface/jinja';
import { HeadwiseError } from '../errors.js';
import { checkTokenizerConfig, checkTokenizerJson } from './tokenizerChecks.js';

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
  private readonly templateSource: string | null;
  private chatTemplate: Template | null = null;
  readonly config: Record<string, unknown>;

  private constructor(tokenizerJson: unknown, config: unknown, where: string, configWhere = 'tokenizer_config.json') {
    checkTokenizerJson(tokenizerJson, where);
    checkTokenizerConfig(config, configWhere);
    try {
      this.tok = new Tokenizer(tokenizerJson as never, config as never);
      // Some parts are only built on first use: run them once here, where the file can be named.
      this.tok.decode(this.tok.encode('Hello, world 1', { add_special_tokens: true } as never).ids, { skip_special_tokens: false } as never);
    } catch (e) {
      throw new HeadwiseError(`${where}: malformed tokenizer (${libraryFailure(e)})`);
    }
    this.config = config;
    const tpl = config.chat_template;
    this.templateSource = typeof tpl === 'string' ? tpl : Array.isArray(tpl) ? ((tpl.find((t) => t.name === 'default') ?? tpl[0])?.template ?? null) : null;
  }

  /** Builds a tokenizer from parsed tokenizer.json / tokenizer_config.json objects (checked first). */
  static fromJson(tokenizerJson: unknown, config: unknown = {}, where = 'tokenizer.json', configWhere = 'tokenizer_config.json'): HfTokenizer {
    return new HfTokenizer(tokenizerJson, config, where, configWhere);
  }

  static load(dir: string): HfTokenizer {
    const file = path.join(dir, 'tokenizer.json');
    const configFile = path.join(dir, 'tokenizer_config.json');
    const json = readJson(file, true)!;
    const config = readJson(configFile, false) ?? {};
    return new HfTokenizer(json, config, file, configFile);
  }

  /** Token ids of `text`, with the special tokens the model's post-processor adds (e.g. BOS). */
  encode(text: string, addSpecialTokens = true): number[] {
    try {
      return this.tok.encode(text, { add_special_tokens: addSpecialTokens } as never).ids;
    } catch (e) {
      throw new HeadwiseError(`tokenizer: cannot encode the text (${libraryFailure(e)})`);
    }
  }

  decode(ids: number[], skipSpecialTokens = true): string {
    try {
      return this.tok.decode(ids, { skip_special_tokens: skipSpecialTokens } as never);
    } catch (e) {
      throw new HeadwiseError(`tokenizer: cannot decode ${ids.length} ids (${libraryFailure(e)})`);
    }
  }

  /** The token's surface string (e.g. "ĠThe"). */
  tokenString(id: number): string {
    return this.tok.decode([id], { skip_special_tokens: false, clean_up_tokenization_spaces: false } as never);
  }

  get hasChatTemplate(): boolean {
    return this.templateSource !== null;
  }

  /** Renders messages with the tokenizer's chat template (compiled on first use). */
  applyChatTemplate(messages: ChatMessage[], addGenerationPrompt = true): string {
    if (this.templateSource === null) throw new HeadwiseError('tokenizer_config.json has no chat_template');
    try {
      this.chatTemplate ??= new Template(this.templateSource);
    } catch (e) {
      throw new HeadwiseError(`tokenizer_config.json: chat_template does not compile (${libraryFailure(e)})`);
    }
    const token = (v: unknown) => (typeof v === 'object' && v !== null ? (v as { content: string }).content : v ?? '');
    try {
      return this.chatTemplate.render({
        messages,
        add_generation_prompt: addGenerationPrompt,
        bos_token: token(this.config.bos_token),
        eos_token: token(this.config.eos_token),
      });
    } catch (e) {
      throw new HeadwiseError(`tokenizer_config.json: chat_template failed to render (${libraryFailure(e)})`);
    }
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
