/**
 * Locality of a head (methods.md §1, after the preplan-and-anchor paper): how far back it looks.
 * - mean reach d(h) = mean over query rows t of Σ_s A[t,s]·(t−s);
 * - windowed average attention distance WAAD_t = Σ_s A[t,s]·min(t−s, W), W = 10, per row and averaged;
 * - future attention influence FAI_s = mean of A[t,s] over queries t in [s+10, s+50] (inclusive),
 *   i.e. how much the next few dozen tokens keep reading key s;
 * - attention entropy −Σ_s A[t,s]·ln A[t,s] in nats, per row and averaged.
 * Keys s > t are ignored (a causal mask makes them zero). All means run over the present rows only;
 * an empty domain gives NaN.
 */
import type { AttentionMatrix } from '../runtime/capture.js';
import { checkAttention } from './rows.js';

/** Window W of WAAD (methods.md). */
export const WAAD_WINDOW = 10;
/** Query lags [FAI_MIN_LAG, FAI_MAX_LAG] over which FAI averages (methods.md). */
export const FAI_MIN_LAG = 10;
export const FAI_MAX_LAG = 50;

function perRow(a: AttentionMatrix, f: (row: Float32Array, t: number) => number): Float64Array {
  checkAttention(a);
  const out = new Float64Array(a.rows);
  for (let i = 0; i < a.rows; i++) out[i] = f(a.data.subarray(i * a.cols, (i + 1) * a.cols), a.rowOffset + i);
  return out;
}

function mean(values: Float64Array): number {
  if (values.length === 0) return NaN;
  let sum = 0;
  for (const v of values) sum += v;
  return sum / values.length;
}

/** Expected distance Σ_s A[t,s]·(t−s) of every present row (entry i is query rowOffset + i). */
export function reachPerRow(a: AttentionMatrix): Float64Array {
  return perRow(a, (row, t) => {
    let d = 0;
    for (let s = 0; s <= t; s++) d += row[s] * (t - s);
    return d;
  });
}

/** Head reach d(h): mean over present rows of the expected distance. NaN without rows. */
export function meanReach(a: AttentionMatrix): number {
  return mean(reachPerRow(a));
}

/** WAAD_t = Σ_s A[t,s]·min(t−s, W) of every present row. */
export function waadPerRow(a: AttentionMatrix, window = WAAD_WINDOW): Float64Array {
  return perRow(a, (row, t) => {
    let d = 0;
    for (let s = 0; s <= t; s++) d += row[s] * Math.min(t - s, window);
    return d;
  });
}

/** Mean WAAD over present rows. NaN without rows. */
export function meanWaad(a: AttentionMatrix, window = WAAD_WINDOW): number {
  return mean(waadPerRow(a, window));
}

/**
 * FAI_s for every key column s: mean of A[t,s] over present rows t with s+minLag ≤ t ≤ s+maxLag.
 * Entry s is NaN when no present row falls in that range (e.g. the last minLag keys).
 */
export function futureAttentionInfluence(a: AttentionMatrix, minLag = FAI_MIN_LAG, maxLag = FAI_MAX_LAG): Float64Array {
  checkAttention(a);
  const out = new Float64Array(a.cols);
  for (let s = 0; s < a.cols; s++) {
    const from = Math.max(s + minLag, a.rowOffset);
    const to = Math.min(s + maxLag, a.rowOffset + a.rows - 1);
    let sum = 0;
    for (let t = from; t <= to; t++) sum += a.data[(t - a.rowOffset) * a.cols + s];
    out[s] = to >= from ? sum / (to - from + 1) : NaN;
  }
  return out;
}

/** Entropy −Σ_s A[t,s]·ln A[t,s] (nats; 0·ln 0 = 0) of every present row. */
export function entropyPerRow(a: AttentionMatrix): Float64Array {
  return perRow(a, (row, t) => {
    let h = 0;
    for (let s = 0; s <= t; s++) if (row[s] > 0) h -= row[s] * Math.log(row[s]);
    return h;
  });
}

/** Mean attention entropy over present rows, in nats. NaN without rows. */
export function meanEntropy(a: AttentionMatrix): number {
  return mean(entropyPerRow(a));
}
