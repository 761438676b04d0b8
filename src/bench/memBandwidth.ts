/**
 * This machine's memory read bandwidth, measured in the same run as the decode figures so that a
 * decode speed can be given as a share of its bound (bytes read per token / bandwidth): one
 * ONNX Runtime ReduceSum over a float32 buffer far larger than the caches, on the same threads the
 * model uses. ORT's reduction is vectorised and threaded, so it reads about as fast as the C probe
 * in `../shared/peer/membw.c` (read(sum) mode).
 */
import { GraphBuilder } from '../graph/builder.js';
import { DataType } from '../graph/onnxProto.js';
import { createSession, ort } from '../runtime/ort.js';

/** Median GB/s (1e9 bytes) of `reps` full reads of a `mib`-MiB buffer. */
export async function readBandwidthGBps(threads: number, mib = 512, reps = 7): Promise<number> {
  const n = (mib * 2 ** 20) / 4;
  const b = new GraphBuilder('membw');
  const x = b.input('x', DataType.FLOAT, [n]);
  b.output(b.op('ReduceSum', [x], { keepdims: { int: 0 } }), 'y', DataType.FLOAT, []);
  const s = await createSession(b.toBytes(), { threads });
  const data = new Float32Array(n).fill(1);
  const t = new ort.Tensor('float32', data, [n]);
  const secs: number[] = [];
  try {
    await s.run({ x: t });
    for (let r = 0; r < reps; r++) {
      const t0 = performance.now();
      await s.run({ x: t });
      secs.push((performance.now() - t0) / 1000);
    }
  } finally {
    await s.release();
  }
  secs.sort((a, c) => a - c);
  return (n * 4) / secs[secs.length >> 1] / 1e9;
}
