import { describe, expect, it } from 'vitest';
import { hiddenSinks, isSinkHead, receivedAttention } from './hiddenSinks.js';
import { attentionFromRows } from './rows.js';

// 6 tokens, values exact in binary. Column 0 gets 0.5 from every row t ≥ 1; column 2 gets 0.25 from
// rows t ≥ 3 (and 0.5 from row 2); the rest sits on the diagonal.
const rows = [
  [1],
  [0.5, 0.5],
  [0.5, 0, 0.5],
  [0.5, 0, 0.25, 0.25],
  [0.5, 0, 0.25, 0, 0.25],
  [0.5, 0, 0.25, 0, 0, 0.25],
];
const a = attentionFromRows(rows);

describe('receivedAttention', () => {
  it('is (1/(T−k)) Σ_{t≥k} A[t,k] on a full matrix', () => {
    const r = Array.from(receivedAttention(a));
    expect(r[0]).toBeCloseTo((1 + 0.5 * 5) / 6, 12);
    expect(r[1]).toBe(0.5 / 5);
    expect(r[2]).toBeCloseTo((0.5 + 0.25 * 3) / 4, 12);
    expect(r[3]).toBeCloseTo(0.25 / 3, 12);
    expect(r[4]).toBe(0.125);
    expect(r[5]).toBe(0.25);
  });

  it('averages over the present rows t ≥ k of a window; NaN where no present row sees k', () => {
    const w = receivedAttention(attentionFromRows(rows.slice(3), 3));
    expect(w[0]).toBe(0.5);
    expect(w[2]).toBe(0.25);
    expect(w[3]).toBeCloseTo(0.25 / 3, 12);
    const early = receivedAttention(attentionFromRows(rows.slice(0, 2), 0, 6));
    expect(early[2]).toBeNaN();
  });
});

describe('isSinkHead (Gu et al., ε = 0.3)', () => {
  it('tests the first token by default', () => {
    expect(isSinkHead(a)).toBe(true); // 0.583
    expect(isSinkHead(a, 0.6)).toBe(false);
  });
  it('can test another key', () => {
    expect(isSinkHead(a, 0.3, 2)).toBe(true); // 0.3125
    expect(isSinkHead(a, 0.3, 1)).toBe(false);
  });
  it('is false when no present row sees the key, and throws for a key outside the matrix', () => {
    expect(isSinkHead(attentionFromRows(rows.slice(0, 2), 0, 6), 0.3, 4)).toBe(false);
    expect(() => isSinkHead(a, 0.3, 6)).toThrow(/key 6 is not a column/);
  });
});

describe('hiddenSinks (ACT, τ = 0.1)', () => {
  it('lists columns k > 0 strictly above τ, never column 0', () => {
    // k = 1 receives exactly 0.1: not above.
    expect(hiddenSinks(a)).toEqual([2, 4, 5]);
  });
  it('minQueries drops columns seen by too few queries', () => {
    expect(hiddenSinks(a, 0.1, 2)).toEqual([2, 4]);
    expect(hiddenSinks(a, 0.1, 3)).toEqual([2]);
    expect(hiddenSinks(a, 0.05, 3)).toEqual([1, 2, 3]);
  });
  it('works on a window (rowOffset > 0), counting only present rows', () => {
    const w = attentionFromRows(rows.slice(3), 3);
    expect(hiddenSinks(w)).toEqual([2, 4, 5]);
    expect(hiddenSinks(w, 0.1, 2)).toEqual([2, 4]);
    expect(hiddenSinks(w, 0.1, 3)).toEqual([2]);
  });
});
