/**
 * This machine's memory read bandwidth, measured in the same run as the decode figures so that a
 * decode speed can be given as a share of its bound (bytes read per token / bandwidth). No one
 * reader reaches the bound on every machine (ORT's ReduceSum measured 25.6 GB/s on a box where q8
 * decode read 35.6 GB/s), so several read a buffer far larger than the last-level cache on the same
 * threads the model uses, and the bound is the best of them:
 * - `ort-reducesum`: an ONNX Runtime ReduceSum over a float32 input;
 * - `ort-gemv`: an ONNX Runtime MatMul [1, K] × [K, N] with a constant float32 right operand (a decode
 *   step's access pattern: MLAS streams the prepacked weight once);
 * - `wasm-simd`: WebAssembly SIMD loads in worker_threads over one shared memory (`wasmReader.ts`).
 * Each reader's figure is the median of its timed reads.
 */
import { GraphBuilder } from '../graph/builder.js';
import { DataType } from '../graph/onnxProto.js';
import { createSession, ort } from '../runtime/ort.js';
import { WasmReaders } from './wasmReader.js';

export type ReaderName = 'ort-reducesum' | 'ort-gemv' | 'wasm-simd';
export const READERS: readonly ReaderName[] = ['ort-reducesum', 'ort-gemv', 'wasm-simd'];

export interface ReaderFigure {
  reader: ReaderName;
  /** Bytes one read covers. */
  bytes: number;
  /** Seconds of each timed read. */
  seconds: number[];
  /** GB/s (1e9 bytes) of the median read. */
  gbps: number;
}

export interface Bandwidth {
  /** The bound: the best reader's figure. */
  gbps: number;
  best: ReaderName;
  readers: ReaderFigure[];
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[s.length >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

/** A reader's figure from its timed reads: GB/s of the median one. */
export function readerFigure(reader: ReaderName, bytes: number, seconds: number[]): ReaderFigure {
  if (!seconds.length || seconds.some((s) => !(s > 0))) throw new Error(`${reader}: no valid timed reads (${seconds.join(', ')})`);
  return { reader, bytes, seconds, gbps: bytes / median(seconds) / 1e9 };
}

/** The bound from the readers' figures: the fastest reader. */
export function bestOf(readers: ReaderFigure[]): Bandwidth {
  if (!readers.length) throw new Error('read bandwidth: no reader ran');
  const best = readers.reduce((a, b) => (b.gbps > a.gbps ? b : a));
  return { gbps: best.gbps, best: best.reader, readers };
}

/** Per reader, the median of its figures over several measurements of one run; the bound is the best median. */
export function combineRuns(runs: Bandwidth[]): Bandwidth {
  const byReader = new Map<ReaderName, ReaderFigure[]>();
  for (const r of runs) for (const f of r.readers) byReader.set(f.reader, [...(byReader.get(f.reader) ?? []), f]);
  return bestOf([...byReader].map(([reader, fs]) => ({ reader, bytes: fs[0].bytes, seconds: fs.flatMap((f) => f.seconds), gbps: median(fs.map((f) => f.gbps)) })));
}

/** `reps` timed reads after two untimed ones (V8 compiles hot WebAssembly again, optimised, in the background). */
async function timeReads(reps: number, read: () => Promise<unknown>): Promise<number[]> {
  await read();
  await read();
  const secs: number[] = [];
  for (let r = 0; r < reps; r++) {
    const t0 = performance.now();
    await read();
    secs.push((performance.now() - t0) / 1000);
  }
  return secs;
}

async function ortReduceSum(threads: number, mib: number, reps: number): Promise<ReaderFigure> {
  const n = (mib * 2 ** 20) / 4;
  const b = new GraphBuilder('membw');
  const x = b.input('x', DataType.FLOAT, [n]);
  b.output(b.op('ReduceSum', [x], { keepdims: { int: 0 } }), 'y', DataType.FLOAT, []);
  const s = await createSession(b.toBytes(), { threads });
  const t = new ort.Tensor('float32', new Float32Array(n).fill(1), [n]);
  try {
    return readerFigure('ort-reducesum', n * 4, await timeReads(reps, () => s.run({ x: t })));
  } finally {
    await s.release();
  }
}

async function ortGemv(threads: number, mib: number, reps: number): Promise<ReaderFigure> {
  const k = 4096;
  const n = (mib * 2 ** 20) / 4 / k;
  const b = new GraphBuilder('membw-gemv');
  const x = b.input('x', DataType.FLOAT, [1, k]);
  const w = new Float32Array(k * n).fill(1 / k);
  b.output(b.matmul(x, b.constRaw('w', DataType.FLOAT, [k, n], new Uint8Array(w.buffer))), 'y', DataType.FLOAT, [1, n]);
  const s = await createSession(b.toBytes(), { threads });
  const t = new ort.Tensor('float32', new Float32Array(k).fill(1), [1, k]);
  try {
    return readerFigure('ort-gemv', k * n * 4, await timeReads(reps, () => s.run({ x: t })));
  } finally {
    await s.release();
  }
}

async function wasmSimd(threads: number, mib: number, reps: number): Promise<ReaderFigure> {
  const r = new WasmReaders(mib, threads);
  try {
    return readerFigure('wasm-simd', r.bytes, await timeReads(reps, () => r.readOnce()));
  } finally {
    await r.close();
  }
}

/**
 * Every reader on a `mib`-MiB buffer (the GEMV on half of it: its weight is held twice while ONNX
 * Runtime prepacks it), `reps` timed reads each, on `threads` threads.
 */
export async function readBandwidth(threads: number, mib = 512, reps = 7): Promise<Bandwidth> {
  return bestOf([
    await ortReduceSum(threads, mib, reps),
    await ortGemv(threads, mib / 2, reps),
    await wasmSimd(threads, mib, reps),
  ]);
}
