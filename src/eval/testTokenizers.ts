/**
 * Tokenizers for the tests of `eval/`: the bundled ref-llama-7m tokenizer through the project's
 * `HfTokenizer` (whose decode cleans up spaces before punctuation, as the JS library does by default),
 * and the same tokenizer wrapped straight from `@huggingface/tokenizers` with clean-up off. Both must
 * give the same samples. Not exported from `eval/index.ts`.
 */
import fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Tokenizer } from '@huggingface/tokenizers';
import { HfTokenizer } from '../hf/tokenizer.js';
import type { TextTokenizer } from './textTokenizer.js';

export const REF_TOKENIZER_DIR = fileURLToPath(new URL('../../models/ref-llama-7m/', import.meta.url));

let hf: HfTokenizer | undefined;
let raw: TextTokenizer | undefined;

/** `HfTokenizer` of ref-llama-7m (BOS id 0 prepended by encode). */
export function refTokenizer(): HfTokenizer {
  return (hf ??= HfTokenizer.load(REF_TOKENIZER_DIR));
}

/** `new Tokenizer(tokenizer.json, tokenizer_config.json)` as a TextTokenizer, decoding without clean-up. */
export function rawRefTokenizer(): TextTokenizer {
  if (!raw) {
    const read = (f: string) => JSON.parse(fs.readFileSync(REF_TOKENIZER_DIR + f, 'utf8'));
    const tok = new Tokenizer(read('tokenizer.json'), read('tokenizer_config.json'));
    raw = {
      encode: (text) => tok.encode(text).ids,
      decode: (ids) => tok.decode(ids, { clean_up_tokenization_spaces: false }),
    };
  }
  return raw;
}
