/**
 * How much a weight format changes a model, measured rather than assumed: per linear weight, the
 * relative reconstruction error ‖W − Ŵ‖/‖W‖ of the format's codes (computed here from the checkpoint
 * with the same pure functions the weight store uses), and per text sample the KL divergence of the
 * next-token distributions of the compact model from the float32 one, position by position, plus how
 * often the two agree on the argmax. `headwise quant-report` prints both.
 */
import type { Checkpoint } from '../hf/checkpoint.js';
import { archFor } from '../graph/compile.js';
import { dequantizeBlocks, formatBits, quantizeBlocks, reconstructionError, toFloat16Bits, type WeightOptions } from '../graph/quant.js';
import { klPerPosition } from '../heads/kl.js';
import { forward, newCache } from '../runtime/forward.js';
import { fullCache } from '../runtime/generate.js';
import type { Model } from '../runtime/model.js';

export interface WeightError {
  name: string;
  shape: number[];
  /** ‖W − Ŵ‖ / ‖W‖ */
  relative: number;
  maxAbs: number;
}

/** Reconstruction error of every 2-D weight (one tensor in memory at a time). */
export function weightErrors(ckpt: Checkpoint, weights: WeightOptions, onTensor?: (done: number, total: number) => void): WeightError[] {
  const arch = archFor(ckpt);
  const prefixes = arch.namePrefixes ?? [''];
  const matrices = arch.weights.filter((w) => w.shape.length === 2);
  const bits = formatBits(weights.format);
  const out: WeightError[] = [];
  matrices.forEach((spec, i) => {
    const name = prefixes.map((p) => p + spec.name).find((n) => ckpt.has(n)) ?? spec.name;
    const w = ckpt.read(name, spec.shape);
    const [n, k] = spec.shape;
    let approx: Float32Array;
    if (bits !== null) approx = dequantizeBlocks(quantizeBlocks(w, n, k, bits, weights.blockSize));
    else if (weights.format === 'f16') approx = halfToFloat(toFloat16Bits(w));
    else approx = w;
    out.push({ name, shape: spec.shape, ...reconstructionError(w, approx) });
    onTensor?.(i + 1, matrices.length);
  });
  return out;
}

function halfToFloat(h: Uint16Array): Float32Array {
  return Float32Array.from(h, (v) => {
    const exp = (v >> 10) & 31, frac = v & 1023, sign = v & 0x8000 ? -1 : 1;
    if (exp === 31) return frac ? NaN : sign * Infinity;
    return exp === 0 ? sign * frac * 2 ** -24 : sign * (1 + frac / 1024) * 2 ** (exp - 15);
  });
}

/** Next-token logits at every position of `ids` ([ids.length, vocab]), in chunks of `chunk`. */
export async function logitsAtEveryPosition(model: Model, ids: number[], chunk = 128): Promise<Float32Array> {
  // The model's own sliding windows, if any, bound their layers' caches (runtime/modelWindow.ts).
  const setup = fullCache(model);
  const gs = await model.session(setup.layout);
  const cache = newCache(model, gs, setup.policies);
  cache.reserve(ids.length);
  const V = model.config.vocabSize;
  const out = new Float32Array(ids.length * V);
  for (let i = 0; i < ids.length; i += chunk) {
    const part = ids.slice(i, i + chunk);
    const r = await forward(model, gs, cache, part, { logitsAt: part.map((_, j) => j) });
    out.set(r.logits, i * V);
  }
  return out;
}

export interface LogitDrift {
  positions: number;
  /** KL(p_f32 ‖ p_format) in nats: mean, median, 99th percentile and largest over positions. */
  klMean: number;
  klMedian: number;
  klP99: number;
  klMax: number;
  /** Share of positions where both models' argmax agree. */
  top1Agreement: number;
}

export function logitDrift(reference: Float32Array, other: Float32Array, vocab: number): LogitDrift {
  const kl = Array.from(klPerPosition(reference, other, vocab)).sort((a, b) => a - b);
  const n = kl.length;
  let agree = 0;
  for (let p = 0; p < n; p++) if (argmax(reference, p * vocab, vocab) === argmax(other, p * vocab, vocab)) agree++;
  return {
    positions: n,
    klMean: kl.reduce((a, b) => a + b, 0) / n,
    klMedian: kl[n >> 1],
    klP99: kl[Math.min(n - 1, Math.floor(0.99 * n))],
    klMax: kl[n - 1],
    top1Agreement: agree / n,
  };
}

function argmax(x: Float32Array, start: number, len: number): number {
  let best = 0;
  for (let i = 1; i < len; i++) if (x[start + i] > x[start + best]) best = i;
  return best;
}
