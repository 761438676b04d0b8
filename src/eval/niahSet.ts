/**
 * The standard needle set headwise evaluates and analyses on: for each context length, `samples`
 * needle prompts spread evenly over the depths (contiguous blocks, so every depth gets its share), one
 * in three a pass key and the rest multi-key retrieval with `keyCount` keys (the mix of the reference
 * analyses in ../shared/reference), the multi-key ones alternating the two key/value phrasings the
 * reference models were trained on. A sample's seed depends only on (seed, context length, depth,
 * index), as in `grid.ts`. Pure: running the samples is `niahRun.ts`'s and the atlas's.
 */
import { check } from '../errors.js';
import { gridSampleSeed } from './grid.js';
import { generateNeedleSample, type NeedleSample, type NeedleSpec } from './needle.js';
import { MAGIC_NUMBER_TEMPLATE, SECRET_CODE_TEMPLATE } from './templates.js';
import type { TextTokenizer } from './textTokenizer.js';

/** Depths of the default grid: start, quarters, end. */
export const DEFAULT_DEPTHS: readonly number[] = [0, 0.25, 0.5, 0.75, 1];

export type NeedleMix = 'mixed' | 'passKey' | 'multiKey';
export const NEEDLE_MIXES: readonly NeedleMix[] = ['mixed', 'passKey', 'multiKey'];

export interface NiahSetSpec {
  contextTokens: number[];
  depths: readonly number[];
  /** Samples per context length, spread over the depths. */
  samples: number;
  seed: number;
  /** `mixed` (default): one in three pass key, the rest multi-key. */
  mix?: NeedleMix;
  /** Needles in a multi-key sample (default 4). */
  keyCount?: number;
}

export interface NiahItem {
  contextTokens: number;
  depth: number;
  /** Index among the samples of its context length. */
  index: number;
  sample: NeedleSample;
}

/** Depth of sample `index` of `samples`: the depths in contiguous, near-equal blocks. */
export function depthOf(index: number, samples: number, depths: readonly number[]): number {
  return depths[Math.floor((index * depths.length) / samples)];
}

/** Every sample of the set, context lengths outermost. */
export function niahSamples(tokenizer: TextTokenizer, haystack: string, spec: NiahSetSpec): NiahItem[] {
  check(Number.isInteger(spec.samples) && spec.samples > 0, `samples must be a positive integer (got ${spec.samples})`);
  check(spec.contextTokens.length > 0 && spec.depths.length > 0, 'a needle set needs at least one context length and one depth');
  const keyCount = spec.keyCount ?? 4;
  const mix = spec.mix ?? 'mixed';
  const items: NiahItem[] = [];
  for (const contextTokens of spec.contextTokens) {
    let multi = 0;
    for (let index = 0; index < spec.samples; index++) {
      const depth = depthOf(index, spec.samples, spec.depths);
      const seed = gridSampleSeed(spec.seed, contextTokens, depth, index);
      const passKey = mix === 'passKey' || (mix === 'mixed' && index % 3 === 0);
      const needle: NeedleSpec = passKey
        ? { variant: 'passKey', contextTokens, depth, seed }
        : { variant: 'multiKey', keyCount, contextTokens, depth, seed, template: multi++ % 2 === 0 ? MAGIC_NUMBER_TEMPLATE : SECRET_CODE_TEMPLATE };
      items.push({ contextTokens, depth, index, sample: generateNeedleSample(tokenizer, haystack, needle) });
    }
  }
  return items;
}
