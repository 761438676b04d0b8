/**
 * Shapes of what a forward pass hands back about individual heads: attention patterns captured at the
 * `blocks.{l}.attn.hook_pattern` hook point. Owned here because the runtime produces them; metrics
 * (`heads/`), interventions and the web app only read them.
 */

/** A query head, addressed as in TransformerLens: layer and head index, both from 0. */
export interface HeadId {
  layer: number;
  head: number;
}

/**
 * Post-softmax attention of one head over a window of query rows.
 * Row i is the query at absolute position `rowOffset + i`; column j is the key at absolute position j
 * (keys are dense from 0 to cols - 1; a causal row t has zeros past column t).
 * `data` is row-major, `rows × cols`.
 */
export interface AttentionMatrix {
  rows: number;
  cols: number;
  rowOffset: number;
  data: Float32Array;
}

/** Value at absolute query position t and key position s. */
export function attentionAt(a: AttentionMatrix, t: number, s: number): number {
  return a.data[(t - a.rowOffset) * a.cols + s];
}

/** Key-value head that a query head reads under grouped-query attention. */
export function kvHeadOf(head: number, numHeads: number, numKvHeads: number): number {
  return Math.floor(head / (numHeads / numKvHeads));
}
