import { describe, expect, it } from 'vitest';
import { compareWithReference } from './compare.js';
import { testAtlas } from './testAtlas.js';

describe('compareWithReference', () => {
  const ref = {
    retrieval: [
      [0.0, 0.0, 0.0, 0.3],
      [0.86, 0.1, 0.0, 0.0],
    ],
    sink_score: [
      [0.6, 0.5, 0.4, 0.3],
      [0.7, 0.65, 0.8, 0.9],
    ],
    base_accuracy: 0.6,
    ablation: { '2': { top: 0.0, random: 0.55 } },
  };
  it('reports the largest retrieval difference, heads outside the tolerance, the top heads and Spearman', () => {
    const c = compareWithReference(testAtlas(), ref);
    expect(c.retrievalMaxAbsDiff.layer).toBe(0);
    expect(c.retrievalMaxAbsDiff.head).toBe(3);
    expect(c.retrievalMaxAbsDiff.value).toBeCloseTo(0.1, 12);
    // NaN against 0 counts as outside too (|NaN − 0| is not ≤ tolerance).
    expect(c.retrievalOutside.map((h) => `${h.layer}:${h.head}`)).toEqual(['0:3', '1:2']);
    expect(c.topRetrieval.ours.map((h) => `${h.layer}:${h.head}`)).toEqual(['1:0', '0:3']);
    expect(c.topRetrieval.sameOrder).toBe(true);
    expect(c.spearman.sink).toBeCloseTo(1, 12);
    expect(c.baseAccuracy).toEqual({ ours: 0.5, reference: 0.6 });
    expect(c.ablation).toEqual({ k: 2, ours: undefined, reference: { top: 0, random: 0.55 } });
  });
  it('rejects a reference of another shape', () => {
    expect(() => compareWithReference(testAtlas(), { retrieval: [[0, 0, 0, 0]] })).toThrow(/reference retrieval: 1 layers, the atlas has 2/);
  });
});
