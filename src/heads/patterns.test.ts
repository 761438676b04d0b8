import { describe, expect, it } from 'vitest';
import { duplicateTokenScore, inductionScore, patternScore, previousTokenScore, probePatternScores } from './patterns.js';
import { attentionFromRows } from './rows.js';

/** Causal rows where row t puts all its mass on key target(t). */
function oneHot(T: number, target: (t: number) => number): number[][] {
  return Array.from({ length: T }, (_, t) => {
    const row = new Array<number>(t + 1).fill(0);
    row[target(t)] = 1;
    return row;
  });
}
const uniform = (T: number) => Array.from({ length: T }, (_, t) => new Array<number>(t + 1).fill(1 / (t + 1)));

// BOS then 4 random tokens repeated twice, as for an induction probe.
const repeated = [0, 5, 6, 7, 8, 5, 6, 7, 8];
const induction = attentionFromRows(oneHot(9, (t) => (t >= 5 ? t - 3 : 0)));
const duplicate = attentionFromRows(oneHot(9, (t) => (t >= 5 ? t - 4 : 0)));

describe('previousTokenScore', () => {
  const prev = attentionFromRows(oneHot(6, (t) => Math.max(0, t - 1)));
  it('counts row 0 in the denominator, as TransformerLens does', () => {
    expect(previousTokenScore(prev)).toBeCloseTo(5 / 6, 6);
  });
  it('excludeBos drops key 0 from both sums', () => {
    expect(previousTokenScore(prev, { excludeBos: true })).toBeCloseTo(1, 6);
  });
  it('excludeCurrentToken and excludeBos on a uniform pattern', () => {
    const u = attentionFromRows(uniform(4));
    expect(previousTokenScore(u)).toBeCloseTo(13 / 12 / 4, 6);
    expect(previousTokenScore(u, { excludeCurrentToken: true })).toBeCloseTo(13 / 23, 6);
    expect(previousTokenScore(u, { excludeBos: true, excludeCurrentToken: true })).toBeCloseTo(0.7, 6);
  });
  it('works on a window (rowOffset > 0)', () => {
    expect(previousTokenScore(attentionFromRows(oneHot(6, (t) => Math.max(0, t - 1)).slice(3), 3))).toBeCloseTo(1, 6);
  });
  it('is NaN when every unit of mass is excluded', () => {
    expect(previousTokenScore(attentionFromRows([[1]]), { excludeBos: true })).toBeNaN();
  });
});

describe('duplicateTokenScore', () => {
  it('scores a duplicate-token head and not an induction head', () => {
    expect(duplicateTokenScore(duplicate, repeated)).toBeCloseTo(4 / 9, 6);
    expect(duplicateTokenScore(induction, repeated)).toBeCloseTo(0, 6);
  });
  it('counts every earlier copy of the token', () => {
    expect(duplicateTokenScore(attentionFromRows(uniform(4)), [0, 3, 3, 3])).toBeCloseTo(5 / 24, 6);
  });
  it('honours excludeBos and excludeCurrentToken', () => {
    expect(duplicateTokenScore(duplicate, repeated, { excludeBos: true })).toBeCloseTo(1, 6);
    // uniform(4) without the diagonal: denominator 23/12, hits 5/6.
    expect(duplicateTokenScore(attentionFromRows(uniform(4)), [0, 3, 3, 3], { excludeCurrentToken: true })).toBeCloseTo(10 / 23, 6);
  });
  it('works on a window (rowOffset > 0)', () => {
    const window = attentionFromRows(oneHot(9, (t) => (t >= 5 ? t - 4 : 0)).slice(5), 5);
    expect(duplicateTokenScore(window, repeated)).toBeCloseTo(1, 6);
  });
  it('throws when the token ids do not cover the keys', () => {
    expect(() => duplicateTokenScore(duplicate, repeated.slice(0, 8))).toThrow(/8 given, the attention matrix has 9 key positions/);
  });
});

describe('inductionScore', () => {
  it('scores an induction head on a repeated random sequence and not a duplicate head', () => {
    expect(inductionScore(induction, repeated)).toBeCloseTo(4 / 9, 6);
    expect(inductionScore(duplicate, repeated)).toBeCloseTo(0, 6);
  });
  it('uses cells (t, s+1) with s < t−1 only', () => {
    // Row 3 of [0, 3, 3, 3]: s = 1 qualifies → cell (3, 2); s = 2 = t−1 does not (cell (3, 3) is the diagonal).
    expect(inductionScore(attentionFromRows(uniform(4)), [0, 3, 3, 3])).toBeCloseTo(1 / 16, 6);
  });
  it('honours excludeBos and excludeCurrentToken', () => {
    expect(inductionScore(induction, repeated, { excludeBos: true })).toBeCloseTo(1, 6);
    expect(inductionScore(attentionFromRows(uniform(4)), [0, 3, 3, 3], { excludeCurrentToken: true })).toBeCloseTo(0.25 / (23 / 12), 6);
  });
  it('works on a window (rowOffset > 0)', () => {
    const window = attentionFromRows(oneHot(9, (t) => (t >= 5 ? t - 3 : 0)).slice(5), 5);
    expect(inductionScore(window, repeated)).toBeCloseTo(1, 6);
  });
});

describe('patternScore', () => {
  it('takes any cell predicate', () => {
    expect(patternScore(attentionFromRows(uniform(3)), (t, s) => s === 0)).toBeCloseTo((1 + 1 / 2 + 1 / 3) / 3, 6);
  });
});

describe('probePatternScores', () => {
  /** Random causal rows (each summing to 1) on a sequence with repeats, offset rows too. */
  const random = (T: number, seed: number) => {
    let x = seed;
    const next = () => ((x = (x * 1103515245 + 12345) % 2147483648) / 2147483648);
    return Array.from({ length: T }, (_, t) => {
      const row = Array.from({ length: t + 1 }, () => next());
      const sum = row.reduce((a, b) => a + b, 0);
      return row.map((v) => v / sum);
    });
  };
  const tokens = [0, 5, 6, 7, 8, 5, 6, 7, 8, 5, 9, 6];
  it.each([
    ['random rows', attentionFromRows(random(12, 7))],
    ['rows 4.. of a causal matrix', attentionFromRows(random(12, 3).slice(4), 4)],
    ['induction one-hots', induction],
    ['duplicate one-hots', duplicate],
  ])('equals the three scores exactly on %s', (_, a) => {
    const s = probePatternScores(a, tokens);
    expect(s.induction).toBe(inductionScore(a, tokens));
    expect(s.duplicateToken).toBe(duplicateTokenScore(a, tokens));
    expect(s.previousToken).toBe(previousTokenScore(a));
  });
  it('is NaN with no mass and checks the tokens', () => {
    expect(probePatternScores(attentionFromRows([]), []).induction).toBeNaN();
    expect(() => probePatternScores(induction, [1, 2])).toThrow();
  });
});
