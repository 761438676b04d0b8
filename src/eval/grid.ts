/**
 * The NIAH grid (methods.md §4): samples for every (context length × depth) cell, and accuracy per
 * cell, per context length, per depth and overall once the caller has generated and scored them.
 * A sample's seed depends only on the grid seed, its context length, its depth and its index in the
 * cell, so adding a row or a column to a grid leaves the other cells' samples unchanged.
 */
import { check } from '../errors.js';
import { generateNeedleSample, type NeedleSample, type NeedleSpec } from './needle.js';
import { deriveSeed } from './random.js';
import type { TextTokenizer } from './textTokenizer.js';

type Without<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;

/** A needle spec without the fields the grid fills in. */
export type NeedleVariantSpec = Without<NeedleSpec, 'contextTokens' | 'depth' | 'seed'>;

export interface NiahGridSpec {
  contextTokens: number[];
  depths: number[];
  samplesPerCell: number;
  seed: number;
  /** Variant and its options, e.g. `{ variant: 'multiKey', keyCount: 4 }`. */
  needle: NeedleVariantSpec;
}

export interface NiahGridCell {
  contextTokens: number;
  depth: number;
  samples: NeedleSample[];
}

/** Seed of sample `index` in cell (contextTokens, depth). */
export function gridSampleSeed(seed: number, contextTokens: number, depth: number, index: number): number {
  return deriveSeed(seed, contextTokens, Math.round(depth * 1e6), index);
}

/** All cells, context lengths outermost, in the order given. */
export function niahGrid(tokenizer: TextTokenizer, haystack: string, spec: NiahGridSpec): NiahGridCell[] {
  check(Number.isInteger(spec.samplesPerCell) && spec.samplesPerCell > 0, `samplesPerCell must be a positive integer (got ${spec.samplesPerCell})`);
  check(spec.contextTokens.length > 0 && spec.depths.length > 0, 'a NIAH grid needs at least one context length and one depth');
  const cells: NiahGridCell[] = [];
  for (const contextTokens of spec.contextTokens) {
    for (const depth of spec.depths) {
      const samples = Array.from({ length: spec.samplesPerCell }, (_, i) =>
        generateNeedleSample(tokenizer, haystack, {
          ...spec.needle,
          contextTokens,
          depth,
          seed: gridSampleSeed(spec.seed, contextTokens, depth, i),
        } as NeedleSpec),
      );
      cells.push({ contextTokens, depth, samples });
    }
  }
  return cells;
}

/** One scored sample. */
export interface NiahOutcome {
  contextTokens: number;
  depth: number;
  correct: boolean;
}

export interface NiahAccuracy {
  /** Distinct context lengths and depths, ascending. */
  contextTokens: number[];
  depths: number[];
  /** accuracy[i][j] for contextTokens[i], depths[j]; NaN for an empty cell. */
  accuracy: number[][];
  counts: number[][];
  /** Mean over samples per context length / per depth. */
  byContext: number[];
  byDepth: number[];
  /** Mean over all samples (equal to the mean over cells when cells are equally filled). */
  overall: number;
}

/** Accuracy grid of scored samples. */
export function niahAccuracy(outcomes: NiahOutcome[]): NiahAccuracy {
  const contextTokens = [...new Set(outcomes.map((o) => o.contextTokens))].sort((a, b) => a - b);
  const depths = [...new Set(outcomes.map((o) => o.depth))].sort((a, b) => a - b);
  const zeros = () => contextTokens.map(() => depths.map(() => 0));
  const right = zeros();
  const counts = zeros();
  for (const o of outcomes) {
    const i = contextTokens.indexOf(o.contextTokens);
    const j = depths.indexOf(o.depth);
    counts[i][j]++;
    if (o.correct) right[i][j]++;
  }
  const ratio = (r: number, n: number) => (n > 0 ? r / n : NaN);
  const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
  return {
    contextTokens,
    depths,
    accuracy: right.map((row, i) => row.map((r, j) => ratio(r, counts[i][j]))),
    counts,
    byContext: right.map((row, i) => ratio(sum(row), sum(counts[i]))),
    byDepth: depths.map((_, j) => ratio(sum(right.map((r) => r[j])), sum(counts.map((c) => c[j])))),
    overall: ratio(outcomes.filter((o) => o.correct).length, outcomes.length),
  };
}
