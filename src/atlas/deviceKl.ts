/**
 * KL(base ‖ variant) of the atlas's causal variants computed on the execution provider, so a variant
 * run's [rows, vocab] logits never come back to the host (on webgpu they stay a GPU buffer and feed
 * this session directly; on the CPU it runs on ONNX Runtime's multithreaded kernels). The definition is
 * `heads/kl.ts`'s, which stays the reference the tests compare against.
 *
 * In float32, KL = Σ p (log p − log q) written directly cancels badly (two sums of order log V for a
 * KL of 1e-6). So per row, with d = x_base − x_variant (logit differences, exact for nearby logits)
 * and m = Σ p·d:
 *   KL = log Σ p·exp(−(d − m)) = log1p(Σ p·φ(d − m)),  φ(e) = e^{−e} − 1 + e ≥ 0,
 * where φ is a Taylor polynomial for |e| < ½ (no cancellation) and p·e^{−e} = exp(log p − e) beyond
 * (the variant's own mass on tokens the base masks enters the same sum, `KlBase.feeds`); log1p is
 * Goldberg's log(u)·S/(u − 1). A rounding error δ in m scales the result by ~(1 − δ) only (the
 * first-order terms cancel), and identical rows give exactly 0. Against the float64 reference the
 * relative error is < 1e-6 on hand-made rows (test: ≤ 1e-5; CPU EP and lavapipe webgpu), far below
 * the model's own float32 noise in the logits. The absolute error is ~1e-7·|d|·√KL, |d| the size of
 * the logit differences (d rounds relative to itself): a variant that shifts every logit by a large
 * constant while changing the distribution little is the worst case.
 *
 * The base rows (log-probabilities in float64, then float32) are prepared once per prompt
 * (`klBase`) and, on webgpu, uploaded once into GPU buffers that every variant's KL run reads.
 * Base logits of −∞ (masked tokens) are allowed; variant logits must be finite where p > 0 (a NaN
 * result is an error).
 */
import type * as ortTypes from 'onnxruntime-node';
import { HeadwiseError } from '../errors.js';
import { GraphBuilder, type Value } from '../graph/builder.js';
import { DataType } from '../graph/onnxProto.js';
import { logSoftmax } from '../heads/kl.js';
import type { Model } from '../runtime/model.js';
import { defaultThreads, ort } from '../runtime/ort.js';

/** Base rows of one prompt, as the KL session reads them; `dispose` frees their device buffers. */
export interface KlBase {
  /** Rows per branch (n). */
  rows: number;
  vocab: number;
  /**
   * Each [n, vocab] float32. xb: base logits, lp: log-probabilities, p: probabilities, poly: 0.5 (the
   * |e| below which φ's polynomial is used). A masked token (base logit −∞) has xb 0, lp −log Z, p 0
   * and poly −1, so its term is exp(lp − e) = the variant's mass there, scaled like every other term.
   */
  feeds: { xb: ortTypes.Tensor; lp: ortTypes.Tensor; p: ortTypes.Tensor; poly: ortTypes.Tensor };
  dispose(): void;
}

const BASE_NAMES = ['xb', 'lp', 'p', 'poly'] as const;

/** Prepares `baseLogits` [n, vocab] (a CPU array) for `deviceKl`: log-softmax in float64, once per prompt. */
export async function klBase(model: Model, baseLogits: Float32Array, vocab: number): Promise<KlBase> {
  const n = baseLogits.length / vocab;
  if (!Number.isInteger(n) || n < 1) throw new HeadwiseError(`KL base: ${baseLogits.length} logits is not a whole number of rows of ${vocab}`);
  const xb = new Float32Array(n * vocab);
  const lp = new Float32Array(n * vocab);
  const p = new Float32Array(n * vocab);
  const poly = new Float32Array(n * vocab).fill(POLY_BELOW);
  for (let r = 0; r < n; r++) {
    const row = baseLogits.subarray(r * vocab, (r + 1) * vocab);
    const l = logSoftmax(row);
    let top = 0;
    for (let i = 1; i < vocab; i++) if (l[i] > l[top]) top = i;
    const logZ = row[top] - l[top];
    const o = r * vocab;
    for (let i = 0; i < vocab; i++) {
      const masked = l[i] === -Infinity;
      lp[o + i] = masked ? -logZ : l[i];
      p[o + i] = masked ? 0 : Math.exp(l[i]);
      xb[o + i] = masked ? 0 : row[i];
      if (masked) poly[o + i] = -1;
    }
  }
  const dims = [n, vocab];
  const cpu = { xb: new ort.Tensor('float32', xb, dims), lp: new ort.Tensor('float32', lp, dims), p: new ort.Tensor('float32', p, dims), poly: new ort.Tensor('float32', poly, dims) };
  if (model.device === 'cpu') return { rows: n, vocab, feeds: cpu, dispose: () => {} };
  // On the GPU: one upload per prompt; every variant's KL run then reads these buffers.
  const upload = await model.auxSession('kl-base', () => {
    const b = new GraphBuilder('headwise-kl-base');
    for (const name of BASE_NAMES) b.output(b.op('Identity', [b.input(name, DataType.FLOAT, ['n', 'v'])]), `${name}_dev`, DataType.FLOAT, ['n', 'v']);
    return b;
  }, BASE_NAMES.map((name) => `${name}_dev`));
  const out = await upload.run(cpu);
  const feeds = { xb: out.xb_dev, lp: out.lp_dev, p: out.p_dev, poly: out.poly_dev };
  return { rows: n, vocab, feeds, dispose: () => Object.values(feeds).forEach((t) => t.dispose()) };
}

/**
 * KL(base row r mod n ‖ softmax(logits row r)) for every row of `logits` [branches·n, vocab] — a CPU
 * tensor or, on webgpu, the GPU buffer a variant run left there. The caller keeps ownership of `logits`.
 */
export async function deviceKl(model: Model, base: KlBase, logits: ortTypes.Tensor): Promise<Float32Array> {
  const [rows, vocab] = logits.dims;
  if (logits.dims.length !== 2 || vocab !== base.vocab || rows % base.rows !== 0) {
    throw new HeadwiseError(`KL: logits [${logits.dims.join(', ')}] do not match ${base.rows} base rows of ${base.vocab}`);
  }
  // One session per tail length (and vocabulary): the branches' reshape is then a constant (no Shape node, which webgpu
  // would place on the CPU).
  const session = await model.auxSession(`kl-${base.rows}-${base.vocab}`, () => klGraph(base.rows, base.vocab), [], { threads: model.options.threads ?? defaultThreads(), noSpin: true });
  const out = await session.run({ q: logits, ...base.feeds });
  const kl = out.kl.data as Float32Array;
  for (let r = 0; r < kl.length; r++) if (Number.isNaN(kl[r])) throw new HeadwiseError(`KL: variant row ${r} has a non-finite logit`);
  return kl;
}

/** Mean of `kl` over each branch's `n` rows. */
export function branchMeans(kl: Float32Array, n: number): number[] {
  return Array.from({ length: kl.length / n }, (_, b) => {
    let s = 0;
    for (let r = 0; r < n; r++) s += kl[b * n + r];
    return s / n;
  });
}

/** φ's polynomial is used for |e| below this (a masked token's −1: never). */
const POLY_BELOW = 0.5;

/** Taylor coefficients of φ(e)/e² = Σ_{k≥2} (−e)^{k−2}/k!, low order first; the first dropped term is < 3e-9 relative at |e| = ½. */
const PHI_COEFFS = [2, 3, 4, 5, 6, 7, 8, 9].map((k) => (k % 2 ? -1 : 1) / factorial(k));

function factorial(k: number): number {
  return k <= 1 ? 1 : k * factorial(k - 1);
}

/** The KL graph for `n` base rows of `vocab` logits: q [R, V], xb/lp/p/poly [n, V] → kl [R]. */
export function klGraph(n: number, vocab: number): GraphBuilder {
  const b = new GraphBuilder('headwise-kl');
  const q = b.input('q', DataType.FLOAT, ['r', 'v']);
  const xb = b.input('xb', DataType.FLOAT, ['n', 'v']);
  const lp = b.input('lp', DataType.FLOAT, ['n', 'v']);
  const p = b.input('p', DataType.FLOAT, ['n', 'v']);
  const poly = b.input('poly', DataType.FLOAT, ['n', 'v']);
  // q as [branches, n, V], broadcast against the [n, V] base rows.
  const q3 = b.op('Reshape', [q, b.constI64([-1, n, vocab])]);
  const d = b.sub(xb, q3);
  const m = b.reduceSum(b.mul(p, d), [-1]);
  const e = b.sub(d, m);
  let t: Value = b.scalar(PHI_COEFFS[PHI_COEFFS.length - 1]);
  for (let k = PHI_COEFFS.length - 2; k >= 0; k--) t = b.add(b.scalar(PHI_COEFFS[k]), b.mul(e, t));
  const small = b.mul(p, b.mul(b.mul(e, e), t));
  const large = b.add(b.sub(b.op('Exp', [b.sub(lp, e)]), p), b.mul(p, e));
  const term = b.op('Where', [b.op('Less', [b.op('Abs', [e]), poly]), small, large]);
  const S = b.op('ReduceSum', [term, b.constI64([-1])], { keepdims: { int: 0 } });
  // log1p(S) = log(u)·S/(u − 1), u = 1 + S (exact where u rounds to 1: then log1p(S) = S).
  const u = b.add(b.scalar(1), S);
  const um1 = b.sub(u, b.scalar(1));
  const safe = b.op('Where', [b.op('Equal', [um1, b.scalar(0)]), b.scalar(1), um1]);
  // Every term is ≥ 0 (the polynomial's and, for |e| ≥ ½, φ ≥ 0.1), so S ≥ 0 with no clamp; a NaN stays NaN.
  const kl = b.op('Where', [b.op('Equal', [um1, b.scalar(0)]), S, b.div(b.mul(b.op('Log', [u]), S), safe)]);
  b.output(b.reshape(kl, [-1]), 'kl', DataType.FLOAT, ['r']);
  return b;
}
