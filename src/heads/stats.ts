/**
 * Rank statistics for comparing head tables with a reference (e.g. our retrieval scores against the
 * PyTorch reference JSONs), where the ranking of the heads matters more than the exact values.
 * Ties get average ranks, so Spearman's ρ is the Pearson correlation of the rank vectors.
 */
import { check } from '../errors.js';

/** 1-based ranks of `values`, ascending; tied values share the mean of their ranks. NaN is an error. */
export function averageRanks(values: ArrayLike<number>): Float64Array {
  const n = values.length;
  for (let i = 0; i < n; i++) check(!Number.isNaN(values[i]), `rank: value ${i} is NaN`);
  const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => values[a] - values[b]);
  const ranks = new Float64Array(n);
  for (let i = 0; i < n; ) {
    let j = i;
    while (j + 1 < n && values[order[j + 1]] === values[order[i]]) j++;
    const rank = (i + j) / 2 + 1;
    for (let k = i; k <= j; k++) ranks[order[k]] = rank;
    i = j + 1;
  }
  return ranks;
}

/** Pearson correlation; NaN when either side is constant or has fewer than 2 values. */
export function pearson(x: ArrayLike<number>, y: ArrayLike<number>): number {
  check(x.length === y.length, `correlation: ${x.length} vs ${y.length} values`);
  const n = x.length;
  if (n < 2) return NaN;
  let mx = 0;
  let my = 0;
  for (let i = 0; i < n; i++) {
    mx += x[i];
    my += y[i];
  }
  mx /= n;
  my /= n;
  let sxy = 0;
  let sxx = 0;
  let syy = 0;
  for (let i = 0; i < n; i++) {
    sxy += (x[i] - mx) * (y[i] - my);
    sxx += (x[i] - mx) ** 2;
    syy += (y[i] - my) ** 2;
  }
  return sxx > 0 && syy > 0 ? sxy / Math.sqrt(sxx * syy) : NaN;
}

/**
 * Spearman rank correlation with ties handled by average ranks. NaN when either side is constant or
 * has fewer than 2 values; NaN inside the inputs is an error (drop those pairs first).
 * @example spearman([1, 2, 3], [10, 20, 15]) // 0.5
 */
export function spearman(x: ArrayLike<number>, y: ArrayLike<number>): number {
  check(x.length === y.length, `Spearman: ${x.length} vs ${y.length} values`);
  return pearson(averageRanks(x), averageRanks(y));
}

/** Row-major flattening of a per-head table, to correlate two tables with `spearman`. */
export function flattenHeads(table: number[][]): number[] {
  return table.flat();
}
