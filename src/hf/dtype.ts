/**
 * Element types found in safetensors files and their conversion to float32, the precision the
 * graphs compute in. Conversions write into a caller's buffer so a checkpoint is never held twice.
 */
export type SafetensorsDtype = 'F64' | 'F32' | 'F16' | 'BF16' | 'I64' | 'I32' | 'I16' | 'I8' | 'U8' | 'BOOL';

export const DTYPE_BYTES: Record<SafetensorsDtype, number> = {
  F64: 8, F32: 4, F16: 2, BF16: 2, I64: 8, I32: 4, I16: 2, I8: 1, U8: 1, BOOL: 1,
};

/** Dtypes whose values headwise can turn into float32 weights. */
export const FLOAT_DTYPES: ReadonlySet<SafetensorsDtype> = new Set(['F64', 'F32', 'F16', 'BF16']);

export function isSafetensorsDtype(s: unknown): s is SafetensorsDtype {
  return typeof s === 'string' && Object.prototype.hasOwnProperty.call(DTYPE_BYTES, s);
}

const f16Table = (() => {
  const t = new Float32Array(65536);
  for (let h = 0; h < 65536; h++) {
    const sign = h & 0x8000 ? -1 : 1;
    const exp = (h >> 10) & 0x1f;
    const frac = h & 0x3ff;
    if (exp === 0) t[h] = sign * frac * 2 ** -24;
    else if (exp === 31) t[h] = frac ? NaN : sign * Infinity;
    else t[h] = sign * (1 + frac / 1024) * 2 ** (exp - 15);
  }
  return t;
})();

/** Converts raw little-endian bytes of `dtype` into `out` (float32, length = element count). */
export function toFloat32(dtype: SafetensorsDtype, bytes: Uint8Array, out: Float32Array): void {
  const n = out.length;
  const aligned = (bytes.byteOffset % DTYPE_BYTES[dtype]) === 0;
  const src = aligned ? bytes : bytes.slice();
  switch (dtype) {
    case 'F32':
      out.set(new Float32Array(src.buffer, src.byteOffset, n));
      return;
    case 'F64': {
      const s = new Float64Array(src.buffer, src.byteOffset, n);
      for (let i = 0; i < n; i++) out[i] = s[i];
      return;
    }
    case 'BF16': {
      const s = new Uint16Array(src.buffer, src.byteOffset, n);
      const o = new Uint32Array(out.buffer, out.byteOffset, n);
      for (let i = 0; i < n; i++) o[i] = s[i] << 16;
      return;
    }
    case 'F16': {
      const s = new Uint16Array(src.buffer, src.byteOffset, n);
      for (let i = 0; i < n; i++) out[i] = f16Table[s[i]];
      return;
    }
    default:
      throw new Error(`toFloat32: ${dtype} is not a float type`);
  }
}

/** Dtypes headwise can write float32 values as. */
export type WritableFloatDtype = 'F32' | 'F16' | 'BF16';

const f32Scratch = new Float32Array(1);
const u32Scratch = new Uint32Array(f32Scratch.buffer);

/** float32 -> IEEE half bits, round to nearest even (overflow to ±inf, NaN kept). */
function f16Bits(x: number): number {
  f32Scratch[0] = x;
  const u = u32Scratch[0];
  const sign = (u >>> 16) & 0x8000;
  const exp = (u >>> 23) & 0xff;
  const mant = u & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  const e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    const m = mant | 0x800000;
    const shift = 14 - e;
    let h = m >>> shift;
    const rem = m & ((1 << shift) - 1);
    const half = 1 << (shift - 1);
    if (rem > half || (rem === half && (h & 1))) h++;
    return sign | h;
  }
  let h = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && (h & 1))) h++;
  return sign | h;
}

/**
 * Converts float32 values into raw little-endian bytes of `dtype` (`out` has n × bytes-per-element
 * bytes). BF16 and F16 round to nearest even, as PyTorch does.
 */
export function fromFloat32(dtype: WritableFloatDtype, src: Float32Array, out: Uint8Array): void {
  const n = src.length;
  if (out.length !== n * DTYPE_BYTES[dtype]) throw new Error(`fromFloat32: out has ${out.length} bytes, ${n} ${dtype} values need ${n * DTYPE_BYTES[dtype]}`);
  if (dtype === 'F32') {
    out.set(new Uint8Array(src.buffer, src.byteOffset, n * 4));
    return;
  }
  const aligned = out.byteOffset % 2 === 0;
  const dst = aligned ? new Uint16Array(out.buffer, out.byteOffset, n) : new Uint16Array(n);
  if (dtype === 'BF16') {
    const s = new Uint32Array(src.buffer, src.byteOffset, n);
    for (let i = 0; i < n; i++) {
      const u = s[i];
      dst[i] = (u & 0x7fffffff) > 0x7f800000 ? ((u >>> 16) | 0x40) : (u + 0x7fff + ((u >>> 16) & 1)) >>> 16;
    }
  } else {
    for (let i = 0; i < n; i++) dst[i] = f16Bits(src[i]);
  }
  if (!aligned) out.set(new Uint8Array(dst.buffer));
}
