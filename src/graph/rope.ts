/**
 * Rotary position embedding frequencies, computed in float32 exactly as Hugging Face does:
 * `default` (1 / θ^(2i/d)) and `llama3` (Llama 3.1's smooth interpolation between low and high
 * frequency bands).
 */
import type { ModelConfig } from '../hf/config.js';

export function ropeInverseFrequencies(c: ModelConfig): Float32Array {
  const rope = c.rope!;
  const half = c.headDim / 2;
  const f = Math.fround;
  const inv = new Float32Array(half);
  for (let i = 0; i < half; i++) inv[i] = f(1 / f(Math.pow(rope.theta, f(f(2 * i) / c.headDim))));
  if (rope.type === 'default') return inv;

  const factor = rope.factor!;
  const low = rope.lowFreqFactor!;
  const high = rope.highFreqFactor!;
  const old = rope.originalMaxPositions!;
  const lowWavelen = old / low;
  const highWavelen = old / high;
  const out = new Float32Array(half);
  for (let i = 0; i < half; i++) {
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
