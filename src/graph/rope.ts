/**
 * Rotary position embedding frequencies, computed in float32 the way Hugging Face computes them
 * (`modeling_rope_utils.py`), for every RoPE type it has: `default` (1 / θ^(2i/d)), `linear`
 * (÷ factor), `dynamic` (NTK base stretched past the context: inside max_position_embeddings, which
 * is all headwise runs, the default frequencies), `yarn` (interpolation blended with extrapolation by
 * a ramp over dimensions, cos/sin scaled), `longrope` (per-dimension short / long factors, the long
 * ones once a call reaches past original_max_position_embeddings, cos/sin scaled) and `llama3`
 * (Llama 3.1's smooth interpolation between low and high frequency bands). The graph multiplies
 * positions by these and takes cos / sin (`graph/attention.ts`).
 */
import type { RopeConfig } from '../hf/config.js';

export interface RopeFrequencies {
  /** Dimensions rotated (the first ones of each head; the rest pass through). */
  rotaryDim: number;
  /** [rotaryDim / 2] inverse frequencies. */
  inv: Float32Array;
  /** longrope: the frequencies used once the call's last position + 1 exceeds `longFrom`. */
  long?: { inv: Float32Array; from: number };
  /** Multiplier of cos and sin (yarn / longrope attention factor), 1 otherwise. */
  scale: number;
}

const f = Math.fround;

function baseInverse(theta: number, dim: number): Float32Array {
  const inv = new Float32Array(dim / 2);
  for (let i = 0; i < dim / 2; i++) inv[i] = f(1 / f(Math.pow(theta, f(f(2 * i) / dim))));
  return inv;
}

/** The frequencies of one RoPE configuration for heads of `headDim` (`maxPositions`: the config's context). */
export function ropeFrequencies(rope: RopeConfig, headDim: number, maxPositions: number): RopeFrequencies {
  const dim = Math.floor(headDim * rope.partialRotary);
  const half = dim / 2;
  const inv = baseInverse(rope.theta, dim);
  switch (rope.type) {
    case 'default':
    case 'dynamic':
      return { rotaryDim: dim, inv, scale: 1 };
    case 'linear':
      return { rotaryDim: dim, inv: inv.map((x) => f(x / rope.factor!)), scale: 1 };
    case 'llama3':
      return { rotaryDim: dim, inv: llama3(inv, rope), scale: 1 };
    case 'yarn':
      return yarn(rope, dim, maxPositions);
    case 'longrope': {
      const orig = rope.originalMaxPositions!;
      const factor = rope.factor ?? maxPositions / orig;
      const scale = rope.attentionFactor ?? (factor <= 1 ? 1 : Math.sqrt(1 + Math.log(factor) / Math.log(orig)));
      const scaled = (ext: number[]) => Float32Array.from({ length: half }, (_, i) => f(1 / f(f(ext[i]) * f(Math.pow(rope.theta, f(f(2 * i) / dim))))));
      return { rotaryDim: dim, inv: scaled(rope.shortFactor!), long: { inv: scaled(rope.longFactor!), from: orig }, scale: f(scale) };
    }
  }
}

function llama3(inv: Float32Array, rope: RopeConfig): Float32Array {
  const factor = rope.factor!;
  const low = rope.lowFreqFactor!;
  const high = rope.highFreqFactor!;
  const old = rope.originalMaxPositions!;
  const lowWavelen = old / low;
  const highWavelen = old / high;
  const out = new Float32Array(inv.length);
  for (let i = 0; i < inv.length; i++) {
    const wavelen = (2 * Math.PI) / inv[i];
    let v = wavelen > lowWavelen ? inv[i] / factor : inv[i];
    const medium = !(wavelen < highWavelen) && !(wavelen > lowWavelen);
    if (medium) {
      const smooth = (old / wavelen - low) / (high - low);
      v = (1 - smooth) * (v / factor) + smooth * v;
    }
    out[i] = v;
  }
  return out;
}

function yarn(rope: RopeConfig, dim: number, maxPositions: number): RopeFrequencies {
  const base = rope.theta;
  const orig = rope.originalMaxPositions!;
  const factor = rope.factor ?? maxPositions / orig;
  const mscale = (scale: number, m = 1) => (scale <= 1 ? 1 : 0.1 * m * Math.log(scale) + 1);
  const scale = rope.attentionFactor
    ?? (rope.mscale && rope.mscaleAllDim ? mscale(factor, rope.mscale) / mscale(factor, rope.mscaleAllDim) : mscale(factor));
  const betaFast = rope.betaFast || 32;
  const betaSlow = rope.betaSlow || 1;
  const correctionDim = (rotations: number) => (dim * Math.log(orig / (rotations * 2 * Math.PI))) / (2 * Math.log(base));
  let low = correctionDim(betaFast);
  let high = correctionDim(betaSlow);
  if (rope.truncate !== false) {
    low = Math.floor(low);
    high = Math.ceil(high);
  }
  low = Math.max(low, 0);
  high = Math.min(high, dim - 1);
  if (low === high) high += 0.001;
  const half = dim / 2;
  const inv = new Float32Array(half);
  for (let i = 0; i < half; i++) {
    const posFreq = f(Math.pow(base, f(f(2 * i) / dim)));
    const extrapolation = f(1 / posFreq);
    const interpolation = f(1 / f(factor * posFreq));
    const ramp = Math.min(1, Math.max(0, f(f(i - low) / f(high - low))));
    const extrapolationFactor = f(1 - ramp);
    inv[i] = f(f(interpolation * f(1 - extrapolationFactor)) + f(extrapolation * extrapolationFactor));
  }
  return { rotaryDim: dim, inv, scale: f(scale) };
}
