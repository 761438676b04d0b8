/**
 * The machine's own ONNX Runtime MatMul throughput, measured in the same run as the model benchmarks
 * so model speed can be reported as a fraction of what this machine's GEMM reaches.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { GraphBuilder } from '../graph/builder.js';
import { DataType } from '../graph/onnxProto.js';
import { createSession, ort, type SessionOptions } from '../runtime/ort.js';

export interface MatmulPeak {
  m: number;
  k: number;
  n: number;
  gflops: number;
}

/** GFLOP/s of one [m, k] × [k, n] float32 MatMul with a constant right operand, best of `reps`. */
export async function matmulGflops(m: number, k: number, n: number, opts: SessionOptions = {}, reps = 10): Promise<MatmulPeak> {
  const b = new GraphBuilder('matmul');
  const a = b.input('A', DataType.FLOAT, [m, k]);
  const w = b.constF32(Float32Array.from({ length: k * n }, (_, i) => Math.sin(i) * 0.01), [k, n]);
  b.output(b.matmul(a, w), 'Y', DataType.FLOAT, [m, n]);
  const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'headwise-mm-')), 'mm.onnx');
  fs.writeFileSync(file, b.toBytes());
  const session = await createSession(file, opts);
  const feeds = { A: new ort.Tensor('float32', Float32Array.from({ length: m * k }, (_, i) => Math.cos(i) * 0.01), [m, k]) };
  for (let i = 0; i < 3; i++) await session.run(feeds);
  let best = Infinity;
  for (let i = 0; i < reps; i++) {
    const t = performance.now();
    await session.run(feeds);
    best = Math.min(best, performance.now() - t);
  }
  await session.release();
  fs.rmSync(path.dirname(file), { recursive: true, force: true });
  return { m, k, n, gflops: (2 * m * k * n) / (best / 1000) / 1e9 };
}
