import { describe, expect, it } from 'vitest';
import { attentionFromRows } from './rows.js';
import { sinkScore } from './sink.js';

/** T×T causal rows: A[t,0] = bos(t), the rest of the mass on the diagonal (all of it at t = 0). */
function bosRows(T: number, bos: (t: number) => number): number[][] {
  return Array.from({ length: T }, (_, t) => {
    const row = new Array<number>(t + 1).fill(0);
    if (t === 0) row[0] = 1;
    else {
      row[0] = bos(t);
      row[t] = 1 - bos(t);
    }
    return row;
  });
}

describe('sinkScore', () => {
  const rows = bosRows(12, (t) => (t + 1) / 20);

  it('averages A[t, 0] over t ≥ 8', () => {
    expect(sinkScore(attentionFromRows(rows))).toBeCloseTo((9 + 10 + 11 + 12) / 4 / 20, 6);
  });

  it('gives the same on a window of rows (rowOffset > 0) holding the same queries t ≥ 8', () => {
    expect(sinkScore(attentionFromRows(rows.slice(6), 6))).toBeCloseTo(0.525, 6);
    expect(sinkScore(attentionFromRows(rows.slice(10), 10))).toBeCloseTo((11 + 12) / 2 / 20, 6);
  });

  it('is NaN when no row has t ≥ 8 (T ≤ 8, or a window that ends before 8)', () => {
    expect(sinkScore(attentionFromRows(bosRows(8, () => 0.5)))).toBeNaN();
    expect(sinkScore(attentionFromRows(rows.slice(2, 8), 2, 12))).toBeNaN();
    expect(sinkScore({ rows: 0, cols: 0, rowOffset: 0, data: new Float32Array(0) })).toBeNaN();
  });

  it('honours minQuery', () => {
    expect(sinkScore(attentionFromRows(rows), 11)).toBeCloseTo(12 / 20, 6);
    expect(sinkScore(attentionFromRows(bosRows(8, () => 0.5)), 1)).toBeCloseTo(0.5, 6);
  });
});
