/**
 * Attention each key column receives, and the two sink tests built on it (methods.md §1):
 * - Gu et al. ("When Attention Sink Emerges"): a head is a sink head when the mean attention that token
 *   k (the first token by default) receives, (1/(T−k))·Σ_{t≥k} A[t,k], exceeds ε = 0.3;
 * - ACT hidden sinks (Yu et al. 2024): columns k > 0 whose mean received attention Σ_t A[t,k]/(T−k)
 *   exceeds τ = 0.1 — the targets of ACT calibration (`interventions/`).
 * With a full matrix the mean runs over the T−k queries t ≥ k; with a window of rows it runs over the
 * present rows t ≥ k, so a window estimates the same quantity from fewer queries.
 */
import type { AttentionMatrix } from '../runtime/capture.js';
import { check } from '../errors.js';
import { checkAttention } from './rows.js';

/** Gu et al.'s threshold on the mean attention a token receives. */
export const SINK_HEAD_EPSILON = 0.3;
/** ACT's threshold for a hidden sink. */
export const HIDDEN_SINK_TAU = 0.1;

/**
 * Mean attention received by every key column k: mean of A[t, k] over present rows t ≥ k.
 * Entry k is NaN when no present row has t ≥ k.
 */
export function receivedAttention(a: AttentionMatrix): Float64Array {
  checkAttention(a);
  const sum = new Float64Array(a.cols);
  const count = new Float64Array(a.cols);
  for (let i = 0; i < a.rows; i++) {
    const t = a.rowOffset + i;
    const base = i * a.cols;
    for (let k = 0; k <= t; k++) {
      sum[k] += a.data[base + k];
      count[k]++;
    }
  }
  return sum.map((s, k) => (count[k] > 0 ? s / count[k] : NaN));
}

/**
 * Gu et al. sink-head test: mean attention received by token `key` (default 0, BOS) > `epsilon`.
 * False when no present row can see `key` (the mean is NaN).
 */
export function isSinkHead(a: AttentionMatrix, epsilon = SINK_HEAD_EPSILON, key = 0): boolean {
  check(Number.isInteger(key) && key >= 0 && key < a.cols, `sink-head test: key ${key} is not a column of the ${a.cols}-key matrix`);
  return receivedAttention(a)[key] > epsilon;
}

/**
 * ACT hidden sinks: key columns k > 0 with mean received attention > `tau`, ascending.
 * The last columns are seen by few queries (column T−1 only by itself), so their mean is noisy;
 * `minQueries` > 1 leaves out columns seen by fewer present rows. The default, 1, is the definition as
 * written.
 */
export function hiddenSinks(a: AttentionMatrix, tau = HIDDEN_SINK_TAU, minQueries = 1): number[] {
  const received = receivedAttention(a);
  const lastRow = a.rowOffset + a.rows - 1;
  const sinks: number[] = [];
  for (let k = 1; k < received.length; k++) {
    const queries = lastRow - Math.max(k, a.rowOffset) + 1;
    if (queries >= minQueries && received[k] > tau) sinks.push(k);
  }
  return sinks;
}
