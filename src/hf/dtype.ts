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
  return typeof s === 'string' && s in DTYPE_BYTES;
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
