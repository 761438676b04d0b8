import { describe, expect, it } from 'vitest';
import { kvHeadOf } from '../runtime/capture.js';
import { HeadAccumulator, perKvHead, topHeads, type HeadScores } from './aggregate.js';
import { copiesAt } from './retrieval.js';
import { attentionFromRows } from './rows.js';
import { sinkScore } from './sink.js';

/** T×T causal rows with A[t,0] = bos and the rest on the diagonal. */
function bosRows(T: number, bos: number): number[][] {
  return Array.from({ length: T }, (_, t) => {
    const row = new Array<number>(t + 1).fill(0);
    row[0] += t === 0 ? 1 : bos;
    if (t > 0) row[t] = 1 - bos;
    return row;
  });
}

describe('HeadAccumulator', () => {
  it('averages per head and counts samples', () => {
    const acc = new HeadAccumulator(2, 2);
    acc.add({ layer: 0, head: 1 }, 1);
    acc.add({ layer: 0, head: 1 }, 2);
    acc.addAll([[0.5, 3], [1, 2]]);
    const r = acc.result();
    expect(r.mean).toEqual([[0.5, 2], [1, 2]]);
    expect(r.samples).toEqual([[1, 3], [1, 1]]);
  });
  it('skips NaN samples and reports NaN with 0 samples for a head never measured', () => {
    const acc = new HeadAccumulator(1, 2);
    acc.add({ layer: 0, head: 0 }, NaN);
    acc.add({ layer: 0, head: 1 }, NaN);
    acc.add({ layer: 0, head: 1 }, 4);
    expect(acc.mean({ layer: 0, head: 0 })).toBeNaN();
    expect(acc.samples({ layer: 0, head: 0 })).toBe(0);
    expect(acc.mean({ layer: 0, head: 1 })).toBe(4);
    expect(acc.samples({ layer: 0, head: 1 })).toBe(1);
  });
  it('rejects heads outside the table', () => {
    const acc = new HeadAccumulator(2, 4);
    expect(() => acc.add({ layer: 2, head: 0 }, 1)).toThrow(/head 2\.0 is outside 2 layers × 4 heads/);
    expect(() => acc.addAll([[1, 2, 3, 4]])).toThrow(/1 layers given, expected 2/);
  });
});

describe('GQA: 8 query heads over 2 KV heads, per-KV-head = max over the group', () => {
  // Sink score per query head, from hand-made 10-token patterns (rows t = 8, 9 count).
  const bos = [0.1, 0.5, 0.2, 0.3, 0.05, 0.07, 0.9, 0.01];

  it('maps heads 0..3 to KV head 0 and 4..7 to KV head 1', () => {
    expect(bos.map((_, h) => kvHeadOf(h, 8, 2))).toEqual([0, 0, 0, 0, 1, 1, 1, 1]);
  });

  it('takes the max of the sink scores of each group, with the samples of the winning head', () => {
    const acc = new HeadAccumulator(1, 8);
    for (let sample = 0; sample < 2; sample++) {
      bos.forEach((b, head) => acc.add({ layer: 0, head }, sinkScore(attentionFromRows(bosRows(10, b)))));
    }
    acc.add({ layer: 0, head: 6 }, sinkScore(attentionFromRows(bosRows(10, 0.9)))); // a third sample
    const kv = perKvHead(acc.result(), 2);
    expect(kv.numHeads).toBe(2);
    expect(kv.mean[0][0]).toBeCloseTo(0.5, 6);
    expect(kv.mean[0][1]).toBeCloseTo(0.9, 6);
    expect(kv.samples).toEqual([[2, 3]]);
  });

  it('takes the max of retrieval copy rates too (windowed rows, rowOffset > 0)', () => {
    // 6 tokens, needle at [2, 4); the answer step is query 5 emitting token 13 (at key 3).
    const tokens = [0, 10, 12, 13, 14, 15];
    const topKey = [3, 0, 2, 5, 4, 3, 1, 0]; // where each query head looks most
    const rates = topKey.map((k) => {
      const row = new Array<number>(6).fill(0.02);
      row[k] = 0.9;
      return copiesAt(attentionFromRows([row], 5), 5, { start: 2, end: 4 }, tokens, 13) ? 1 : 0;
    });
    expect(rates).toEqual([1, 0, 0, 0, 0, 1, 0, 0]);
    const scores: HeadScores = { numLayers: 1, numHeads: 8, mean: [rates], samples: [rates.map(() => 1)] };
    expect(perKvHead(scores, 2).mean).toEqual([[1, 1]]);
  });

  it('ignores NaN inside a group and gives NaN for an all-NaN group', () => {
    const scores: HeadScores = {
      numLayers: 1,
      numHeads: 8,
      mean: [[NaN, 0.2, NaN, 0.1, NaN, NaN, NaN, NaN]],
      samples: [[0, 5, 0, 5, 0, 0, 0, 0]],
    };
    const kv = perKvHead(scores, 2);
    expect(kv.mean[0][0]).toBe(0.2);
    expect(kv.mean[0][1]).toBeNaN();
    expect(kv.samples).toEqual([[5, 0]]);
  });

  it('is the identity for MHA and rejects a group count that does not divide the heads', () => {
    const scores: HeadScores = { numLayers: 1, numHeads: 4, mean: [[1, 2, 3, 4]], samples: [[1, 1, 1, 1]] };
    expect(perKvHead(scores, 4)).toEqual(scores);
    expect(() => perKvHead(scores, 3)).toThrow(/4 query heads do not split into 3 KV head groups/);
  });
});

describe('topHeads', () => {
  it('ranks heads by value, skipping NaN, ties in layer-major order', () => {
    const values = [
      [0.1, NaN, 0.93],
      [0.33, 0.1, 0],
    ];
    expect(topHeads(values, 3)).toEqual([
      { layer: 0, head: 2 },
      { layer: 1, head: 0 },
      { layer: 0, head: 0 },
    ]);
    expect(topHeads(values, 10)).toHaveLength(5);
    expect(topHeads(values, 0)).toEqual([]);
  });
});
