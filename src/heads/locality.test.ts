import { describe, expect, it } from 'vitest';
import {
  entropyPerRow,
  futureAttentionInfluence,
  meanEntropy,
  meanReach,
  meanWaad,
  reachPerRow,
  waadPerRow,
} from './locality.js';
import { attentionFromRows } from './rows.js';

function oneHot(T: number, target: (t: number) => number): number[][] {
  return Array.from({ length: T }, (_, t) => {
    const row = new Array<number>(t + 1).fill(0);
    row[target(t)] = 1;
    return row;
  });
}
const uniform = (T: number) => Array.from({ length: T }, (_, t) => new Array<number>(t + 1).fill(1 / (t + 1)));
const empty = { rows: 0, cols: 0, rowOffset: 0, data: new Float32Array(0) };

describe('mean reach d(h)', () => {
  const lag3 = oneHot(6, (t) => Math.max(0, t - 3));
  it('is the mean over rows of Σ_s A[t,s]·(t−s)', () => {
    expect(Array.from(reachPerRow(attentionFromRows(lag3)))).toEqual([0, 1, 2, 3, 3, 3]);
    expect(meanReach(attentionFromRows(lag3))).toBeCloseTo(2, 12);
    expect(meanReach(attentionFromRows(uniform(5)))).toBeCloseTo((0 + 0.5 + 1 + 1.5 + 2) / 5, 6);
  });
  it('averages only the rows present in a window', () => {
    expect(meanReach(attentionFromRows(lag3.slice(3), 3))).toBeCloseTo(3, 12);
  });
  it('is NaN without rows', () => {
    expect(meanReach(empty)).toBeNaN();
  });
});

describe('WAAD (W = 10)', () => {
  it('caps each distance at W', () => {
    const far = attentionFromRows(oneHot(16, () => 0));
    expect(waadPerRow(far)[15]).toBe(10);
    expect(reachPerRow(far)[15]).toBe(15);
    expect(meanWaad(far)).toBeCloseTo((45 + 6 * 10) / 16, 12); // rows 0..10 give t, rows 11..15 give 10
  });
  it('takes W as a parameter', () => {
    const lag3 = attentionFromRows(oneHot(6, (t) => Math.max(0, t - 3)));
    expect(Array.from(waadPerRow(lag3, 2))).toEqual([0, 1, 2, 2, 2, 2]);
    expect(meanWaad(lag3, 2)).toBeCloseTo(1.5, 12);
  });
  it('works on a window and is NaN without rows', () => {
    expect(meanWaad(attentionFromRows(oneHot(16, () => 0).slice(12), 12))).toBe(10);
    expect(meanWaad(empty)).toBeNaN();
  });
});

describe('future attention influence FAI', () => {
  // 70 tokens, every row on its own diagonal, except rows 14, 15, 55, 56, which put all on key 5.
  const special = new Set([14, 15, 55, 56]);
  const rows = oneHot(70, (t) => (special.has(t) ? 5 : t));

  it('averages A[t,s] over t in [s+10, s+50], both ends included', () => {
    const fai = futureAttentionInfluence(attentionFromRows(rows));
    expect(fai[5]).toBeCloseTo(2 / 41, 12); // rows 15 and 55 are in, 14 and 56 are out
    expect(fai[0]).toBe(0);
    expect(fai[40]).toBe(0); // rows 50..69 present, none on key 40
  });
  it('is NaN for keys whose query range holds no row', () => {
    const fai = futureAttentionInfluence(attentionFromRows(rows));
    expect(fai[59]).toBe(0); // row 69 only
    expect(fai[60]).toBeNaN();
    expect(fai[69]).toBeNaN();
  });
  it('uses only present rows in a window', () => {
    const fai = futureAttentionInfluence(attentionFromRows(rows.slice(50), 50));
    expect(fai[5]).toBeCloseTo(1 / 6, 12); // rows 50..55, row 55 on key 5
    const early = futureAttentionInfluence(attentionFromRows(rows.slice(20, 31), 20, 70));
    expect(early[5]).toBe(0); // rows 20..30
    expect(early[25]).toBeNaN(); // range [35, 75] misses rows 20..30
  });
  it('takes the lag range as parameters', () => {
    expect(futureAttentionInfluence(attentionFromRows(rows), 9, 10)[5]).toBe(1); // rows 14, 15
    expect(futureAttentionInfluence(attentionFromRows(rows), 10, 11)[5]).toBe(0.5); // rows 15, 16
  });
});

describe('attention entropy', () => {
  it('is ln(t+1) for a uniform row and 0 for a one-hot row (nats)', () => {
    const h = entropyPerRow(attentionFromRows(uniform(4)));
    [0, Math.log(2), Math.log(3), Math.log(4)].forEach((v, i) => expect(h[i]).toBeCloseTo(v, 6));
    expect(meanEntropy(attentionFromRows(oneHot(5, () => 0)))).toBe(0);
  });
  it('averages the present rows of a window; NaN without rows', () => {
    expect(meanEntropy(attentionFromRows(uniform(4).slice(2), 2))).toBeCloseTo((Math.log(3) + Math.log(4)) / 2, 6);
    expect(meanEntropy(empty)).toBeNaN();
  });
});
