/** The patching metrics and intervals on hand-made logits and samples. */
import { describe, expect, it } from 'vitest';
import { answerLogProb, logitDifference, meanKl, restoredFraction } from './metrics.js';
import { meanInterval, t975 } from './stats.js';

describe('metrics', () => {
  it('logit difference, answer log-prob over rows, mean KL', () => {
    expect(logitDifference(Float32Array.of(1, 4, 2), 1, 2)).toBe(2);
    // Two rows over a 2-token vocabulary: p(1) = ½ then p(0) = e²/(e²+1).
    const rows = Float32Array.of(0, 0, 2, 0);
    expect(answerLogProb(rows, 2, [1, 0])).toBeCloseTo(Math.log(0.5) + Math.log(Math.exp(2) / (Math.exp(2) + 1)), 6);
    expect(() => answerLogProb(rows, 2, [1])).toThrow(/4 logits for 1 tokens/);
    expect(meanKl(rows, rows, 2)).toBe(0);
    const q = Float32Array.of(0, 0, 0, 0);
    const kl2 = (2 / (1 + Math.exp(-2))) - Math.log((Math.exp(2) + 1) / 2);
    expect(meanKl(rows, q, 2)).toBeCloseTo(kl2 / 2, 6);
  });

  it('restored fraction: 1 at clean, 0 at corrupt; KL from the clean run', () => {
    expect(restoredFraction('logit-diff', 4, -2, 4)).toBe(1);
    expect(restoredFraction('logit-diff', 4, -2, -2)).toBe(0);
    expect(restoredFraction('logit-diff', 4, -2, 1)).toBe(0.5);
    expect(restoredFraction('kl', 0, 2, 0.5)).toBe(0.75);
  });
});

describe('meanInterval', () => {
  it('t quantiles: table and expansion agree at the seam', () => {
    expect(t975(1)).toBeCloseTo(12.706, 3);
    expect(t975(31)).toBeCloseTo(2.0395, 3);
    expect(t975(1000)).toBeCloseTo(1.9623, 3);
  });
  it('mean ± t·s/√n', () => {
    const r = meanInterval([1, 2, 3]);
    expect(r.mean).toBe(2);
    expect(r.ci[0]).toBeCloseTo(2 - 4.3027 / Math.sqrt(3), 4);
    expect(r.ci[1]).toBeCloseTo(2 + 4.3027 / Math.sqrt(3), 4);
    expect(meanInterval([5]).ci).toEqual([5, 5]);
    expect(() => meanInterval([])).toThrow(/at least one value/);
  });
});
