/**
 * Weight formats and block quantisation: the pure functions that turn a float32 `[N, K]` matrix
 * (N output rows, K inputs, as Hugging Face Linear stores it) into the layout ONNX Runtime's
 * `MatMulNBits` and `GatherBlockQuantized` (com.microsoft, uint8 data) read, and back.
 *
 * Layout (symmetric, no zero points stored; ONNX Runtime's default zero point is 2^(bits−1)):
 * - each row n is cut along K into `ceil(K / blockSize)` blocks; the last is padded with zeros;
 * - `codes` is uint8 `[N, nBlocks, blockSize · bits / 8]`: 8-bit codes one per byte, 4-bit codes two
 *   per byte, the lower-K element in the low nibble;
 * - `scales` is float32 `[N, nBlocks]`, row-major (block b of row n at `n · nBlocks + b`);
 * - w ≈ (code − 2^(bits−1)) · scale.
 * q8 uses scale = max|w| / 127 (llama.cpp's Q8_0); q4 uses scale = m / −8 where m is the block's
 * value of largest magnitude, so that m maps exactly to code 0 and the 16 levels are all used
 * (llama.cpp's Q4_0, and MLAS's own block quantiser).
 */
import { UsageError } from '../errors.js';

export type WeightFormat = 'f32' | 'f16' | 'q8' | 'q4';
export const WEIGHT_FORMATS: readonly WeightFormat[] = ['f32', 'f16', 'q8', 'q4'];
export const DEFAULT_BLOCK_SIZE = 32;

/** How a model's weights are stored and computed. */
export interface WeightOptions {
  format: WeightFormat;
  /** Elements per quantisation block along K (q8/q4): a power of two ≥ 16. */
  blockSize: number;
  /** q8/q4: also quantise the token embedding (GatherBlockQuantized) and the LM head. Default true. */
  quantizeEmbeddings: boolean;
}

export const F32_WEIGHTS: WeightOptions = { format: 'f32', blockSize: DEFAULT_BLOCK_SIZE, quantizeEmbeddings: true };

export function weightOptions(format: WeightFormat = 'f32', blockSize = DEFAULT_BLOCK_SIZE, quantizeEmbeddings = true): WeightOptions {
  if (!WEIGHT_FORMATS.includes(format)) throw new UsageError(`weights format "${format}": expected one of ${WEIGHT_FORMATS.join(', ')}`);
  if (!Number.isInteger(blockSize) || blockSize < 16 || (blockSize & (blockSize - 1)) !== 0) {
    throw new UsageError(`weights block size ${blockSize}: expected a power of two ≥ 16`);
  }
  return { format, blockSize, quantizeEmbeddings };
}

/** Short key for caches and file names (`q4b32`, `q8b32e0`, `f32`). */
export function weightKey(w: WeightOptions): string {
  if (w.format === 'f32' || w.format === 'f16') return w.format;
  return `${w.format}b${w.blockSize}${w.quantizeEmbeddings ? '' : 'e0'}`;
}

export function formatBits(format: WeightFormat): 4 | 8 | null {
  return format === 'q4' ? 4 : format === 'q8' ? 8 : null;
}

export interface BlockQuantized {
  /** uint8 [n, nBlocks, blockSize·bits/8]. */
  codes: Uint8Array;
  /** float32 [n, nBlocks]. */
  scales: Float32Array;
  n: number;
  k: number;
  bits: 4 | 8;
  blockSize: number;
}

export const blockCount = (k: number, blockSize: number): number => Math.ceil(k / blockSize);

/** Bytes of the codes and scales of an [n, k] matrix. */
export function quantizedBytes(n: number, k: number, bits: 4 | 8, blockSize: number): number {
  const nb = blockCount(k, blockSize);
  return n * nb * (blockSize * bits / 8) + n * nb * 4;
}

/**
 * Quantises a row-major [n, k] float32 matrix block by block along k.
 * @example quantizeBlocks(Float32Array.from([1, -2, 0.5, 4]), 1, 4, 8, 16).scales // [4 / 127]
 */
export function quantizeBlocks(w: Float32Array, n: number, k: number, bits: 4 | 8, blockSize: number): BlockQuantized {
  if (w.length !== n * k) throw new Error(`quantizeBlocks: ${w.length} values for [${n}, ${k}]`);
  const nb = blockCount(k, blockSize);
  const blob = (blockSize * bits) / 8;
  const zero = 1 << (bits - 1);
  const maxCode = (1 << bits) - 1;
  const codes = new Uint8Array(n * nb * blob);
  const scales = new Float32Array(n * nb);
  const q = new Uint8Array(blockSize);
  for (let r = 0; r < n; r++) {
    for (let b = 0; b < nb; b++) {
      const start = r * k + b * blockSize;
      const len = Math.min(blockSize, k - b * blockSize);
      let amax = 0;
      let m = 0;
      for (let i = 0; i < len; i++) {
        const v = w[start + i];
        if (Math.abs(v) > amax) {
          amax = Math.abs(v);
          m = v;
        }
      }
      const scale = bits === 8 ? amax / 127 : m / -8;
      const inv = scale !== 0 ? 1 / scale : 0;
      q.fill(zero);
      for (let i = 0; i < len; i++) q[i] = Math.min(maxCode, Math.max(0, Math.round(w[start + i] * inv) + zero));
      // Store the scale as float32 first, as the kernels will read it.
      scales[r * nb + b] = scale;
      const out = (r * nb + b) * blob;
      if (bits === 8) codes.set(q, out);
      else for (let i = 0; i < blob; i++) codes[out + i] = q[2 * i] | (q[2 * i + 1] << 4);
    }
  }
  return { codes, scales, n, k, bits, blockSize };
}

/** The float32 [n, k] matrix a quantised one stands for: (code − 2^(bits−1)) · scale. */
export function dequantizeBlocks(q: BlockQuantized): Float32Array {
  const { n, k, bits, blockSize } = q;
  const nb = blockCount(k, blockSize);
  const blob = (blockSize * bits) / 8;
  const zero = 1 << (bits - 1);
  const out = new Float32Array(n * k);
  for (let r = 0; r < n; r++) {
    for (let b = 0; b < nb; b++) {
      const s = q.scales[r * nb + b];
      const base = (r * nb + b) * blob;
      const len = Math.min(blockSize, k - b * blockSize);
      for (let i = 0; i < len; i++) {
        const code = bits === 8 ? q.codes[base + i] : (q.codes[base + (i >> 1)] >> ((i & 1) * 4)) & 15;
        out[r * k + b * blockSize + i] = (code - zero) * s;
      }
    }
  }
  return out;
}

/** float32 -> IEEE half (round to nearest even), as uint16 bits. */
export function toFloat16Bits(x: Float32Array): Uint16Array {
  const f = new Float32Array(1);
  const u = new Uint32Array(f.buffer);
  const out = new Uint16Array(x.length);
  for (let i = 0; i < x.length; i++) {
    f[0] = x[i];
    const bits = u[0];
    const sign = (bits >>> 16) & 0x8000;
    const exp = (bits >>> 23) & 0xff;
    let mant = bits & 0x7fffff;
    if (exp === 0xff) {
      out[i] = sign | 0x7c00 | (mant ? 0x200 : 0);
      continue;
    }
    const e = exp - 127 + 15;
    if (e >= 31) {
      out[i] = sign | 0x7c00;
      continue;
    }
    if (e <= 0) {
      if (e < -10) {
        out[i] = sign;
        continue;
      }
      mant |= 0x800000;
      const shift = 14 - e;
      let h = mant >>> shift;
      const rem = mant & ((1 << shift) - 1);
      const half = 1 << (shift - 1);
      if (rem > half || (rem === half && (h & 1))) h++;
      out[i] = sign | h;
      continue;
    }
    let h = (e << 10) | (mant >>> 13);
    const rem = mant & 0x1fff;
    if (rem > 0x1000 || (rem === 0x1000 && (h & 1))) h++;
    out[i] = sign | h;
  }
  return out;
}

/** Relative reconstruction error ‖w − ŵ‖ / ‖w‖ and the largest absolute error. */
export function reconstructionError(w: Float32Array, approx: Float32Array): { relative: number; maxAbs: number } {
  let num = 0;
  let den = 0;
  let maxAbs = 0;
  for (let i = 0; i < w.length; i++) {
    const d = w[i] - approx[i];
    num += d * d;
    den += w[i] * w[i];
    if (Math.abs(d) > maxAbs) maxAbs = Math.abs(d);
  }
  return { relative: den > 0 ? Math.sqrt(num / den) : Math.sqrt(num), maxAbs };
}
