/**
 * Clean/corrupt pass-key pairs for activation patching and head importance: a pass-key sample
 * (`needle.ts`) and the same prompt with another value of the same digit count, chosen so that both
 * prompts have the same number of tokens, differ only inside the needle, and the two answers start
 * with different tokens (so a logit difference between them is defined). A pure function of
 * (tokenizer, haystack, spec), like the samples.
 */
import { HeadwiseError } from '../errors.js';
import { drawValues } from './keyValues.js';
import { generateNeedleSample } from './needle.js';
import { deriveSeed, Random } from './random.js';
import { specialPrefixLength, type TextTokenizer } from './textTokenizer.js';

export interface PassKeyPair {
  clean: string;
  corrupt: string;
  /** The clean answer, e.g. " 4829371". */
  answer: string;
  /** The corrupt prompt's answer. */
  wrong: string;
}

export function passKeyPair(tokenizer: TextTokenizer, haystack: string, spec: { contextTokens: number; depth: number; seed: number }): PassKeyPair {
  const sample = generateNeedleSample(tokenizer, haystack, { variant: 'passKey', ...spec });
  const prefix = specialPrefixLength(tokenizer);
  const v = sample.value;
  const cleanIds = sample.inputIds;
  const answer = ` ${v}`;
  const first = (text: string) => tokenizer.encode(text)[prefix];
  const rng = new Random(deriveSeed(spec.seed, 1));
  for (let attempt = 0; attempt < 64; attempt++) {
    const [w] = drawValues(rng, 1, 10 ** (v.length - 1), 10 ** v.length - 1);
    if (w === v) continue;
    const corrupt = sample.prompt.split(v).join(w);
    const ids = tokenizer.encode(corrupt);
    if (ids.length !== cleanIds.length || first(` ${w}`) === first(answer)) continue;
    // Only the needle's tokens may differ.
    const needle = sample.needles[sample.target].span;
    if (ids.some((id, i) => id !== cleanIds[i] && (i < needle.start || i >= needle.end))) continue;
    return { clean: sample.prompt, corrupt, answer, wrong: ` ${w}` };
  }
  throw new HeadwiseError(`pass-key pair (seed ${spec.seed}): no other value of ${v.length} digits tokenizes like ${v}`);
}
