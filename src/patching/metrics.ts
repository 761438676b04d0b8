/**
 * The metrics of activation patching and head importance, as pure functions of logits: the logit
 * difference between two answer tokens, the log-probability of an answer (summed over its tokens,
 * teacher-forced), and the KL divergence of the output distribution from a baseline run. Logits are
 * row-major [rows, vocab], one row per position read. How the rows are produced is `patchedRun.ts`.
 */
import { check } from '../errors.js';
import { klPerPosition, logSoftmax } from '../heads/kl.js';

/** What a patching or importance run measures. */
export type MetricName = 'logit-diff' | 'logprob' | 'kl';
export const METRICS: readonly MetricName[] = ['logit-diff', 'logprob', 'kl'];

/**
 * logit(answer) − logit(wrong) of one row.
 * @example logitDifference(Float32Array.of(1, 4, 2), 1, 2) // 2
 */
export function logitDifference(row: ArrayLike<number>, answer: number, wrong: number): number {
  check(answer >= 0 && answer < row.length && wrong >= 0 && wrong < row.length, `logit difference: token ${answer} or ${wrong} is outside the ${row.length} logits`);
  return row[answer] - row[wrong];
}

/**
 * Σ_r log softmax(rows[r])[tokens[r]]: the log-probability of a multi-token answer when row r is the
 * position predicting token r.
 * @example answerLogProb(Float32Array.of(0, 0), 2, [1]) // ln ½
 */
export function answerLogProb(rows: ArrayLike<number>, vocab: number, tokens: readonly number[]): number {
  check(rows.length === tokens.length * vocab, `answer log-prob: ${rows.length} logits for ${tokens.length} tokens of a ${vocab}-token vocabulary`);
  let sum = 0;
  tokens.forEach((t, r) => {
    const row = Array.prototype.slice.call(rows, r * vocab, (r + 1) * vocab) as number[];
    sum += logSoftmax(row)[t];
  });
  return sum;
}

/** Mean over rows of KL(softmax(base) ‖ softmax(changed)), in nats. */
export function meanKl(base: ArrayLike<number>, changed: ArrayLike<number>, vocab: number): number {
  const kl = klPerPosition(base, changed, vocab);
  return kl.reduce((a, b) => a + b, 0) / kl.length;
}

/**
 * The share of the clean-minus-corrupt gap a patch restores: (patched − corrupt) / (clean − corrupt)
 * for a logit difference or log-prob; for KL (measured from the clean run, so clean = 0),
 * 1 − patched / corrupt. 1 = fully restored, 0 = no better than the corrupt run.
 * @example restoredFraction('logit-diff', 4, -2, 1) // 0.5
 */
export function restoredFraction(metric: MetricName, clean: number, corrupt: number, patched: number): number {
  if (metric === 'kl') return corrupt === 0 ? 0 : 1 - patched / corrupt;
  return clean === corrupt ? 0 : (patched - corrupt) / (clean - corrupt);
}
