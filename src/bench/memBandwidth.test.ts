import { describe, expect, it } from 'vitest';
import { bestOf, combineRuns, readerFigure } from './memBandwidth.js';
import { readerModule, sliceRanges, WasmReaders } from './wasmReader.js';

describe('read-bandwidth figures', () => {
  it('gives a reader the GB/s of its median read', () => {
    // 2e9 bytes in 1, 2 (the median) and 4 s: 1 GB/s.
    expect(readerFigure('ort-gemv', 2e9, [4, 1, 2]).gbps).toBeCloseTo(1, 12);
    expect(readerFigure('wasm-simd', 3e9, [1, 2]).gbps).toBeCloseTo(2, 12);
    expect(() => readerFigure('wasm-simd', 1e9, [])).toThrow(/wasm-simd: no valid timed reads/);
    expect(() => readerFigure('wasm-simd', 1e9, [1, 0])).toThrow(/no valid timed reads/);
  });

  it('takes the fastest reader as the bound', () => {
    const a = readerFigure('ort-reducesum', 1e9, [0.04]); // 25 GB/s
    const b = readerFigure('wasm-simd', 1e9, [0.025]); // 40 GB/s
    const c = readerFigure('ort-gemv', 1e9, [0.05]); // 20 GB/s
    const bw = bestOf([a, b, c]);
    expect(bw.best).toBe('wasm-simd');
    expect(bw.gbps).toBeCloseTo(40, 9);
    expect(bw.readers.map((r) => r.reader)).toEqual(['ort-reducesum', 'wasm-simd', 'ort-gemv']);
    expect(() => bestOf([])).toThrow(/no reader ran/);
  });

  it('combines several measurements per reader by their median before taking the best', () => {
    const run = (sum: number, wasm: number) => bestOf([readerFigure('ort-reducesum', 1e9, [1 / sum]), readerFigure('wasm-simd', 1e9, [1 / wasm])]);
    // ReduceSum 30, 20, 22 (median 22); wasm 40, 10, 21 (median 21): the best median is ReduceSum's 22,
    // although wasm had the single fastest read.
    const bw = combineRuns([run(30, 40), run(20, 10), run(22, 21)]);
    expect(bw.best).toBe('ort-reducesum');
    expect(bw.gbps).toBeCloseTo(22, 9);
    expect(bw.readers.find((r) => r.reader === 'wasm-simd')!.gbps).toBeCloseTo(21, 9);
  });
});

describe('WebAssembly SIMD reader', () => {
  it('cuts a buffer into equal slices of whole 64-byte steps', () => {
    expect(sliceRanges(1024, 2)).toEqual([[0, 512], [512, 1024]]);
    expect(sliceRanges(1000, 3)).toEqual([[0, 320], [320, 640], [640, 960]]);
    expect(() => sliceRanges(1024, 0)).toThrow(/0 parts/);
  });

  it('sums lane 0 of every 16-byte vector of its range', () => {
    const memory = new WebAssembly.Memory({ initial: 1, maximum: 1, shared: true });
    const words = new Uint32Array(memory.buffer);
    for (let i = 0; i < words.length; i++) words[i] = i;
    const sum = new WebAssembly.Instance(new WebAssembly.Module(readerModule(1)), { env: { mem: memory } }).exports.sum as (s: number, e: number) => number;
    // Words 0, 4, 8, ... of bytes [128, 384): word indices 32..95, the multiples of 4 among them.
    let want = 0;
    for (let i = 32; i < 96; i += 4) want += i;
    expect(sum(128, 384)).toBe(want);
    expect(sum(256, 256)).toBe(0);
  });

  it('reads a shared memory from worker threads, each its own slice', async () => {
    const r = new WasmReaders(1, 2, 3);
    try {
      // 1 MiB in two slices of 512 KiB = 32768 vectors each, lane 0 holding 3.
      expect(await r.readOnce()).toEqual([3 * 32768, 3 * 32768]);
      expect(await r.readOnce()).toEqual([3 * 32768, 3 * 32768]);
    } finally {
      await r.close();
    }
    expect(() => new WasmReaders(0.01, 1)).toThrow(/whole number of 64 KiB pages/);
  });
});
