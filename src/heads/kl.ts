/**
 * KL divergence between next-token distributions given as logits — the yardstick of streaming harm
 * (one KV head switched to sink + window) and of ablation importance (one head ablated), methods.md §1.
 * KL(p ‖ q) = Σ_v p_v (log p_v − log q_v) in nats, with p = softmax(base logits) and q = softmax(changed
 * logits); log-softmax subtracts the row max first so large logits do not overflow. Logits of −∞
 * (masked vocabulary entries) are allowed; a row that is all −∞ or has NaN is an error.
 */
import { check } from '../errors.js';

/** log softmax of one logit row, computed as x − max − ln Σ exp(x − max). */
export function logSoftmax(logits: ArrayLike<number>): Float64Array {
  check(logits.length > 0, 'log-softmax of an empty logit row');
  let max = -Infinity;
  for (let i = 0; i < logits.length; i++) {
    // A message built per element would dominate the cost of long vocabularies: build it only on failure.
    if (Number.isNaN(logits[i]) || logits[i] === Infinity) check(false, `logit ${i} is ${logits[i]}`);
    if (logits[i] > max) max = logits[i];
  }
  check(max > -Infinity, 'every logit of the row is −∞');
  let sum = 0;
  for (let i = 0; i < logits.length; i++) sum += Math.exp(logits[i] - max);
  const logZ = max + Math.log(sum);
  const out = new Float64Array(logits.length);
  for (let i = 0; i < logits.length; i++) out[i] = logits[i] - logZ;
  return out;
}

/**
 * KL(softmax(p) ‖ softmax(q)) for one position, in nats. Infinity when q gives probability 0 to a
 * token p does not. Small negative values from rounding are clamped to 0.
 * @example klDivergence([2, 0], [2, 0]) // 0
 */
export function klDivergence(pLogits: ArrayLike<number>, qLogits: ArrayLike<number>): number {
  check(pLogits.length === qLogits.length, `KL: logit rows differ in length (${pLogits.length} vs ${qLogits.length})`);
  const lp = logSoftmax(pLogits);
  const lq = logSoftmax(qLogits);
  let kl = 0;
  for (let i = 0; i < lp.length; i++) {
    if (lp[i] === -Infinity) continue;
    kl += Math.exp(lp[i]) * (lp[i] - lq[i]);
  }
  return Math.max(0, kl);
}

/**
 * KL per position for logits stored row-major as [positions × vocabSize] (the runtime's logits output
 * for several positions, e.g. the answer tokens of a needle prompt).
 */
export function klPerPosition(pLogits: ArrayLike<number>, qLogits: ArrayLike<number>, vocabSize: number): Float64Array {
  check(Number.isInteger(vocabSize) && vocabSize > 0, `vocabSize must be a positive integer (got ${vocabSize})`);
  check(pLogits.length === qLogits.length, `KL: logit arrays differ in length (${pLogits.length} vs ${qLogits.length})`);
  check(pLogits.length % vocabSize === 0, `KL: ${pLogits.length} logits is not a whole number of rows of ${vocabSize}`);
  const positions = pLogits.length / vocabSize;
  const slice = (x: ArrayLike<number>, r: number): ArrayLike<number> =>
    x instanceof Float32Array || x instanceof Float64Array
      ? x.subarray(r * vocabSize, (r + 1) * vocabSize)
      : (Array.prototype.slice.call(x, r * vocabSize, (r + 1) * vocabSize) as number[]);
  const out = new Float64Array(positions);
  for (let r = 0; r < positions; r++) out[r] = klDivergence(slice(pLogits, r), slice(qLogits, r));
  return out;
}

/** Mean KL over positions (see `klPerPosition`); NaN for zero positions. */
export function meanKl(pLogits: ArrayLike<number>, qLogits: ArrayLike<number>, vocabSize: number): number {
  const kl = klPerPosition(pLogits, qLogits, vocabSize);
  if (kl.length === 0) return NaN;
  let sum = 0;
  for (const v of kl) sum += v;
  return sum / kl.length;
}

/**
 * KL(p ‖ softmax(q)) for one position when log p is already known (`logSoftmax` of the base logits,
 * computed once and reused for every variant compared with the same base). Same conventions as
 * `klDivergence`; no allocation, so it suits thousands of comparisons.
 * @example klFromLogProbs(logSoftmax([2, 0]), [2, 0]) // 0
 */
export function klFromLogProbs(logP: ArrayLike<number>, qLogits: ArrayLike<number>): number {
  const n = logP.length;
  check(n === qLogits.length, `KL: rows differ in length (${n} vs ${qLogits.length})`);
  check(n > 0, 'KL of an empty row');
  let max = -Infinity;
  for (let i = 0; i < n; i++) {
    const x = qLogits[i];
    if (Number.isNaN(x) || x === Infinity) check(false, `logit ${i} is ${x}`);
    if (x > max) max = x;
  }
  check(max > -Infinity, 'every logit of the row is −∞');
  let sum = 0;
  for (let i = 0; i < n; i++) sum += Math.exp(qLogits[i] - max);
  const logZ = max + Math.log(sum);
  let kl = 0;
  for (let i = 0; i < n; i++) {
    const lp = logP[i];
    if (lp === -Infinity) continue;
    kl += Math.exp(lp) * (lp - (qLogits[i] - logZ));
  }
  return Math.max(0, kl);
}
