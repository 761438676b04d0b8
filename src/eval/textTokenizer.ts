/**
 * The one thing the evaluation generators need from a tokenizer: text → ids (with the special tokens
 * the model's post-processor adds, e.g. BOS) and ids → text. `hf/tokenizer.ts`'s `HfTokenizer` fits
 * this shape; tests may wrap `@huggingface/tokenizers` directly. Nothing here assumes a vocabulary.
 */
import { check } from '../errors.js';

export interface TextTokenizer {
  /** Ids of `text`, with the special tokens the model expects in front (e.g. BOS). */
  encode(text: string): number[];
  /** Text of `ids` (ids without special tokens must decode to the text that produced them, up to the
   *  decoder's usual clean-up of spaces before punctuation). */
  decode(ids: number[]): string;
}

/** How many special tokens `encode` puts in front of any text (1 for a BOS-adding tokenizer). */
export function specialPrefixLength(tokenizer: TextTokenizer): number {
  const empty = tokenizer.encode('');
  const probe = tokenizer.encode('a');
  check(
    empty.every((id, i) => probe[i] === id) && probe.length > empty.length,
    'tokenizer: encode("") is not a prefix of encode("a"); special tokens must come first',
  );
  return empty.length;
}

/** Number of tokens `text` adds after the special prefix. */
export function countTokens(tokenizer: TextTokenizer, text: string, prefix = specialPrefixLength(tokenizer)): number {
  return tokenizer.encode(text).length - prefix;
}
