/**
 * From captured attention (`GroupPattern`s of a forward pass) to per-head metric samples, using the
 * pure metrics of `heads/`: retrieval copies at the answer steps, row statistics (sink, previous token,
 * reach, WAAD, entropy, hidden sinks) on a strided subset of prompt rows, and pattern scores (induction,
 * duplicate and previous token) on a fully captured probe sequence. Runs no model.
 */
import type { GroupPattern } from '../runtime/forward.js';
import type { AttentionMatrix } from '../runtime/capture.js';
import {
  copiesToken,
  duplicateTokenScore,
  HIDDEN_SINK_TAU,
  inductionScore,
  meanEntropy,
  meanReach,
  meanWaad,
  previousTokenScore,
  sinkScore,
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
 * its own rows and keys). Each row is a one-row `AttentionMatrix` for the `heads/` metrics, and means
 * run over rows. Hidden sinks average each column over the captured rows that can see it and count
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
        const row = rowOf(p, index, r);
        const a: AttentionMatrix = { rows: 1, cols: K, rowOffset: t, data: row };
        add(sums.sink, sinkScore(a));
        add(sums.previousToken, previousTokenScore(a));
        add(sums.reach, meanReach(a));
        add(sums.waad, meanWaad(a));
        add(sums.entropy, meanEntropy(a));
        for (let k = 0; k <= t; k++) {
          sums.received[k] += row[k];
          sums.seen[k]++;
        }
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
      out.induction[l][head] = inductionScore(a, tokens);
      out.duplicateToken[l][head] = duplicateTokenScore(a, tokens);
      out.previousToken[l][head] = previousTokenScore(a);
    }
  }
  return out;
}
