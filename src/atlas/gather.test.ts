import { describe, expect, it } from 'vitest';
import type { GroupPattern } from '../runtime/forward.js';
import { meanEntropy, meanReach, meanWaad, previousTokenScore, sinkScore } from '../heads/index.js';
import { mulberry32 } from '../eval/random.js';
import { pickRows, probeStats, retrievalCopies, rowStats } from './gather.js';

/** A group pattern from per-head rows (each row over keys 0..K−1). */
function group(layer: number, heads: number[], queryPositions: number[], K: number, rows: number[][][]): GroupPattern {
  const data = new Float32Array(heads.length * queryPositions.length * K);
  rows.forEach((headRows, hi) => headRows.forEach((row, r) => data.set(row, (hi * queryPositions.length + r) * K)));
  return { layer, heads, queryPositions: Int32Array.from(queryPositions), keyPositions: Int32Array.from({ length: K }, (_, k) => k), data };
}

const oneHot = (K: number, at: number) => Array.from({ length: K }, (_, k) => (k === at ? 1 : 0));

describe('retrievalCopies', () => {
  // 8 tokens; needle span [2, 5); answer steps at queries 6 and 7 emit tokens 12 and 13 (at keys 3, 4).
  const tokens = [0, 9, 11, 12, 13, 9, 12, 13];
  const span = { start: 2, end: 5 };
  it('counts, per head, the scored steps whose argmax key is in the span and holds the emitted token (GQA groups in any order)', () => {
    // One layer, 4 query heads over 2 KV heads, split in two groups listed KV head 1 first.
    const g1 = group(0, [2, 3], [6, 7], 8, [
      [oneHot(8, 3), oneHot(8, 4)], // head 2 copies at both steps
      [oneHot(8, 0), oneHot(8, 4)], // head 3 only at the second
    ]);
    const g0 = group(0, [0, 1], [6, 7], 8, [
      [oneHot(8, 6), oneHot(8, 7)], // head 0 looks at the answer itself: outside the span
      [oneHot(8, 1), oneHot(8, 3)], // head 1: key 3 holds 12, not 13
    ]);
    expect(retrievalCopies([g1, g0], 1, 4, [0, 1], [12, 13], span, tokens)).toEqual([[0, 0, 2, 1]]);
    // Only the steps listed are scored.
    expect(retrievalCopies([g1, g0], 1, 4, [1], [12, 13], span, tokens)).toEqual([[0, 0, 1, 1]]);
  });
  it('refuses captures whose keys are not dense positions', () => {
    const p = group(0, [0], [6], 8, [[oneHot(8, 3)]]);
    p.keyPositions = Int32Array.from([0, 1, 2, 3, 60, 61, 62, 63]);
    expect(() => retrievalCopies([p], 1, 1, [0], [12], span, tokens)).toThrow(/not dense/);
  });
});

describe('rowStats on strided rows', () => {
  // Rows t = 9 and t = 19 of a 20-key prompt, two heads.
  const K = 20;
  const rowA = (t: number) => { const r = new Array<number>(K).fill(0); r[0] = 0.5; r[t - 1] = 0.5; return r; };
  const rowB = (t: number) => { const r = new Array<number>(K).fill(0); for (let s = 0; s <= t; s++) r[s] = 1 / (t + 1); return r; };
  const p = group(0, [0, 1], [9, 19], K, [[rowA(9), rowA(19)], [rowB(9), rowB(19)]]);
  const s = rowStats([p], 1, 2, 2);
  it('averages the heads/ metrics over the captured rows', () => {
    expect(s.sink[0][0]).toBeCloseTo(0.5, 6);
    expect(s.previousToken[0][0]).toBeCloseTo(0.5, 6);
    expect(s.reach[0][0]).toBeCloseTo((0.5 * 9 + 0.5 + 0.5 * 19 + 0.5) / 2, 5);
    expect(s.waad[0][0]).toBeCloseTo((0.5 * 9 + 0.5 + 0.5 * 10 + 0.5) / 2, 5);
    expect(s.entropy[0][0]).toBeCloseTo(Math.log(2), 5);
    expect(s.sink[0][1]).toBeCloseTo((1 / 10 + 1 / 20) / 2, 6);
    expect(s.entropy[0][1]).toBeCloseTo((Math.log(10) + Math.log(20)) / 2, 5);
  });
  it('counts hidden sinks k > 0 over the rows that see them, at least minRows of them', () => {
    // Head 0: key 8 gets 0.5 from row 9 and 0 from row 19 (mean 0.25, 2 rows); key 18 gets 0.5 from row 19 only.
    expect(s.hiddenSinks[0][0]).toBe(1);
    expect(rowStats([p], 1, 2, 1).hiddenSinks[0][0]).toBe(2);
    expect(rowStats([p], 1, 2, 3).hiddenSinks[0][0]).toBe(0);
    // Head 1: uniform rows give at most 0.1 per key: never above τ.
    expect(s.hiddenSinks[0][1]).toBe(0);
  });
  it('gives exactly what the heads/ metrics give on each row as a one-row matrix (random rows, rows before the sink query)', () => {
    const rand = mulberry32(3);
    const Kr = 40;
    const qs = [0, 1, 5, 8, 17, 39];
    const rows = [0, 1].map(() => qs.map((t) => {
      const r = new Array<number>(Kr).fill(0);
      for (let k = 0; k <= t; k++) r[k] = rand() < 0.2 ? 0 : rand();
      const sum = r.reduce((a, b) => a + b, 0);
      return r.map((v) => (sum > 0 ? v / sum : 0));
    }));
    const g = group(0, [1, 0], qs, Kr, rows);
    const got = rowStats([g], 1, 2);
    [1, 0].forEach((head, hi) => {
      const per = qs.map((t, r) => ({ rows: 1, cols: Kr, rowOffset: t, data: g.data.subarray((hi * qs.length + r) * Kr, (hi * qs.length + r + 1) * Kr) }));
      const mean = (f: (a: (typeof per)[number]) => number) => {
        const v = per.map(f).filter((x) => !Number.isNaN(x));
        return v.reduce((a, b) => a + b, 0) / v.length;
      };
      expect(got.sink[0][head]).toBe(mean((a) => sinkScore(a)));
      expect(got.previousToken[0][head]).toBe(mean((a) => previousTokenScore(a)));
      expect(got.reach[0][head]).toBe(mean((a) => meanReach(a)));
      expect(got.waad[0][head]).toBe(mean((a) => meanWaad(a)));
      expect(got.entropy[0][head]).toBe(mean((a) => meanEntropy(a)));
    });
  });
  it('refuses a captured row past its keys', () => {
    const bad = group(0, [0], [20], K, [[new Array<number>(K).fill(0)]]);
    expect(() => rowStats([bad], 1, 1)).toThrow(/need keys up to that position/);
  });
  it('leaves NaN for heads without captured rows', () => {
    const empty = group(0, [0, 1], [], K, [[], []]);
    expect(rowStats([empty], 1, 2).sink[0]).toEqual([NaN, NaN]);
  });
});

describe('probeStats', () => {
  // BOS, then 3 tokens twice: induction head looks at the token after the earlier copy.
  const seq = [0, 5, 6, 7, 5, 6, 7];
  const T = seq.length;
  const induction = Array.from({ length: T }, (_, t) => oneHot(T, t >= 4 ? t - 2 : 0));
  const previous = Array.from({ length: T }, (_, t) => oneHot(T, Math.max(0, t - 1)));
  const rows = Array.from({ length: T }, (_, t) => t);
  it('scores every head of a fully captured probe', () => {
    const s = probeStats([group(0, [0, 1], rows, T, [induction, previous])], 1, 2, seq);
    expect(s.induction[0][0]).toBeCloseTo(3 / 7, 6);
    expect(s.induction[0][1]).toBeCloseTo(0, 6);
    expect(s.previousToken[0][1]).toBeCloseTo(6 / 7, 6);
    expect(s.duplicateToken[0][0]).toBeCloseTo(0, 6);
  });
  it('needs every row captured', () => {
    expect(() => probeStats([group(0, [0], [3, 4], T, [[induction[3], induction[4]]])], 1, 1, seq)).toThrow(/must hold every row/);
  });
});

describe('rowStats over several prefill chunks', () => {
  it('gives the same statistics as one capture of the same rows', () => {
    const K = 12;
    const row = (t: number) => Array.from({ length: K }, (_, s) => (s <= t ? (s === 0 ? 0.4 : 0.6 / t) : 0));
    const whole = group(0, [0], [5, 9, 11], K, [[row(5), row(9), row(11)]]);
    const first = group(0, [0], [5], 8, [[row(5).slice(0, 8)]]);
    const second = group(0, [0], [9, 11], K, [[row(9), row(11)]]);
    const a = rowStats([whole], 1, 1, 1);
    const b = rowStats([first, second], 1, 1, 1);
    for (const key of Object.keys(a) as (keyof typeof a)[]) expect(b[key][0][0], key).toBeCloseTo(a[key][0][0], 10);
    expect(a.hiddenSinks[0][0]).toBe(0);
    expect(a.sink[0][0]).toBeCloseTo(0.4, 6);
  });
});

describe('pickRows', () => {
  it('keeps rows [from, to) of every head, with their positions', () => {
    const p = group(2, [4, 5], [7, 8, 9], 10, [[oneHot(10, 1), oneHot(10, 2), oneHot(10, 3)], [oneHot(10, 4), oneHot(10, 5), oneHot(10, 6)]]);
    const [q] = pickRows([p], 1, 3);
    expect(Array.from(q.queryPositions)).toEqual([8, 9]);
    expect(q.heads).toEqual([4, 5]);
    expect(Array.from(q.data)).toEqual([...oneHot(10, 2), ...oneHot(10, 3), ...oneHot(10, 5), ...oneHot(10, 6)]);
    expect(pickRows([p], 0, 3)[0]).toBe(p);
  });
});
