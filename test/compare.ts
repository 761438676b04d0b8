/** Comparing runs in tests: the largest |Δ| over lists of logits rows (of equal shapes, asserted). */
import { expect } from 'vitest';

export function worstDiff(a: Float32Array[], b: Float32Array[]): number {
  expect(b.length).toBe(a.length);
  let m = 0;
  a.forEach((x, i) => {
    expect(b[i].length).toBe(x.length);
    for (let j = 0; j < x.length; j++) m = Math.max(m, Math.abs(x[j] - b[i][j]));
  });
  return m;
}
