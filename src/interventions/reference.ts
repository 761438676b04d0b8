/**
 * Reference math for every intervention, on plain attention matrices and head outputs: slow, obvious,
 * computed in float64 — the yardstick the ONNX graph's hook points are tested against. Pure functions:
 * inputs are never written to. Nothing here knows about specs; `lower.ts` maps specs onto these
 * definitions (methods.md §2).
 *
 * Matrices follow `AttentionMatrix` from runtime/capture.ts: row i is the query at absolute position
 * `rowOffset + i`, column s the key at position s, causal (a query t sees keys s ≤ t).
 */

import type { AttentionMatrix } from '../runtime/capture.js';
import type { SpanRange } from './spec.js';

/**
 * Pre-softmax attention scores, laid out like `AttentionMatrix`. Entries for keys after the query (s > t)
 * are ignored: the causal mask is applied by the functions that take scores.
 */
export type ScoreMatrix = AttentionMatrix;

/** ACT leaves a row unchanged when its sinks hold more than 1 − ACT_GUARD of the mass (see `applyActMasked`). */
export const ACT_GUARD = 1e-6;

// ---------------------------------------------------------------------------------------------- head output

/**
 * Ablate / scale / steer, on the head's output z before o_proj: `z' = scale·z + add`.
 * `z` holds one or more positions of `add.length` values each (`add` is broadcast over positions);
 * zero-ablation is `scale = 0, add = null`, mean-ablation `scale = 0, add = mean`, steering
 * `scale = 1, add = α·v`.
 *
 * @example applyHeadOutput(new Float32Array([1, 2]), 0.5, new Float32Array([1, 1])) // [1.5, 2]
 */
export function applyHeadOutput(z: Float32Array, scale: number, add: Float32Array | null): Float32Array {
  if (add && (add.length === 0 || z.length % add.length !== 0)) {
    throw new Error(`applyHeadOutput: z has ${z.length} values, not a whole number of ${add.length}-wide positions`);
  }
  const out = new Float32Array(z.length);
  for (let i = 0; i < z.length; i++) out[i] = scale * z[i] + (add ? add[i % add.length] : 0);
  return out;
}

// ---------------------------------------------------------------------------------------------- PASTA

/** Whether key position `pos` lies in any of the half-open `spans`. */
export function inSpans(pos: number, spans: readonly SpanRange[]): boolean {
  for (const [start, end] of spans) if (pos >= start && pos < end) return true;
  return false;
}

/**
 * PASTA's additive bias for one key: 0 inside a highlighted span or at/after `keyEnd` (generated tokens,
 * which PASTA leaves alone), log α elsewhere.
 */
export function pastaBiasAt(pos: number, spans: readonly SpanRange[], logAlpha: number, keyEnd = Infinity): number {
  return pos >= keyEnd || inSpans(pos, spans) ? 0 : logAlpha;
}

/** Row-wise softmax over each query's causal prefix (keys 0..t); keys after t get 0. */
export function causalSoftmax(scores: ScoreMatrix): AttentionMatrix {
  return mapRows(scores, (row, t) => {
    const n = Math.min(t + 1, row.length);
    let max = -Infinity;
    for (let s = 0; s < n; s++) max = Math.max(max, row[s]);
    const out = new Float64Array(row.length);
    if (max === -Infinity) return out;
    let sum = 0;
    for (let s = 0; s < n; s++) sum += out[s] = Math.exp(row[s] - max);
    for (let s = 0; s < n; s++) out[s] /= sum;
    return out;
  });
}

/**
 * PASTA on pre-softmax scores: `A' = softmax(scores + b)` with `b_s = log α` for keys s outside every
 * span (and before `keyEnd`), 0 otherwise. Because softmax(x + b)_s = e^{x_s}·c_s / Σ_j e^{x_j}·c_j with
 * c = e^b ∈ {α, 1}, this equals `pastaOnPattern(softmax(scores))`: multiply the attention on the
 * non-highlighted keys by α and renormalise each row.
 */
export function applyPasta(
  scores: ScoreMatrix,
  keySpans: readonly SpanRange[],
  alpha: number,
  keyEnd = Infinity,
): AttentionMatrix {
  const logAlpha = Math.log(alpha);
  return causalSoftmax({
    ...scores,
    data: scores.data.map((x, i) => x + pastaBiasAt(i % scores.cols, keySpans, logAlpha, keyEnd)),
  });
}

/** PASTA in its post-softmax form: attention on non-highlighted keys × α, each row renormalised. */
export function pastaOnPattern(
  a: AttentionMatrix,
  keySpans: readonly SpanRange[],
  alpha: number,
  keyEnd = Infinity,
): AttentionMatrix {
  return mapRows(a, (row) => {
    const out = new Float64Array(row.length);
    let sum = 0;
    for (let s = 0; s < row.length; s++) {
      sum += out[s] = row[s] * (s >= keyEnd || inSpans(s, keySpans) ? 1 : alpha);
    }
    if (sum > 0) for (let s = 0; s < row.length; s++) out[s] /= sum;
    return out;
  });
}

// ---------------------------------------------------------------------------------------------- ACT

/**
 * Mean attention each key receives from the queries that can see it, over the rows present:
 * `r_k = Σ_t A[t,k] / #{t present : t ≥ k}`. On a full causal matrix (rowOffset 0, T rows) this is
 * methods.md's `Σ_t A[t,k] / (T − k)`. On a row window [t0, t1] it averages rows max(t0, k)..t1 only —
 * so in decode, with a single row, it is that row's attention; a runtime that wants stable sinks computes
 * the mask on the prefill pattern and reuses it. Keys no present row can see get NaN.
 */
export function meanReceivedAttention(a: AttentionMatrix): Float64Array {
  const out = new Float64Array(a.cols);
  const lastRow = a.rowOffset + a.rows; // one past the last query position
  for (let k = 0; k < a.cols; k++) {
    const first = Math.max(a.rowOffset, k);
    const count = lastRow - first;
    if (count <= 0) {
      out[k] = NaN;
      continue;
    }
    let sum = 0;
    for (let t = first; t < lastRow; t++) sum += a.data[(t - a.rowOffset) * a.cols + k];
    out[k] = sum / count;
  }
  return out;
}

/**
 * ACT's hidden-sink mask for one head: 1 for keys k > 0 whose mean received attention exceeds τ, else 0.
 * Key 0 (the BOS sink) is never calibrated. Keys seen by fewer than `minQueries` present rows are left
 * out (their mean rests on too few queries; 1 = the definition as written). Float32 0/1, one per column,
 * as the graph's `actMask` input.
 */
export function actMask(a: AttentionMatrix, tau: number, minQueries = 1): Float32Array {
  const received = meanReceivedAttention(a);
  const lastRow = a.rowOffset + a.rows; // one past the last query position
  const mask = new Float32Array(a.cols);
  for (let k = 1; k < a.cols; k++) {
    const queries = lastRow - Math.max(a.rowOffset, k);
    mask[k] = queries >= minQueries && received[k] > tau ? 1 : 0;
  }
  return mask;
}

/**
 * ACT in the graph's form, post-softmax with a key mask m and β: per row, with sink mass S = Σ_k A·m,
 *
 *   A' = A·(1 − m)·(1 − β·S)/(1 − S) + A·m·β
 *
 * Sinks keep β of their attention; the freed (1 − β)·S goes to the other keys in proportion to their
 * attention, so a row that summed to 1 still does. β = 1 or a row with S = 0 is unchanged. Guard: when
 * 1 − S < ACT_GUARD (nearly all mass on sinks, nothing to hand it to) the row is left unchanged.
 */
export function applyActMasked(a: AttentionMatrix, mask: Float32Array, beta: number): AttentionMatrix {
  if (mask.length !== a.cols) throw new Error(`applyActMasked: mask has ${mask.length} keys, matrix has ${a.cols}`);
  return mapRows(a, (row) => {
    let sinkMass = 0;
    for (let s = 0; s < row.length; s++) sinkMass += row[s] * mask[s];
    const out = Float64Array.from(row);
    if (1 - sinkMass < ACT_GUARD) return out;
    const rest = (1 - beta * sinkMass) / (1 - sinkMass);
    for (let s = 0; s < row.length; s++) out[s] = row[s] * (1 - mask[s]) * rest + row[s] * mask[s] * beta;
    return out;
  });
}

/** ACT on a captured pattern: `applyActMasked(A, actMask(A, τ, minQueries), β)`. */
export function applyAct(a: AttentionMatrix, tau: number, beta: number, minQueries = 1): AttentionMatrix {
  return applyActMasked(a, actMask(a, tau, minQueries), beta);
}

// ----------------------------------------------------------------------------------------------

function mapRows(
  a: AttentionMatrix,
  f: (row: Float64Array, queryPos: number) => Float64Array,
): AttentionMatrix {
  const data = new Float32Array(a.rows * a.cols);
  for (let i = 0; i < a.rows; i++) {
    const row = Float64Array.from(a.data.subarray(i * a.cols, (i + 1) * a.cols));
    data.set(f(row, a.rowOffset + i), i * a.cols);
  }
  return { rows: a.rows, cols: a.cols, rowOffset: a.rowOffset, data };
}
