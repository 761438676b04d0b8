import { describe, expect, it } from 'vitest';
import { mergeNiahGrids } from './niahGrid.js';

describe('mergeNiahGrids', () => {
  it('adds context rows in order over the union of depths, keeping the first grid where both have a row', () => {
    const a = { accuracy: 0.5, samples: 4, contextTokens: [1024], depths: [0, 1], grid: [[1, 0]], counts: [[2, 2]], method: 'x' };
    const b = { accuracy: 0.75, samples: 8, contextTokens: [256, 1024], depths: [0, 0.5, 1], grid: [[1, 0.5, 1], [0, 0, 0]], counts: [[2, 4, 2], [1, 1, 1]] };
    const m = mergeNiahGrids(a, b);
    expect(m.contextTokens).toEqual([256, 1024]);
    expect(m.depths).toEqual([0, 0.5, 1]);
    expect(m.grid).toEqual([[1, 0.5, 1], [1, NaN, 0]]);
    expect(m.counts).toEqual([[2, 4, 2], [2, 0, 2]]);
    expect(m.samples).toBe(12);
    expect(m.accuracy).toBeCloseTo((2 + 2 + 2 + 2) / 12, 12);
    expect(m.method).toBe('x');
  });
});
