/**
 * From captured attention (`GroupPattern`s of a forward pass) to per-head metric samples, using the
 * pure metrics of `heads/`: retrieval copies at the answer steps, row statistics (sink, previous token,
 * reach, WAAD, entropy, hidden sinks) on a strided subset of prompt rows, and pattern scores (induction,
 * duplicate and previous token) on a fully captured probe sequence. Runs no model.
 */
import type { GroupPattern } from '../runtime/forward.js';
import type { AttentionMatrix } from '../runtime/capture.js';
import {
  checkAttention,
  copiesToken,
  HIDDEN_SINK_TAU,
  probePatternScores,
  SINK_MIN_QUERY,
  WAAD_WINDOW,
  type TokenSpan,
} from '../heads/index.js';

/** Row `r` of query head `head` in a layer's captured patterns, over all captured keys. */
function headRows(patterns: GroupPattern[], layer: number): Map<number, { p: GroupPattern; index: number }> {
  const out = new Map<number, { p: GroupPattern; index: number }>();
  for (const p of patterns) if (p.layer === layer) p.heads.forEach((head, index) => out.set(head, { p, index }));
  return out;
}

function rowOf(p: GroupPattern, headIndex: number, r: number): Float32Array {
  const R = p.queryPositions.length;
  const K = p.keyPositions.length;
  return p.data.subarray((headIndex * R + r) * K, (headIndex * R + r + 1) * K);
}

/** Checks that a pattern's keys are the dense positions 0..K−1, as the full layout gives. */
function checkDense(p: GroupPattern): void {
  const k = p.keyPositions;
  if (k.length && (k[0] !== 0 || k[k.length - 1] !== k.length - 1)) {
    throw new Error(`atlas: layer ${p.layer} captured keys ${k[0]}..${k[k.length - 1]} are not dense; run the atlas on a full-cache layout`);
  }
}

/**
 * Retrieval copies at the scored answer steps: `copied[l][h]` counts the steps `r` (rows of the
 * capture, at query position `queryPositions[r]`, emitting `emitted[r]`) where the head copies from `span`.
 */
export function retrievalCopies(
  patterns: GroupPattern[],
  numLayers: number,
  numHeads: number,
  steps: number[],
  emitted: number[],
  span: TokenSpan,
  tokens: ArrayLike<number>,
): number[][] {
  const copies = Array.from({ length: numLayers }, () => new Array<number>(numHeads).fill(0));
  for (let l = 0; l < numLayers; l++) {
    for (const [head, { p, index }] of headRows(patterns, l)) {
      checkDense(p);
      for (const r of steps) {
        const t = p.queryPositions[r];
        if (copiesToken(rowOf(p, index, r).subarray(0, t + 1), span, tokens, emitted[r])) copies[l][head]++;
      }
    }
  }
  return copies;
}

/**
 * One pass over a captured row (query position t, keys 0..t) giving what `sinkScore`,
 * `previousTokenScore`, `meanReach`, `meanWaad` and `meanEntropy` give on it as a one-row matrix, in
 * the same order of summation (so the same float64 values; gather.test.ts checks it), and adding the
 * row to the hidden-sink column sums. Five separate passes (and a closure call per key) made this the
 * largest host cost of the atlas's prefill at the 1B shape.
 */
function rowPass(row: Float32Array, t: number, received: Float64Array, seen: Int32Array): { sink: number; previousToken: number; reach: number; waad: number; entropy: number } {
  let total = 0;
  let reach = 0;
  let waad = 0;
  let entropy = 0;
  for (let s = 0; s <= t; s++) {
    const v = row[s];
    const d = t - s;
    total += v;
    reach += v * d;
    waad += v * (d < WAAD_WINDOW ? d : WAAD_WINDOW);
    if (v > 0) entropy -= v * Math.log(v);
    received[s] += v;
    seen[s]++;
  }
  return {
    sink: t >= SINK_MIN_QUERY ? row[0] : NaN,
    previousToken: total > 0 ? (t >= 1 ? row[t - 1] : 0) / total : NaN,
    reach,
    waad,
    entropy,
  };
}

/** Per-head row statistics of one prompt, each a mean over the captured rows (NaN without rows). */
export interface RowStats {
  sink: number[][];
  previousToken: number[][];
  reach: number[][];
  waad: number[][];
  entropy: number[][];
  /** Key columns k > 0 whose mean received attention over the captured rows t ≥ k exceeds τ. */
  hiddenSinks: number[][];
}

/**
 * Row statistics from captured rows that need not be contiguous (e.g. every 16th row of a prompt,
 * captured over several prefill chunks: `patterns` may hold several captures of one layer, each with
 * its own rows and keys). Each row gives what the `heads/` metrics give on it as a one-row
 * `AttentionMatrix` (computed in one pass, `rowPass`), and means run over rows. Hidden sinks average each column over the captured rows that can see it and count
 * columns seen by at least `minRows` rows (the last keys are seen by too few to judge).
 */
export function rowStats(patterns: GroupPattern[], numLayers: number, numHeads: number, minRows = 4, tau = HIDDEN_SINK_TAU): RowStats {
  const table = () => Array.from({ length: numLayers }, () => new Array<number>(numHeads).fill(NaN));
  const out: RowStats = { sink: table(), previousToken: table(), reach: table(), waad: table(), entropy: table(), hiddenSinks: table() };
  type Sums = { sink: number[]; previousToken: number[]; reach: number[]; waad: number[]; entropy: number[]; received: Float64Array; seen: Int32Array };
  const acc = new Map<number, Sums>();
  const maxKeys = Math.max(0, ...patterns.map((p) => p.keyPositions.length));
  for (const p of patterns) {
    checkDense(p);
    const R = p.queryPositions.length;
    const K = p.keyPositions.length;
    p.heads.forEach((head, index) => {
      const id = p.layer * numHeads + head;
      let sums = acc.get(id);
      if (!sums) {
        sums = { sink: [0, 0], previousToken: [0, 0], reach: [0, 0], waad: [0, 0], entropy: [0, 0], received: new Float64Array(maxKeys), seen: new Int32Array(maxKeys) };
        acc.set(id, sums);
      }
      const add = (v: number[], x: number) => {
        if (!Number.isNaN(x)) {
          v[0] += x;
          v[1]++;
        }
      };
      for (let r = 0; r < R; r++) {
        const t = p.queryPositions[r];
        if (!(t >= 0 && t < K)) checkAttention({ rows: 1, cols: K, rowOffset: t, data: rowOf(p, index, r) });
        const s = rowPass(rowOf(p, index, r), t, sums.received, sums.seen);
        add(sums.sink, s.sink);
        add(sums.previousToken, s.previousToken);
        add(sums.reach, s.reach);
        add(sums.waad, s.waad);
        add(sums.entropy, s.entropy);
      }
    });
  }
  for (const [id, sums] of acc) {
    const l = Math.floor(id / numHeads);
    const h = id % numHeads;
    for (const key of ['sink', 'previousToken', 'reach', 'waad', 'entropy'] as const) {
      out[key][l][h] = sums[key][1] > 0 ? sums[key][0] / sums[key][1] : NaN;
    }
    let count = 0;
    let any = false;
    for (let k = 0; k < sums.seen.length; k++) {
      if (sums.seen[k] > 0) any = true;
      if (k > 0 && sums.seen[k] >= minRows && sums.received[k] / sums.seen[k] > tau) count++;
    }
    out.hiddenSinks[l][h] = any ? count : NaN;
  }
  return out;
}

/** Rows [from, to) of each captured pattern (e.g. to split one capture into prompt rows and answer rows). */
export function pickRows(patterns: GroupPattern[], from: number, to: number): GroupPattern[] {
  return patterns.map((p) => {
    const R = p.queryPositions.length;
    if (from === 0 && to === R) return p;
    const K = p.keyPositions.length;
    const n = to - from;
    const data = new Float32Array(p.heads.length * n * K);
    p.heads.forEach((_, hi) => data.set(p.data.subarray((hi * R + from) * K, (hi * R + to) * K), hi * n * K));
    return { ...p, queryPositions: p.queryPositions.slice(from, to), data };
  });
}

/** Pattern scores of a fully captured probe (rows and keys 0..T−1, `tokens` by position). */
export interface ProbeStats {
  induction: number[][];
  duplicateToken: number[][];
  previousToken: number[][];
}

export function probeStats(patterns: GroupPattern[], numLayers: number, numHeads: number, tokens: number[]): ProbeStats {
  const table = () => Array.from({ length: numLayers }, () => new Array<number>(numHeads).fill(NaN));
  const out: ProbeStats = { induction: table(), duplicateToken: table(), previousToken: table() };
  for (let l = 0; l < numLayers; l++) {
    for (const [head, { p, index }] of headRows(patterns, l)) {
      checkDense(p);
      const R = p.queryPositions.length;
      const K = p.keyPositions.length;
      if (R !== K || p.queryPositions[0] !== 0) throw new Error(`atlas: probe capture of layer ${l} must hold every row (${R} rows, ${K} keys)`);
      const a: AttentionMatrix = { rows: R, cols: K, rowOffset: 0, data: p.data.subarray(index * R * K, (index + 1) * R * K) };
      const scores = probePatternScores(a, tokens);
      out.induction[l][head] = scores.induction;
      out.duplicateToken[l][head] = scores.duplicateToken;
      out.previousToken[l][head] = scores.previousToken;
    }
  }
  return out;
}
