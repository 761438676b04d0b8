/**
 * Per-head bookkeeping shared by every metric: accumulate one number per (layer, head) and sample,
 * report the mean with the number of samples it rests on (methods.md: "every metric is reported per
 * (layer, head) as a number, with the number of samples it rests on"), fold query heads into KV heads
 * for the KV policies (max over the group), and pick the top heads. NaN samples (a metric whose domain
 * was empty on that sample) are skipped, not counted.
 */
import { kvHeadOf, type HeadId } from '../runtime/capture.js';
import { check } from '../errors.js';

/** One score per head: `mean[layer][head]` (NaN without samples) and `samples[layer][head]`. */
export interface HeadScores {
  numLayers: number;
  numHeads: number;
  mean: number[][];
  samples: number[][];
}

/** Running mean per (layer, head). */
export class HeadAccumulator {
  private readonly sum: Float64Array;
  private readonly count: Int32Array;

  constructor(
    readonly numLayers: number,
    readonly numHeads: number,
  ) {
    check(Number.isInteger(numLayers) && numLayers > 0 && Number.isInteger(numHeads) && numHeads > 0,
      `HeadAccumulator needs positive layer and head counts (got ${numLayers} × ${numHeads})`);
    this.sum = new Float64Array(numLayers * numHeads);
    this.count = new Int32Array(numLayers * numHeads);
  }

  private index(head: HeadId): number {
    check(
      Number.isInteger(head.layer) && Number.isInteger(head.head) &&
        head.layer >= 0 && head.layer < this.numLayers && head.head >= 0 && head.head < this.numHeads,
      `head ${head.layer}.${head.head} is outside ${this.numLayers} layers × ${this.numHeads} heads`,
    );
    return head.layer * this.numHeads + head.head;
  }

  /** Adds one sample; NaN is skipped (the sample had nothing to measure). Infinity is kept. */
  add(head: HeadId, value: number): void {
    const i = this.index(head);
    if (Number.isNaN(value)) return;
    this.sum[i] += value;
    this.count[i]++;
  }

  /** Adds one sample for every head: `values[layer][head]`. */
  addAll(values: number[][]): void {
    check(values.length === this.numLayers, `addAll: ${values.length} layers given, expected ${this.numLayers}`);
    values.forEach((row, layer) => {
      check(row.length === this.numHeads, `addAll: layer ${layer} has ${row.length} heads, expected ${this.numHeads}`);
      row.forEach((v, head) => this.add({ layer, head }, v));
    });
  }

  mean(head: HeadId): number {
    const i = this.index(head);
    return this.count[i] > 0 ? this.sum[i] / this.count[i] : NaN;
  }

  samples(head: HeadId): number {
    return this.count[this.index(head)];
  }

  result(): HeadScores {
    const table = <T>(f: (head: HeadId) => T) =>
      Array.from({ length: this.numLayers }, (_, layer) => Array.from({ length: this.numHeads }, (_, head) => f({ layer, head })));
    return {
      numLayers: this.numLayers,
      numHeads: this.numHeads,
      mean: table((h) => this.mean(h)),
      samples: table((h) => this.samples(h)),
    };
  }
}

/**
 * Folds query heads into KV heads for GQA: `mean[layer][g]` = max over the query heads h with
 * `kvHeadOf(h) === g` (NaN values ignored; NaN when the whole group is NaN), and `samples` = those of the
 * query head that gave the max (0 for an all-NaN group). With numKvHeads = numHeads it is the identity.
 */
export function perKvHead(scores: HeadScores, numKvHeads: number): HeadScores {
  check(
    Number.isInteger(numKvHeads) && numKvHeads > 0 && scores.numHeads % numKvHeads === 0,
    `${scores.numHeads} query heads do not split into ${numKvHeads} KV head groups`,
  );
  const mean: number[][] = [];
  const samples: number[][] = [];
  for (let l = 0; l < scores.numLayers; l++) {
    const m = new Array<number>(numKvHeads).fill(NaN);
    const n = new Array<number>(numKvHeads).fill(0);
    for (let h = 0; h < scores.numHeads; h++) {
      const g = kvHeadOf(h, scores.numHeads, numKvHeads);
      const v = scores.mean[l][h];
      if (!Number.isNaN(v) && (Number.isNaN(m[g]) || v > m[g])) {
        m[g] = v;
        n[g] = scores.samples[l][h];
      }
    }
    mean.push(m);
    samples.push(n);
  }
  return { numLayers: scores.numLayers, numHeads: numKvHeads, mean, samples };
}

/**
 * The k heads with the highest values, best first (NaN never ranks; ties keep layer-major order).
 * With KV-head tables from `perKvHead`, `head` is a KV head index.
 */
export function topHeads(values: number[][], k: number): HeadId[] {
  const all: { id: HeadId; v: number }[] = [];
  values.forEach((row, layer) => row.forEach((v, head) => {
    if (!Number.isNaN(v)) all.push({ id: { layer, head }, v });
  }));
  all.sort((a, b) => b.v - a.v);
  return all.slice(0, Math.max(0, k)).map((e) => e.id);
}
