import { describe, expect, it } from 'vitest';
import { klDivergence, klFromLogProbs, klPerPosition, logSoftmax, meanKl } from './kl.js';

describe('logSoftmax', () => {
  it('matches the direct formula on small logits', () => {
    const l = logSoftmax([1, 2, 3]);
    const z = Math.log(Math.exp(1) + Math.exp(2) + Math.exp(3));
    expect(Array.from(l)).toEqual([1 - z, 2 - z, 3 - z].map((v) => expect.closeTo(v, 12)));
  });
  it('stays finite for huge logits', () => {
    const l = logSoftmax([1000, 1000]);
    expect(l[0]).toBeCloseTo(-Math.LN2, 12);
    expect(l[1]).toBeCloseTo(-Math.LN2, 12);
  });
  it('allows −∞ entries but rejects an all −∞ row, NaN, +∞ and an empty row', () => {
    expect(Array.from(logSoftmax([0, -Infinity]))).toEqual([0, -Infinity]);
    expect(() => logSoftmax([-Infinity, -Infinity])).toThrow(/every logit of the row is −∞/);
    expect(() => logSoftmax([0, NaN])).toThrow(/logit 1 is NaN/);
    expect(() => logSoftmax([0, Infinity])).toThrow(/logit 1 is Infinity/);
    expect(() => logSoftmax([])).toThrow(/empty logit row/);
  });
});

describe('klDivergence', () => {
  it('is 0 for identical distributions, including shifted logits', () => {
    expect(klDivergence([1, 2, 3], [1, 2, 3])).toBe(0);
    expect(klDivergence([1, 2, 3], [11, 12, 13])).toBeCloseTo(0, 12);
  });
  it('matches a hand computation: p = (1/2, 1/2), q = (1/4, 3/4)', () => {
    const expected = 0.5 * Math.log(0.5 / 0.25) + 0.5 * Math.log(0.5 / 0.75);
    expect(klDivergence([0, 0], [0, Math.log(3)])).toBeCloseTo(expected, 12);
    // and it is not symmetric
    const reverse = 0.25 * Math.log(0.25 / 0.5) + 0.75 * Math.log(0.75 / 0.5);
    expect(klDivergence([0, Math.log(3)], [0, 0])).toBeCloseTo(reverse, 12);
  });
  it('is stable for large logit gaps', () => {
    const kl = klDivergence([500, 0], [0, 500]);
    expect(kl).toBeCloseTo(500, 6);
  });
  it('ignores tokens p rules out and is Infinity when q rules out a token p allows', () => {
    expect(klDivergence([0, -Infinity], [0, 5])).toBeCloseTo(-Math.log(1 / (1 + Math.exp(5))), 9);
    expect(klDivergence([0, 0], [0, -Infinity])).toBe(Infinity);
  });
  it('throws on rows of different length', () => {
    expect(() => klDivergence([0, 0], [0, 0, 0])).toThrow(/differ in length \(2 vs 3\)/);
  });
});

describe('klPerPosition / meanKl', () => {
  it('splits row-major [positions × vocab] logits', () => {
    const p = new Float32Array([0, 0, 1, 2]);
    const q = new Float32Array([0, Math.log(3), 1, 2]);
    const kl = klPerPosition(p, q, 2);
    expect(kl.length).toBe(2);
    expect(kl[0]).toBeCloseTo(klDivergence([0, 0], [0, Math.log(3)]), 6);
    expect(kl[1]).toBe(0);
    expect(meanKl(p, q, 2)).toBeCloseTo(kl[0] / 2, 12);
  });
  it('NaN for zero positions; errors on ragged input', () => {
    expect(meanKl([], [], 4)).toBeNaN();
    expect(() => klPerPosition([0, 0, 0], [0, 0, 0], 2)).toThrow(/not a whole number of rows of 2/);
    expect(() => klPerPosition([0, 0], [0, 0, 0, 0], 2)).toThrow(/differ in length/);
  });
});

describe('klFromLogProbs', () => {
  it('equals klDivergence with log p precomputed', () => {
    const p = [1, -2, 0.5, 3];
    const q = [0.2, 0.1, -1, 2.5];
    expect(klFromLogProbs(logSoftmax(p), q)).toBeCloseTo(klDivergence(p, q), 12);
    expect(klFromLogProbs(logSoftmax(p), p)).toBeCloseTo(0, 12);
    expect(klFromLogProbs(logSoftmax([0, -Infinity]), [0, 5])).toBeCloseTo(klDivergence([0, -Infinity], [0, 5]), 12);
  });
  it('is Infinity where q gives 0 to a token p does not, and checks its input', () => {
    expect(klFromLogProbs(logSoftmax([0, 0]), [0, -Infinity])).toBe(Infinity);
    expect(() => klFromLogProbs(logSoftmax([0, 0]), [0, NaN])).toThrow(/logit 1 is NaN/);
    expect(() => klFromLogProbs([0], [0, 0])).toThrow(/differ in length/);
  });
});
