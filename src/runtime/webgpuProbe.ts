/**
 * Whether WebGPU works here, asked in a child process: without a usable adapter, Dawn (inside ONNX
 * Runtime) prints native warnings straight to the process's stderr (`Warning: ... at operator() ...`),
 * which JavaScript cannot catch or filter. The child creates a one-node webgpu session with its stderr
 * captured; the parent reports the outcome as one clean line and only then touches WebGPU itself.
 * Asked once per process.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { removeTemp, tempPathFor } from '../io/tempFiles.js';
import { GraphBuilder } from '../graph/builder.js';
import { DataType } from '../graph/onnxProto.js';

const CHILD = `
const ort = require(process.argv[1]);
const chunks = [];
process.stdin.on('data', (c) => chunks.push(c));
process.stdin.on('end', async () => {
  try {
    const s = await ort.InferenceSession.create(new Uint8Array(Buffer.concat(chunks)), {
      executionProviders: ['webgpu'], extra: { session: { disable_cpu_ep_fallback: '1' } }, logSeverityLevel: 3 });
    const y = (await s.run({ x: new ort.Tensor('float32', Float32Array.from([1, 2]), [2]) })).y.data;
    process.stdout.write(JSON.stringify(y[0] === 2 && y[1] === 3 ? { ok: true } : { ok: false, reason: 'wrong result' }));
  } catch (e) {
    process.stdout.write(JSON.stringify({ ok: false, reason: String((e && e.message) || e).split('\\n')[0] }));
  }
  process.exit(0);
});`;

export type WebgpuProbe = { ok: true } | { ok: false; reason: string };

let probe: Promise<WebgpuProbe> | null = null;

export function probeWebgpuIsolated(timeoutMs = 60_000): Promise<WebgpuProbe> {
  probe ??= new Promise<WebgpuProbe>((resolve) => {
    const b = new GraphBuilder('probe');
    b.output(b.add(b.input('x', DataType.FLOAT, [2]), b.scalar(1)), 'y', DataType.FLOAT, [2]);
    const ortPath = createRequire(import.meta.url).resolve('onnxruntime-node');
    // The child's ONNX Runtime telemetry files (see ort.ts) go to a temporary folder removed afterwards.
    const tmp = tempPathFor(path.join(os.tmpdir(), 'webgpu-probe'));
    fs.mkdirSync(tmp, { recursive: true });
    const child = spawn(process.execPath, ['-e', CHILD, ortPath], { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, TMPDIR: tmp } });
    let out = '';
    child.stdout.on('data', (c) => (out += c));
    child.stderr.on('data', () => {}); // Dawn's native noise stays here
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('close', () => {
      clearTimeout(timer);
      removeTemp(tmp);
      try {
        resolve(JSON.parse(out) as WebgpuProbe);
      } catch {
        resolve({ ok: false, reason: 'the WebGPU probe process crashed' });
      }
    });
    child.stdin.end(Buffer.from(b.toBytes()));
  });
  return probe;
}
