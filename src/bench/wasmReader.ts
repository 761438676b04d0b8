/**
 * A memory reader in WebAssembly SIMD, for the read-bandwidth probe (`memBandwidth.ts`): one tiny
 * module, hand-encoded here (no toolchain needed), that sums a range of a shared linear memory with
 * four 128-bit accumulators (64 bytes a step), and the worker_threads that run it side by side over
 * one SharedArrayBuffer-backed `WebAssembly.Memory`, each on its own slice.
 */
import { Worker } from 'node:worker_threads';

const uleb = (n: number): number[] => {
  const out: number[] = [];
  do {
    let byte = n & 0x7f;
    n = Math.floor(n / 128);
    if (n) byte |= 0x80;
    out.push(byte);
  } while (n);
  return out;
};
const section = (id: number, body: number[]): number[] => [id, ...uleb(body.length), ...body];
const name = (s: string): number[] => [...uleb(s.length), ...Buffer.from(s, 'latin1')];

/**
 * The module: imports `env.mem` (shared memory, `pages` 64 KiB pages) and exports
 * `sum(start, end) -> i32`, lane 0 of the i32x4 sum of every 16-byte vector in [start, end)
 * (`end − start` a multiple of 64): the sum of the 32-bit words at indices ≡ 0 (mod 4).
 */
export function readerModule(pages: number): Uint8Array<ArrayBuffer> {
  const V128 = 0x7b;
  const load = (acc: number, offset: number) => [
    0x20, acc, 0x20, 0, 0xfd, 0x00, 4, ...uleb(offset), // acc, v128.load align=16 offset
    0xfd, 0xae, 0x01, 0x21, acc, // i32x4.add, local.set acc
  ];
  const body = [
    1, 4, V128, // locals 2..5: four v128 accumulators
    0x02, 0x40, 0x03, 0x40, // block, loop
    0x20, 0, 0x20, 1, 0x4f, 0x0d, 1, // br_if (start >= end) out of the block
    ...load(2, 0), ...load(3, 16), ...load(4, 32), ...load(5, 48),
    0x20, 0, 0x41, 0xc0, 0x00, 0x6a, 0x21, 0, // start += 64
    0x0c, 0, 0x0b, 0x0b, // br loop, end loop, end block
    0x20, 2, 0x20, 3, 0xfd, 0xae, 0x01, 0x20, 4, 0xfd, 0xae, 0x01, 0x20, 5, 0xfd, 0xae, 0x01,
    0xfd, 0x1b, 0, // i32x4.extract_lane 0
    0x0b,
  ];
  return Uint8Array.from([
    0x00, 0x61, 0x73, 0x6d, 1, 0, 0, 0,
    ...section(1, [1, 0x60, 2, 0x7f, 0x7f, 1, 0x7f]),
    ...section(2, [1, ...name('env'), ...name('mem'), 0x02, 0x03, ...uleb(pages), ...uleb(pages)]),
    ...section(3, [1, 0]),
    ...section(7, [1, ...name('sum'), 0x00, 0]),
    ...section(10, [1, ...uleb(body.length), ...body]),
  ]);
}

/** [start, end) byte ranges cutting `bytes` into `parts` slices, each a multiple of `align` long (the rest dropped). */
export function sliceRanges(bytes: number, parts: number, align = 64): [number, number][] {
  if (!Number.isInteger(parts) || parts < 1) throw new Error(`sliceRanges: ${parts} parts`);
  const per = Math.floor(bytes / parts / align) * align;
  return Array.from({ length: parts }, (_, i) => [i * per, (i + 1) * per]);
}

const WORKER = `
const { parentPort, workerData } = require('node:worker_threads');
const { bytes, memory, start, end } = workerData;
const sum = new WebAssembly.Instance(new WebAssembly.Module(bytes), { env: { mem: memory } }).exports.sum;
parentPort.on('message', () => parentPort.postMessage(sum(start, end)));
`;

/** A shared memory of `mib` MiB, every byte written (so every page is real), and `threads` workers reading it. */
export class WasmReaders {
  readonly memory: WebAssembly.Memory;
  readonly bytes: number;
  private readonly workers: Worker[];

  constructor(mib: number, threads: number, fill = 1) {
    const pages = (mib * 2 ** 20) / 65536;
    if (!Number.isInteger(pages) || pages < 1) throw new Error(`WasmReaders: ${mib} MiB is not a whole number of 64 KiB pages`);
    this.memory = new WebAssembly.Memory({ initial: pages, maximum: pages, shared: true });
    this.bytes = pages * 65536;
    new Uint32Array(this.memory.buffer).fill(fill);
    const module = readerModule(pages);
    this.workers = sliceRanges(this.bytes, threads).map(([start, end]) => new Worker(WORKER, { eval: true, workerData: { bytes: module, memory: this.memory, start, end } }));
  }

  /** One read of the whole buffer, every worker its slice at once; the workers' sums. */
  async readOnce(): Promise<number[]> {
    return Promise.all(this.workers.map((w) => new Promise<number>((resolve, reject) => {
      const fail = (e: Error) => reject(e);
      w.once('error', fail);
      w.once('message', (sum: number) => {
        w.off('error', fail);
        resolve(sum);
      });
      w.postMessage(0);
    })));
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}
