/**
 * Block quantisation on hand-made matrices (pure functions), then each compact format through a real
 * ONNX Runtime session (CPU EP): MatMulNBits and GatherBlockQuantized against the dequantised
 * reference computed here, and the f16 MatMul against the half-rounded weights.
 */
import { describe, expect, it } from 'vitest';
import * as ort from 'onnxruntime-node';
import { GraphBuilder, compactNames, nbitsSlices, transposedName } from './builder.js';
import { DataType } from './onnxProto.js';
import { dequantizeBlocks, quantizeBlocks, reconstructionError, toFloat16Bits, weightOptions, type WeightFormat } from './quant.js';
import { createSession } from '../runtime/ort.js';

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32 - 0.5;
  };
}

const randn = (n: number, seed: number, scale = 1) => {
  const r = rng(seed);
  return Float32Array.from({ length: n }, () => r() * 2 * scale);
};

const bytes = (a: ArrayBufferView) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);

describe('quantizeBlocks / dequantizeBlocks', () => {
  it('q8: scale is max|w|/127 per block and codes round to nearest (halves up)', () => {
    const w = Float32Array.from([1, -2, 0.5, 4, /* block 2 */ -1, 0, 0, 0.25]);
    const q = quantizeBlocks(w, 1, 8, 8, 4);
    expect(Array.from(q.scales)).toEqual([Math.fround(4 / 127), Math.fround(1 / 127)]);
    expect(Array.from(q.codes)).toEqual([128 + 32, 128 - 63, 128 + 16, 128 + 127, 128 - 127, 128, 128, 128 + 32]);
    const back = dequantizeBlocks(q);
    expect(back[3]).toBeCloseTo(4, 6);
    expect(back[4]).toBeCloseTo(-1, 6);
  });

  it('q4: the largest-magnitude value maps to code 0 (scale m/−8), two codes per byte, low nibble first', () => {
    const w = Float32Array.from([-8, 4, 1, 0]);
    const q = quantizeBlocks(w, 1, 4, 4, 4);
    expect(q.scales[0]).toBe(1);
    // codes: -8/1... scale = m/-8 = 1 -> -8 -> 0, 4 -> 12, 1 -> 9, 0 -> 8
    expect(Array.from(q.codes)).toEqual([0 | (12 << 4), 9 | (8 << 4)]);
    expect(Array.from(dequantizeBlocks(q))).toEqual([-8, 4, 1, 0]);
    // A positive extreme flips the scale's sign so that it, too, is code 0.
    const p = quantizeBlocks(Float32Array.from([8, -4, 0, 0]), 1, 4, 4, 4);
    expect(p.scales[0]).toBe(-1);
    expect(Array.from(dequantizeBlocks(p), (v) => v + 0)).toEqual([8, -4, 0, 0]);
  });

  it('a K off the block is padded with the zero code; all-zero blocks have scale 0', () => {
    const q = quantizeBlocks(Float32Array.from([0, 0, 0, 0, 1, 2]), 1, 6, 8, 4);
    expect(Array.from(q.scales)).toEqual([0, Math.fround(2 / 127)]);
    expect(Array.from(q.codes.subarray(4))).toEqual([128 + 64, 128 + 127, 128, 128]);
    const back = dequantizeBlocks(q);
    [0, 0, 0, 0, 64, 127].forEach((c, i) => expect(back[i]).toBeCloseTo(c * (2 / 127), 6));
  });

  it('error is within half a step per element (q4: one step at the clamped end), and q8 ≪ q4', () => {
    const n = 16, k = 96;
    const w = randn(n * k, 1);
    for (const bits of [8, 4] as const) {
      const q = quantizeBlocks(w, n, k, bits, 32);
      const back = dequantizeBlocks(q);
      for (let r = 0; r < n; r++) for (let i = 0; i < k; i++) {
        const s = Math.abs(q.scales[r * 3 + Math.floor(i / 32)]);
        expect(Math.abs(back[r * k + i] - w[r * k + i])).toBeLessThanOrEqual((bits === 8 ? s / 2 : s) + 1e-7);
      }
    }
    const e8 = reconstructionError(w, dequantizeBlocks(quantizeBlocks(w, n, k, 8, 32))).relative;
    const e4 = reconstructionError(w, dequantizeBlocks(quantizeBlocks(w, n, k, 4, 32))).relative;
    expect(e8).toBeLessThan(0.01);
    expect(e4).toBeGreaterThan(5 * e8);
    expect(e4).toBeLessThan(0.15);
  });

  it('toFloat16Bits rounds to nearest even, keeps signs, overflows to infinity', () => {
    expect(Array.from(toFloat16Bits(Float32Array.from([1, -2, 0.5, 65504, 1e6, 0, 2 ** -24, 1 + 2 ** -11, 1 + 3 * 2 ** -11]))))
      .toEqual([0x3c00, 0xc000, 0x3800, 0x7bff, 0x7c00, 0, 1, 0x3c00, 0x3c02]);
  });

  it('weightOptions refuses bad formats and block sizes in one line', () => {
    expect(() => weightOptions('q3' as WeightFormat)).toThrow(/expected one of f32, f16, q8, q4/);
    expect(() => weightOptions('q4', 24)).toThrow(/power of two ≥ 16/);
  });
});

/** y = x · wᵀ + bias through `b.linear` on a compact weight, with the weight's stored tensors inline. */
async function runLinear(format: WeightFormat, x: Float32Array, m: number, w: Float32Array, n: number, k: number, opts: { bias?: Float32Array; accuracyLevel?: number; conv1d?: boolean; blockSize?: number } = {}) {
  const b = new GraphBuilder('t');
  const blockSize = opts.blockSize ?? 32;
  const shape = opts.conv1d ? [k, n] : [n, k];
  b.weightPlan = { options: weightOptions(format, blockSize), shapes: new Map([['w', shape]]), keepF32: new Set(), accuracyLevel: opts.accuracyLevel ?? 0 };
  const xin = b.input('x', DataType.FLOAT, [m, k]);
  const bias = opts.bias ? b.constF32(opts.bias, [n]) : undefined;
  b.output(opts.conv1d ? b.gemm(xin, 'w', bias) : b.linear(xin, 'w', bias), 'y', DataType.FLOAT, [m, n]);
  // The stored matrix is [N, K]; a Conv1D weight ([K, N]) is stored transposed.
  const rows = opts.conv1d ? transpose(w, k, n) : w;
  const matrix = opts.conv1d ? transposedName('w') : 'w';
  let ref: Float32Array;
  if (format === 'f16') {
    const half = toFloat16Bits(transpose(rows, n, k));
    b.constRaw(compactNames.half(matrix), DataType.FLOAT16, [k, n], bytes(half));
    ref = f16Round(rows);
  } else {
    const q = quantizeBlocks(rows, n, k, format === 'q8' ? 8 : 4, blockSize);
    const nb = Math.ceil(k / blockSize);
    b.constRaw(compactNames.codes(matrix), DataType.UINT8, [n, nb, q.codes.length / n / nb], q.codes);
    b.constRaw(compactNames.scales(matrix), DataType.FLOAT, [n * nb], bytes(q.scales));
    ref = dequantizeBlocks(q);
  }
  expect([...b.compactWeights.get('w')!]).toEqual([opts.conv1d ? 'cols' : 'rows']);
  const s = await createSession(b.toBytes(), { threads: 1 });
  const y = (await s.run({ x: new ort.Tensor('float32', x, [m, k]) })).y.data as Float32Array;
  await s.release();
  const expected = new Float32Array(m * n);
  for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) {
    let acc = opts.bias?.[j] ?? 0;
    for (let t = 0; t < k; t++) acc += x[i * k + t] * ref[j * k + t];
    expected[i * n + j] = acc;
  }
  return { y, expected };
}

function transpose(x: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(x.length);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = x[r * cols + c];
  return out;
}

function f16Round(x: Float32Array): Float32Array {
  const h = toFloat16Bits(x);
  return Float32Array.from(h, (v) => {
    const exp = (v >> 10) & 31, frac = v & 1023, sign = v & 0x8000 ? -1 : 1;
    return exp === 0 ? sign * frac * 2 ** -24 : sign * (1 + frac / 1024) * 2 ** (exp - 15);
  });
}

const maxRel = (y: Float32Array, e: Float32Array) => {
  let d = 0, s = 0;
  for (let i = 0; i < y.length; i++) {
    d = Math.max(d, Math.abs(y[i] - e[i]));
    s = Math.max(s, Math.abs(e[i]));
  }
  return d / s;
};

describe('MatMulNBits row slices', () => {
  it('cuts a matrix into whole multiples of 1024 rows of at most maxBytes codes', () => {
    expect(nbitsSlices(128256, 2048, 64 * 2 ** 20)).toEqual([[0, 32768], [32768, 65536], [65536, 98304], [98304, 128256]]);
    expect(nbitsSlices(8192, 2048, 64 * 2 ** 20)).toEqual([[0, 8192]]);
    // Never below 1024 rows, whatever the bound.
    expect(nbitsSlices(2500, 64, 1)).toEqual([[0, 1024], [1024, 2048], [2048, 2500]]);
  });

  for (const [format, level] of [['q8', 0], ['q8', 4], ['q4', 4]] as const) {
    it(`${format} accuracy_level ${level}: a sliced MatMulNBits gives the same outputs bit for bit`, async () => {
      const [m, n, k] = [3, 2500, 64];
      const r = rng(7);
      const w = Float32Array.from({ length: n * k }, () => r() - 0.5);
      const x = Float32Array.from({ length: m * k }, () => r() - 0.5);
      const bits = format === 'q8' ? 8 : 4;
      const q = quantizeBlocks(w, n, k, bits, 32);
      const blob = (32 * bits) / 8;
      const run = async (maxSliceBytes?: number) => {
        const b = new GraphBuilder('t');
        b.weightPlan = { options: weightOptions(format), shapes: new Map([['w', [n, k]]]), keepF32: new Set(), accuracyLevel: level, maxSliceBytes };
        b.output(b.linear(b.input('x', DataType.FLOAT, [m, k]), 'w'), 'y', DataType.FLOAT, [m, n]);
        const slices = b.compactSlices.get('w') ?? [[0, n]];
        if (!b.compactSlices.has('w')) {
          b.constRaw(compactNames.codes('w'), DataType.UINT8, [n, 2, blob], q.codes);
          b.constRaw(compactNames.scales('w'), DataType.FLOAT, [n * 2], bytes(q.scales));
        } else {
          for (const [r0, r1] of slices) {
            b.constRaw(compactNames.codesSlice('w', r0), DataType.UINT8, [r1 - r0, 2, blob], q.codes.slice(r0 * 2 * blob, r1 * 2 * blob));
            b.constRaw(compactNames.scalesSlice('w', r0), DataType.FLOAT, [(r1 - r0) * 2], bytes(q.scales.slice(r0 * 2, r1 * 2)));
          }
        }
        const s = await createSession(b.toBytes(), { threads: 1 });
        const y = (await s.run({ x: new ort.Tensor('float32', x, [m, k]) })).y.data as Float32Array;
        await s.release();
        return { y, slices: slices.length };
      };
      const whole = await run();
      const sliced = await run(1);
      expect(whole.slices).toBe(1);
      expect(sliced.slices).toBe(3);
      expect(Array.from(sliced.y)).toEqual(Array.from(whole.y));
    });
  }
});

describe('compact linear layers through ONNX Runtime (CPU)', () => {
  const m = 5, n = 24, k = 96;
  const x = randn(m * k, 7);
  const w = randn(n * k, 8, 0.1);
  const bias = randn(n, 9);

  for (const format of ['q8', 'q4'] as const) {
    it(`${format} MatMulNBits (fp32 compute) matches x · dequant(W)ᵀ + b`, async () => {
      const { y, expected } = await runLinear(format, x, m, w, n, k, { bias });
      expect(maxRel(y, expected)).toBeLessThan(1e-5);
    });
    it(`${format} MatMulNBits accuracy_level 4 (int8 activations) stays within 1% of the reference`, async () => {
      const { y, expected } = await runLinear(format, x, m, w, n, k, { accuracyLevel: 4 });
      expect(maxRel(y, expected)).toBeLessThan(0.01);
    });
    it(`${format} a Conv1D weight ([K, N]) is quantised transposed; K off the block (80) is padded`, async () => {
      const w80 = randn(80 * n, 10, 0.1);
      const r = await runLinear(format, randn(m * 80, 11), m, w80, n, 80, { conv1d: true });
      expect(maxRel(r.y, r.expected)).toBeLessThan(1e-5);
    });
    it(`${format} block size 64`, async () => {
      const { y, expected } = await runLinear(format, x, m, w, n, 128, { blockSize: 64 }).catch(() => runLinear(format, randn(m * 128, 12), m, randn(n * 128, 13, 0.1), n, 128, { blockSize: 64 }));
      expect(maxRel(y, expected)).toBeLessThan(1e-5);
    });
  }

  it('f16 MatMul matches x · half(W)ᵀ', async () => {
    const { y, expected } = await runLinear('f16', x, m, w, n, k, { bias });
    expect(maxRel(y, expected)).toBeLessThan(2e-3);
  });

  for (const bits of [8, 4] as const) {
    it(`GatherBlockQuantized (${bits}-bit, uint8 data) reads the same bytes as MatMulNBits`, async () => {
      const vocab = 10, hidden = 64;
      const table = randn(vocab * hidden, 20 + bits);
      const q = quantizeBlocks(table, vocab, hidden, bits, 32);
      const b = new GraphBuilder('g');
      b.weightPlan = { options: weightOptions(bits === 8 ? 'q8' : 'q4'), shapes: new Map([['emb', [vocab, hidden]]]), keepF32: new Set(), accuracyLevel: 0 };
      const ids = b.input('ids', DataType.INT64, ['q']);
      b.output(b.gather('emb', ids), 'h', DataType.FLOAT, ['q', hidden]);
      b.constRaw(compactNames.gatherCodes('emb'), DataType.UINT8, [vocab, (hidden * bits) / 8], q.codes);
      b.constRaw(compactNames.gatherScales('emb'), DataType.FLOAT, [vocab, hidden / 32], bytes(q.scales));
      const s = await createSession(b.toBytes(), { threads: 1 });
      const picks = [3, 0, 9, 3];
      const h = (await s.run({ ids: new ort.Tensor('int64', BigInt64Array.from(picks.map(BigInt)), [4]) })).h.data as Float32Array;
      await s.release();
      const ref = dequantizeBlocks(q);
      picks.forEach((id, i) => {
        for (let j = 0; j < hidden; j++) expect(h[i * hidden + j]).toBeCloseTo(ref[id * hidden + j], 6);
      });
    });
  }
});
