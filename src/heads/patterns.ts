/**
 * Pattern scores (methods.md §1, TransformerLens `detect_head` with error measure "mul"): the share of
 * a head's attention mass that lands on the cells a pattern predicts, over the present query rows —
 * Σ_{predicted (t,s)} A[t,s] / Σ_{t, s≤t} A[t,s]. Cells:
 * - previous-token: (t, t−1);
 * - duplicate-token: (t, s) with s < t and token[s] = token[t];
 * - induction: (t, s+1) with s < t−1 and token[s] = token[t] (run it on random tokens repeated twice).
 * As in TransformerLens, `excludeBos` zeroes column 0 and `excludeCurrentToken` zeroes the diagonal
 * before both sums (both off by default). Building the probe sequences is left to the caller.
 * NaN when the denominator is 0 (no rows, or all mass excluded).
 */
import type { AttentionMatrix } from '../runtime/capture.js';
import { checkAttention, checkTokens } from './rows.js';

export interface PatternOptions {
  /** Leave key 0 (BOS) out of both sums. Default false. */
  excludeBos?: boolean;
  /** Leave the diagonal (t, t) out of both sums. Default false. */
  excludeCurrentToken?: boolean;
}

/** Predicted cells of a pattern: whether (t, s), s ≤ t, is one of them. */
export type CellPredicate = (t: number, s: number) => boolean;

/** Share of attention mass on the cells `predicted` marks, with TransformerLens's exclusions. */
export function patternScore(a: AttentionMatrix, predicted: CellPredicate, options: PatternOptions = {}): number {
  checkAttention(a);
  let hit = 0;
  let total = 0;
  for (let i = 0; i < a.rows; i++) {
    const t = a.rowOffset + i;
    const base = i * a.cols;
    for (let s = 0; s <= t; s++) {
      if ((options.excludeBos && s === 0) || (options.excludeCurrentToken && s === t)) continue;
      const v = a.data[base + s];
      total += v;
      if (predicted(t, s)) hit += v;
    }
  }
  return total > 0 ? hit / total : NaN;
}

/** Previous-token score: mass on (t, t−1). */
export function previousTokenScore(a: AttentionMatrix, options?: PatternOptions): number {
  return patternScore(a, (t, s) => s === t - 1, options);
}

/** Duplicate-token score: mass on earlier copies of the current token. `tokens` indexed by position. */
export function duplicateTokenScore(a: AttentionMatrix, tokens: ArrayLike<number>, options?: PatternOptions): number {
  checkAttention(a);
  checkTokens(a, tokens);
  return patternScore(a, (t, s) => s < t && tokens[s] === tokens[t], options);
}

/** Induction score: mass on the token after an earlier copy of the current token. */
export function inductionScore(a: AttentionMatrix, tokens: ArrayLike<number>, options?: PatternOptions): number {
  checkAttention(a);
  checkTokens(a, tokens);
  // Cell (t, j) is predicted when j = s + 1 for some s < t − 1 with token[s] = token[t], i.e. 1 ≤ j < t.
  return patternScore(a, (t, j) => j >= 1 && j < t && tokens[j - 1] === tokens[t], options);
}

/**
 * Induction, duplicate-token and previous-token scores of one matrix in one pass (no exclusions): what
 * the three functions above give, summed in the same order (so the same float64 values), for the
 * atlas's probes, where three passes with a predicate call per cell were a second host cost.
 */
export function probePatternScores(a: AttentionMatrix, tokens: ArrayLike<number>): { induction: number; duplicateToken: number; previousToken: number } {
  checkAttention(a);
  checkTokens(a, tokens);
  let total = 0;
  let induction = 0;
  let duplicate = 0;
  let previous = 0;
  for (let i = 0; i < a.rows; i++) {
    const t = a.rowOffset + i;
    const base = i * a.cols;
    const token = tokens[t];
    for (let s = 0; s <= t; s++) {
      const v = a.data[base + s];
      total += v;
      if (s >= 1 && s < t && tokens[s - 1] === token) induction += v;
      if (s < t && tokens[s] === token) duplicate += v;
      if (s === t - 1) previous += v;
    }
  }
  const share = (hit: number) => (total > 0 ? hit / total : NaN);
  return { induction: share(induction), duplicateToken: share(duplicate), previousToken: share(previous) };
}
