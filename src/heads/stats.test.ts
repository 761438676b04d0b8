import { describe, expect, it } from 'vitest';
import { averageRanks, flattenHeads, pearson, spearman } from './stats.js';

describe('averageRanks', () => {
  it('gives tied values the mean of their ranks', () => {
    expect(Array.from(averageRanks([10, 20, 20, 30]))).toEqual([1, 2.5, 2.5, 4]);
    expect(Array.from(averageRanks([3, 1, 3, 3]))).toEqual([3, 1, 3, 3]);
  });
  it('rejects NaN', () => {
    expect(() => averageRanks([1, NaN])).toThrow(/value 1 is NaN/);
  });
});

describe('spearman', () => {
  it('is ±1 for monotone relations, whatever the scale', () => {
    expect(spearman([1, 2, 3, 4], [1, 10, 100, 1000])).toBeCloseTo(1, 12);
    expect(spearman([1, 2, 3, 4], [4, 3, 2, 1])).toBeCloseTo(-1, 12);
  });
  it('matches scipy.stats.spearmanr with ties', () => {
    // scipy: spearmanr([1,2,2,3],[1,3,2,4]) = 0.9486832980505139
    expect(spearman([1, 2, 2, 3], [1, 3, 2, 4])).toBeCloseTo(0.9486832980505139, 12);
    // scipy: spearmanr([3,1,4,1,5,9,2,6],[2,7,1,8,2,8,1,8]) = 0.19885368120992467
    expect(spearman([3, 1, 4, 1, 5, 9, 2, 6], [2, 7, 1, 8, 2, 8, 1, 8])).toBeCloseTo(0.19885368120992467, 12);
  });
  it('is NaN for a constant side or fewer than two values; throws on a length mismatch', () => {
    expect(spearman([1, 1, 1], [1, 2, 3])).toBeNaN();
    expect(spearman([1], [1])).toBeNaN();
    expect(() => spearman([1, 2], [1])).toThrow(/2 vs 1 values/);
  });
  it('compares two head tables flattened row-major', () => {
    const ours = [[0.01, 0.3], [0.9, 0.0]];
    const reference = [[0.0, 0.33], [0.93, 0.002]];
    expect(flattenHeads(ours)).toEqual([0.01, 0.3, 0.9, 0]);
    expect(spearman(flattenHeads(ours), flattenHeads(reference))).toBeCloseTo(0.8, 12);
  });
});

describe('pearson', () => {
  it('is the usual correlation', () => {
    expect(pearson([1, 2, 3], [2, 4, 7])).toBeCloseTo(0.9933992677987828, 12);
  });
});
