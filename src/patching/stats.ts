/**
 * Confidence intervals over prompts: the mean of per-prompt effects with a two-sided Student t
 * interval, mean ± t(1 − α/2, n − 1) · s / √n. The t quantiles are tabulated for 95% up to 30 degrees
 * of freedom and taken from the Cornish–Fisher expansion beyond (error < 1e-4 there).
 */
import { check } from '../errors.js';

/** t(0.975, ν) for ν = 1..30. */
const T975 = [
  12.7062, 4.3027, 3.1824, 2.7764, 2.5706, 2.4469, 2.3646, 2.306, 2.2622, 2.2281, 2.201, 2.1788, 2.1604, 2.1448, 2.1314, 2.1199, 2.1098, 2.1009,
  2.093, 2.086, 2.0796, 2.0739, 2.0687, 2.0639, 2.0595, 2.0555, 2.0518, 2.0484, 2.0452, 2.0423,
];

/** The 97.5% quantile of Student's t with ν degrees of freedom. */
export function t975(nu: number): number {
  check(Number.isInteger(nu) && nu >= 1, `degrees of freedom must be an integer ≥ 1 (got ${nu})`);
  if (nu <= 30) return T975[nu - 1];
  const z = 1.959964;
  const z3 = z ** 3, z5 = z ** 5, z7 = z ** 7, z9 = z ** 9;
  return z + (z3 + z) / (4 * nu) + (5 * z5 + 16 * z3 + 3 * z) / (96 * nu ** 2) + (3 * z7 + 19 * z5 + 17 * z3 - 15 * z) / (384 * nu ** 3) +
    (79 * z9 + 776 * z7 + 1482 * z5 - 1920 * z3 - 945 * z) / (92160 * nu ** 4);
}

export interface MeanInterval {
  mean: number;
  /** 95% interval [lo, hi]; [mean, mean] for a single value. */
  ci: [number, number];
}

/**
 * Mean and 95% t interval of a sample.
 * @example meanInterval([1, 2, 3]) // {mean: 2, ci: [2 − 2.4841, 2 + 2.4841]}
 */
export function meanInterval(values: readonly number[]): MeanInterval {
  check(values.length > 0, 'a confidence interval needs at least one value');
  const n = values.length;
  const mean = values.reduce((a, b) => a + b, 0) / n;
  if (n === 1) return { mean, ci: [mean, mean] };
  const variance = values.reduce((a, x) => a + (x - mean) ** 2, 0) / (n - 1);
  const half = t975(n - 1) * Math.sqrt(variance / n);
  return { mean, ci: [mean - half, mean + half] };
}
