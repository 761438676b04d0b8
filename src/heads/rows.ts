/**
 * The checks and the row walk that every head metric shares. An `AttentionMatrix` (from
 * `runtime/capture.ts`) may hold only a window of query rows (`rowOffset`); metrics here iterate the
 * rows that are present and address them by absolute position, so a window and a full matrix give the
 * same answer over the same rows. Also `attentionFromRows`, which builds a matrix from nested arrays
 * for tests and examples.
 *
 * Error policy of `heads/`: malformed input (a data length that does not match `rows × cols`, a row
 * past the last key, too few token ids, an empty or out-of-range span) throws a `HeadwiseError`; a
 * well-formed input whose metric domain is empty (no query row qualifies, no attention mass) gives
 * `NaN`, which the accumulators in `aggregate.ts` skip.
 */
import type { AttentionMatrix } from '../runtime/capture.js';
import { check } from '../errors.js';

/** Throws unless `a` is a well-formed causal window: dense data and every query row t < cols. */
export function checkAttention(a: AttentionMatrix, what = 'attention matrix'): void {
  check(
    Number.isInteger(a.rows) && Number.isInteger(a.cols) && a.rows >= 0 && a.cols >= 0,
    `${what}: rows and cols must be non-negative integers (got ${a.rows} × ${a.cols})`,
  );
  check(Number.isInteger(a.rowOffset) && a.rowOffset >= 0, `${what}: rowOffset must be a non-negative integer (got ${a.rowOffset})`);
  check(
    a.data.length === a.rows * a.cols,
    `${what}: data has ${a.data.length} values, expected rows × cols = ${a.rows} × ${a.cols}`,
  );
  check(
    a.rowOffset + a.rows <= a.cols,
    `${what}: query rows ${a.rowOffset}..${a.rowOffset + a.rows - 1} need keys up to that position, but there are only ${a.cols} columns`,
  );
}

/** Throws unless `tokens` covers every key column of `a` (token ids are indexed by absolute position). */
export function checkTokens(a: AttentionMatrix, tokens: ArrayLike<number>): void {
  check(tokens.length >= a.cols, `token ids: ${tokens.length} given, the attention matrix has ${a.cols} key positions`);
}

/** Row of absolute query position `t` as a view (no copy). */
export function rowAt(a: AttentionMatrix, t: number): Float32Array {
  const i = t - a.rowOffset;
  check(i >= 0 && i < a.rows, `query position ${t} is not in the rows present (${a.rowOffset}..${a.rowOffset + a.rows - 1})`);
  return a.data.subarray(i * a.cols, (i + 1) * a.cols);
}

/** Absolute query positions present in `a`, in order. */
export function queryPositions(a: AttentionMatrix): number[] {
  return Array.from({ length: a.rows }, (_, i) => a.rowOffset + i);
}

/**
 * Builds an `AttentionMatrix` from one array per query row; short rows are padded with zeros to the
 * longest row (or to `cols`), so a causal pattern can be written as a lower triangle.
 * @example attentionFromRows([[1], [0.5, 0.5]]) // 2 × 2, rows t = 0 and t = 1
 */
export function attentionFromRows(rows: number[][], rowOffset = 0, cols?: number): AttentionMatrix {
  const width = cols ?? Math.max(rowOffset + rows.length, ...rows.map((r) => r.length));
  const data = new Float32Array(rows.length * width);
  rows.forEach((r, i) => {
    check(r.length <= width, `row ${i} has ${r.length} values, more than ${width} columns`);
    data.set(r, i * width);
  });
  return { rows: rows.length, cols: width, rowOffset, data };
}
