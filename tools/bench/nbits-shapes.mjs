// MatMulNBits alone at a model's shapes: one-node graphs (random codes, inline initializers), timed in one
// process, every (shape, variant) cell timed once per round, so a shared box's drift hits all cells alike. Prints one
// JSON line per (shape, variant): median and range of the per-round best ms, GFLOP/s, GB/s of codes+scales.
//   node tools/bench/nbits-shapes.mjs [--threads 2] [--rounds 5] [--reps 5] [--bits 4] \
//        [--shapes 512x2048x3072,512x2048x2048,512x2048x16384,512x8192x2048] [--variants b32a4,b64a4,b128a4,b32a0]
// A shape is MxKxN; a variant is b<block>a<accuracy_level>. Needs `npx tsc -p tsconfig.build.json` first.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { GraphBuilder } from '../../dist/graph/builder.js';
import { DataType } from '../../dist/graph/onnxProto.js';
import { createSession, ort } from '../../dist/runtime/ort.js';

const { values: o } = parseArgs({
  options: {
    threads: { type: 'string', default: '2' }, rounds: { type: 'string', default: '5' }, reps: { type: 'string', default: '5' },
    bits: { type: 'string', default: '4' },
    shapes: { type: 'string', default: '512x2048x3072,512x2048x2048,512x2048x16384,512x8192x2048' },
    variants: { type: 'string', default: 'b32a4,b64a4,b128a4,b32a0' },
  },
});
const bits = Number(o.bits);
const shapes = o.shapes.split(',').map((s) => s.split('x').map(Number));
const variants = o.variants.split(',').map((v) => { const [, b, a] = /^b(\d+)a(\d)$/.exec(v); return { name: v, block: Number(b), level: Number(a) }; });
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nbits-'));

let seed = 1;
const rand = () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32);
async function build([m, k, n], { block, level }) {
  const b = new GraphBuilder('nbits');
  const a = b.input('A', DataType.FLOAT, ['m', k]);
  const nb = Math.ceil(k / block);
  const codes = new Uint8Array(n * nb * (block * bits) / 8).map(() => (rand() * 256) | 0);
  const scales = Float32Array.from({ length: n * nb }, () => 0.01 + rand() * 0.01);
  b.constRaw('W', DataType.UINT8, [n, nb, (block * bits) / 8], codes);
  b.constRaw('S', DataType.FLOAT, [n * nb], new Uint8Array(scales.buffer));
  const y = b.node('MatMulNBits', [a, 'W', 'S'], { K: { int: k }, N: { int: n }, bits: { int: bits }, block_size: { int: block }, accuracy_level: { int: level } }, { domain: 'com.microsoft' })[0];
  b.output(y, 'Y', DataType.FLOAT, ['m', n]);
  const file = path.join(dir, `g${m}x${k}x${n}b${block}a${level}.onnx`);
  fs.writeFileSync(file, b.toBytes());
  const session = await createSession(file, { threads: Number(o.threads) });
  const feeds = { A: new ort.Tensor('float32', Float32Array.from({ length: m * k }, () => rand() - 0.5), [m, k]) };
  for (let i = 0; i < 2; i++) await session.run(feeds);
  return { session, feeds, bytes: codes.length + scales.length * 4 };
}

const med = (x) => { const s = [...x].sort((p, q) => p - q); return s[s.length >> 1]; };
// Every (shape, variant) session is built first; each round then times all of them, so slow drift on a
// shared box spreads over every cell alike and cells can be compared across shapes too (e.g. M = 256 vs 512).
const cells = [];
for (const shape of shapes) for (const v of variants) cells.push({ shape, v, ...(await build(shape, v)), ms: [] });
for (let r = 0; r < Number(o.rounds); r++) {
  for (const x of cells) {
    let best = Infinity;
    for (let i = 0; i < Number(o.reps); i++) {
      const t = performance.now();
      await x.session.run(x.feeds);
      best = Math.min(best, performance.now() - t);
    }
    x.ms.push(best);
  }
}
for (const x of cells) {
  const [m, k, n] = x.shape;
  const ms = med(x.ms);
  console.log(JSON.stringify({ shape: `${m}x${k}x${n}`, variant: x.v.name, ms: +ms.toFixed(3), range: [+Math.min(...x.ms).toFixed(3), +Math.max(...x.ms).toFixed(3)],
    gflops: +((2 * m * k * n) / ms / 1e6).toFixed(1), gbps: +(x.bytes / ms / 1e6).toFixed(1) }));
  await x.session.release();
}
fs.rmSync(dir, { recursive: true, force: true });
