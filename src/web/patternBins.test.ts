/** Binning attention rows: hand-made matrices in, shares out; exact when the window is no wider than the bins. */
import { describe, expect, it } from 'vitest';
import { binEdges, PatternBinner } from './patternBins.js';

/** A causal n × n pattern where query q spreads its weight evenly over keys 0..q, laid out [1, n, n]. */
function uniformCausal(n: number): Float32Array {
  const data = new Float32Array(n * n);
  for (let q = 0; q < n; q++) for (let k = 0; k <= q; k++) data[q * n + k] = 1 / (q + 1);
  return data;
}
const range = (n: number) => Array.from({ length: n }, (_, i) => i);

describe('pattern bins', () => {
  it('cuts a range into near-equal whole-token bins, never more bins than tokens', () => {
    expect(binEdges(0, 10, 4)).toEqual([0, 3, 5, 8, 10]);
    expect(binEdges(5, 8, 100)).toEqual([5, 6, 7, 8]);
    expect(binEdges(0, 8192, 256).length).toBe(257);
  });

  it('is the exact matrix when the window fits in the bins, with null above the diagonal', () => {
    const n = 4;
    const b = new PatternBinner({ queryStart: 0, queryEnd: n, keyStart: 0, keyEnd: n }, 8);
    b.add(uniformCausal(n), 0, range(n), range(n));
    expect(b.cells()).toEqual([
      [1, null, null, null],
      [0.5, 0.5, null, null],
      [0.33333, 0.33333, 0.33333, null],
      [0.25, 0.25, 0.25, 0.25],
    ]);
  });

  it('keeps row sums at 1 when binned, and averages the queries of a bin', () => {
    const n = 8;
    const b = new PatternBinner({ queryStart: 0, queryEnd: n, keyStart: 0, keyEnd: n }, 2);
    b.add(uniformCausal(n), 0, range(n), range(n));
    const cells = b.cells();
    // Queries 0..3 put all weight on keys 0..3; queries 4..7 put (4/5 + 4/6 + 4/7 + 4/8)/4 on keys 0..3.
    expect(cells[0]).toEqual([1, null]);
    const first = (4 / 5 + 4 / 6 + 4 / 7 + 4 / 8) / 4;
    expect(cells[1][0]).toBeCloseTo(first, 4);
    expect(cells[1][0]! + cells[1][1]!).toBeCloseTo(1, 4);
  });

  it('adds rows chunk by chunk and reads one head of a group, with a zoomed window and one full row', () => {
    const n = 6;
    // Two heads: head 1 always looks at key 0.
    const full = new Float32Array(2 * n * n);
    full.set(uniformCausal(n), 0);
    for (let q = 0; q < n; q++) full[n * n + q * n] = 1;
    const b = new PatternBinner({ queryStart: 2, queryEnd: 6, keyStart: 0, keyEnd: 2 }, 16, 5, n);
    // Chunk 1: rows 0..2 with keys 0..2; chunk 2: rows 3..5 with keys 0..5.
    const chunk = (rows: number[], keys: number) => {
      const d = new Float32Array(2 * rows.length * keys);
      rows.forEach((q, r) => {
        for (let h = 0; h < 2; h++) for (let k = 0; k < keys; k++) d[(h * rows.length + r) * keys + k] = full[h * n * n + q * n + k];
      });
      return d;
    };
    b.add(chunk([0, 1, 2], 3), 1, [0, 1, 2], range(3));
    b.add(chunk([3, 4, 5], 6), 1, [3, 4, 5], range(6));
    expect(b.cells()).toEqual([[1, 0], [1, 0], [1, 0], [1, 0]]);
    expect(Array.from(b.row!)).toEqual([1, 0, 0, 0, 0, 0]);
    expect(b.wants(1)).toBe(false);
    expect(b.wants(5)).toBe(true);
  });
});
