import { describe, expect, it } from 'vitest';
import type { AttentionMatrix } from '../runtime/capture.js';
import {
  ACT_GUARD,
  actMask,
  applyAct,
  applyActMasked,
  applyHeadOutput,
  applyPasta,
  causalSoftmax,
  meanReceivedAttention,
  pastaOnPattern,
} from './reference.js';

function matrix(rows: number[][], rowOffset = 0): AttentionMatrix {
  const cols = rows[0].length;
  return { rows: rows.length, cols, rowOffset, data: Float32Array.from(rows.flat()) };
}
function toRows(a: AttentionMatrix): number[][] {
  return Array.from({ length: a.rows }, (_, i) => Array.from(a.data.subarray(i * a.cols, (i + 1) * a.cols)));
}
function expectRowsClose(a: AttentionMatrix, expected: number[][], digits = 6): void {
  const got = toRows(a);
  expect(got.length).toBe(expected.length);
  got.forEach((row, i) => row.forEach((x, j) => expect(x, `[${i}][${j}]`).toBeCloseTo(expected[i][j], digits)));
}
function expectRowsSumTo1(a: AttentionMatrix): void {
  for (const row of toRows(a)) expect(row.reduce((s, x) => s + x, 0)).toBeCloseTo(1, 6);
}

// A 4×4 causal pattern whose column 1 is a hidden sink: mean received attention
// col1 = (0.5 + 0.6 + 0.5)/3 = 0.533, col2 = (0.2 + 0.2)/2 = 0.2, col3 = 0.2/1 = 0.2.
const sinky = matrix([
  [1, 0, 0, 0],
  [0.5, 0.5, 0, 0],
  [0.2, 0.6, 0.2, 0],
  [0.1, 0.5, 0.2, 0.2],
]);

describe('applyHeadOutput', () => {
  it('computes scale·z + add, broadcasting add over positions', () => {
    const z = new Float32Array([1, 2, 3, 4]);
    expect(Array.from(applyHeadOutput(z, 0.5, new Float32Array([1, -1])))).toEqual([1.5, 0, 2.5, 1]);
    expect(Array.from(applyHeadOutput(z, 0, null))).toEqual([0, 0, 0, 0]);
    expect(Array.from(applyHeadOutput(z, 1, null))).toEqual([1, 2, 3, 4]);
    expect(Array.from(z)).toEqual([1, 2, 3, 4]); // input untouched
  });
  it('rejects an add that does not tile z', () => {
    expect(() => applyHeadOutput(new Float32Array(5), 1, new Float32Array(2))).toThrow(/whole number/);
  });
});

describe('PASTA', () => {
  const zeros = matrix([
    [0, 0, 0, 0],
    [0, 0, 0, 0],
    [0, 0, 0, 0],
    [0, 0, 0, 0],
  ]);

  it('on uniform scores, matches the hand computation', () => {
    // Key 1 highlighted, α = 0.5: weights 0.5 for other keys, 1 for key 1, over each causal prefix.
    expectRowsClose(applyPasta(zeros, [[1, 2]], 0.5), [
      [1, 0, 0, 0],
      [1 / 3, 2 / 3, 0, 0],
      [0.25, 0.5, 0.25, 0],
      [0.2, 0.4, 0.2, 0.2],
    ]);
  });

  it('equals "multiply non-highlighted by α and renormalise" on the softmax', () => {
    const scores = matrix([
      [0.3, 0, 0, 0],
      [1.2, -0.4, 0, 0],
      [0.1, 2.0, -1.0, 0],
      [-0.5, 0.7, 1.5, 0.2],
    ]);
    const spans = [[0, 1], [2, 3]] as const;
    for (const alpha of [0.01, 0.3, 1]) {
      const viaBias = applyPasta(scores, spans, alpha);
      const viaPattern = pastaOnPattern(causalSoftmax(scores), spans, alpha);
      expectRowsClose(viaBias, toRows(viaPattern));
      expectRowsSumTo1(viaBias);
    }
  });

  it('α = 1 is the identity', () => {
    expectRowsClose(pastaOnPattern(sinky, [[2, 3]], 1), toRows(sinky));
  });

  it('leaves keys at or past keyEnd (generated tokens) alone', () => {
    // keyEnd 2: keys 2, 3 are generated, never down-weighted; key 0 is outside the span.
    expectRowsClose(applyPasta(zeros, [[1, 2]], 0.5, 2), [
      [1, 0, 0, 0],
      [1 / 3, 2 / 3, 0, 0],
      [0.2, 0.4, 0.4, 0],
      [1 / 7, 2 / 7, 2 / 7, 2 / 7],
    ]);
  });

  it('ignores scores above the diagonal and works on a row window', () => {
    const window = matrix([[0, 0, 0, 99]], 2); // query 2; key 3 is in its future
    expectRowsClose(applyPasta(window, [[1, 2]], 0.5), [[0.25, 0.5, 0.25, 0]]);
  });
});

describe('ACT', () => {
  it('finds the hidden sink from mean received attention', () => {
    const r = meanReceivedAttention(sinky);
    expect(r[0]).toBeCloseTo((1 + 0.5 + 0.2 + 0.1) / 4, 6);
    expect(r[1]).toBeCloseTo(1.6 / 3, 6);
    expect(r[2]).toBeCloseTo(0.2, 6);
    expect(r[3]).toBeCloseTo(0.2, 6);
    expect(Array.from(actMask(sinky, 0.3))).toEqual([0, 1, 0, 0]);
    // key 0 is never a hidden sink, even far above τ
    expect(actMask(sinky, 0.1)[0]).toBe(0);
    expect(Array.from(actMask(sinky, 0.1))).toEqual([0, 1, 1, 1]);
    // minQueries 2 drops key 3 (seen only by row 3); 3 also drops key 2 (rows 2, 3)
    expect(Array.from(actMask(sinky, 0.1, 2))).toEqual([0, 1, 1, 0]);
    expect(Array.from(actMask(sinky, 0.1, 3))).toEqual([0, 1, 0, 0]);
    expectRowsClose(applyAct(sinky, 0.1, 0.5, 3), toRows(applyAct(sinky, 0.3, 0.5)));
  });

  it('on a row window, averages only the rows present', () => {
    const lastTwo = matrix(toRows(sinky).slice(2), 2);
    const r = meanReceivedAttention(lastTwo);
    expect(r[1]).toBeCloseTo((0.6 + 0.5) / 2, 6);
    expect(r[3]).toBeCloseTo(0.2, 6); // only row 3 sees key 3
    const decodeRow = matrix([[0.1, 0.5, 0.2, 0.2]], 3);
    expect(Array.from(actMask(decodeRow, 0.3))).toEqual([0, 1, 0, 0]);
    expect(Array.from(actMask(decodeRow, 0.3, 2))).toEqual([0, 0, 0, 0]); // one row: every key seen once
    const unseen = meanReceivedAttention(matrix([[1, 0, 0]], 0));
    expect(Number.isNaN(unseen[2])).toBe(true);
  });

  it('scales the sink by β and hands the freed mass to the other keys in proportion', () => {
    // β = 0.5, sink = key 1. Row 1: S = 0.5, others × (1 − 0.25)/0.5 = 1.5.
    // Row 2: S = 0.6, others × 0.7/0.4 = 1.75. Row 3: S = 0.5, others × 1.5.
    const before = Float32Array.from(sinky.data);
    const out = applyAct(sinky, 0.3, 0.5);
    expectRowsClose(out, [
      [1, 0, 0, 0],
      [0.75, 0.25, 0, 0],
      [0.35, 0.3, 0.35, 0],
      [0.15, 0.25, 0.3, 0.3],
    ]);
    expectRowsSumTo1(out);
    expect(sinky.data).toEqual(before); // input untouched
  });

  it('matches A(1−m)(1−βS)/(1−S) + A·m·β with non-sink keys scaled by (1 − βS)/(1 − S)', () => {
    const mask = new Float32Array([0, 1, 0, 1]);
    const beta = 0.4;
    const out = toRows(applyActMasked(sinky, mask, beta));
    toRows(sinky).forEach((row, t) => {
      const S = row[1] + row[3];
      const f = (1 - beta * S) / (1 - S);
      row.forEach((a, k) => expect(out[t][k]).toBeCloseTo(mask[k] ? a * beta : a * f, 6));
    });
    expectRowsSumTo1(applyActMasked(sinky, mask, beta));
  });

  it('β = 1 is the identity; β = 0 removes the sink', () => {
    expectRowsClose(applyAct(sinky, 0.1, 1), toRows(sinky));
    const out = applyAct(sinky, 0.3, 0);
    expect(toRows(out).map((r) => r[1])).toEqual([0, 0, 0, 0]);
    expectRowsSumTo1(out);
  });

  it('leaves a row unchanged when (nearly) all its mass is on sinks', () => {
    const a = matrix([
      [1, 0, 0],
      [0, 1, 0],
      [0.1, 0.6, 0.3],
    ]);
    const mask = new Float32Array([0, 1, 0]);
    const out = toRows(applyActMasked(a, mask, 0.5));
    expect(out[1]).toEqual([0, 1, 0]);
    expect(out[2][1]).toBeCloseTo(0.3, 6);
    const nearly = matrix([[ACT_GUARD / 4, 1 - ACT_GUARD / 4]], 1);
    expect(toRows(applyActMasked(nearly, new Float32Array([0, 1]), 0.5))[0][1]).toBeCloseTo(1, 6);
  });

  it('rejects a mask of the wrong width', () => {
    expect(() => applyActMasked(sinky, new Float32Array(3), 0.5)).toThrow(/mask has 3 keys/);
  });
});
