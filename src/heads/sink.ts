/**
 * Sink score (StreamingLLM; methods.md §1): the mean attention that queries put on the first token
 * (BOS), over query positions t ≥ 8 — the first few queries have so few keys that attending to BOS says
 * little. Only the rows present in the matrix count. The Gu et al. sink-head test and the hidden sinks
 * of ACT, which look at every key column, are in `hiddenSinks.ts`.
 */
import type { AttentionMatrix } from '../runtime/capture.js';
import { checkAttention } from './rows.js';

/** Query positions below this are left out of the sink score (methods.md). */
export const SINK_MIN_QUERY = 8;

/**
 * Mean over present query rows t ≥ `minQuery` of A[t, 0]. NaN when no present row has t ≥ minQuery
 * (e.g. a sequence of 8 tokens or fewer, or a window that ends before position 8).
 * @example sinkScore(attentionFromRows(rows)) // rows of a 12-token prompt: mean of A[8..11, 0]
 */
export function sinkScore(a: AttentionMatrix, minQuery = SINK_MIN_QUERY): number {
  checkAttention(a);
  let sum = 0;
  let n = 0;
  for (let i = Math.max(0, minQuery - a.rowOffset); i < a.rows; i++) {
    sum += a.data[i * a.cols];
    n++;
  }
  return n > 0 ? sum / n : NaN;
}
