/**
 * ONNX Runtime sessions: the one place that talks to onnxruntime-node. Chooses the execution
 * provider (`cpu`, or `webgpu` where the binding ships it) and the thread count.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { HeadwiseError } from '../errors.js';
import { removeTemp, tempPathFor } from '../io/tempFiles.js';
import { GraphBuilder } from '../graph/builder.js';
import { DataType } from '../graph/onnxProto.js';

export type Device = 'cpu' | 'webgpu';
export const DEVICES: readonly Device[] = ['cpu', 'webgpu'];

export interface SessionOptions {
  device?: Device;
  threads?: number;
}

export interface CreateSessionOptions extends SessionOptions {
  /** webgpu: outputs left on the GPU (`gpu-buffer`, fed back as inputs); every other output comes back to the CPU. */
  gpuOutputs?: string[];
  /** webgpu: fail instead of running any node on the CPU (ORT `disable_cpu_ep_fallback`). */
  strictDevice?: boolean;
  /**
   * cpu: the session's worker threads sleep when idle instead of spinning (ORT `intra_op.allow_spinning`
   * 0) — for a helper session run between a model session's runs, whose threads would otherwise compete.
   */
  noSpin?: boolean;
}

/**
 * libonnxruntime.so.1 links Microsoft's 1DS telemetry SDK ("MATSDK"). When ONNX Runtime's environment
 * starts (the first session), its PAL opens `$TMPDIR/mat-debug-<pid>.log` (never written to) and a
 * `.ses` session file in the temporary folder. So the first session is created with TMPDIR pointing at
 * a private headwise temporary folder (`io/tempFiles.ts` naming), removed as soon as that session
 * exists; after a SIGKILL during those moments the next run's sweep removes it. As a fallback, an empty `/tmp/mat-debug-<own pid>.log` is removed at exit.
 */
let ortStarted: Promise<void> | null = null;

async function withPrivateTempDir<T>(create: () => Promise<T>): Promise<T> {
  if (ortStarted) {
    await ortStarted;
    return create();
  }
  const dir = tempPathFor(path.join(os.tmpdir(), 'onnxruntime'));
  let result!: Promise<T>;
  ortStarted = (async () => {
    const old = process.env.TMPDIR;
    try {
      fs.mkdirSync(dir, { recursive: true });
      process.env.TMPDIR = dir;
      result = create();
      await result.catch(() => {});
    } finally {
      if (old === undefined) delete process.env.TMPDIR;
      else process.env.TMPDIR = old;
      // The files are open or written by now; removing the folder at once (not at exit) leaves nothing
      // behind even when the process is killed later.
      removeTemp(dir);
    }
  })();
  await ortStarted;
  return result;
}

function removeTelemetryLog(): void {
  const file = path.join('/tmp', `mat-debug-${process.pid}.log`);
  try {
    const s = fs.lstatSync(file);
    if (s.isFile() && s.size === 0) fs.unlinkSync(file);
  } catch {
    // not there
  }
}
process.once('exit', removeTelemetryLog);

export function defaultThreads(): number {
  return Math.max(1, os.availableParallelism?.() ?? os.cpus().length);
}

/**
 * WebGPU EP options from `HEADWISE_WEBGPU_OPTIONS` (a JSON object of string or boolean values, e.g.
 * `{"validationMode":"disabled","enableRobustness":false}`; the keys onnxruntime-node 1.30 passes on:
 * validationMode, preferredLayout, enableRobustness, storage/uniform/queryResolve/defaultBufferCacheMode;
 * others are refused by the binding as "unrecognized") — a tuning knob for benchmarks; none are set by
 * default (on the H200 none moved the 1B shape's decode, tools/device/README.md).
 */
function webgpuProviderOptions(): Record<string, string | boolean> {
  const raw = process.env.HEADWISE_WEBGPU_OPTIONS;
  if (!raw) return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    throw new HeadwiseError('HEADWISE_WEBGPU_OPTIONS: not JSON (expected an object of strings or booleans, e.g. {"validationMode":"disabled"})');
  }
  if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed) || Object.values(parsed).some((v) => typeof v !== 'string' && typeof v !== 'boolean')) {
    throw new HeadwiseError('HEADWISE_WEBGPU_OPTIONS: expected a JSON object of strings or booleans, e.g. {"validationMode":"disabled"}');
  }
  return parsed as Record<string, string | boolean>;
}

export async function createSession(file: string | Uint8Array, opts: CreateSessionOptions = {}): Promise<ort.InferenceSession> {
  const device = opts.device ?? 'cpu';
  const options: ort.InferenceSession.SessionOptions = {
    executionProviders: [device === 'webgpu' ? { name: 'webgpu', ...webgpuProviderOptions() } : device],
    graphOptimizationLevel: 'all',
    intraOpNumThreads: opts.threads ?? defaultThreads(),
    interOpNumThreads: 1,
    executionMode: 'sequential',
    enableCpuMemArena: true,
    enableMemPattern: false,
    logSeverityLevel: 3,
  };
  // HEADWISE_ORT_PROFILE=PREFIX: ONNX Runtime's own per-node profile of every session, written as
  // PREFIX_<date>.json when the session is released (a benchmark knob; off by default).
  if (process.env.HEADWISE_ORT_PROFILE) {
    options.enableProfiling = true;
    options.profileFilePrefix = process.env.HEADWISE_ORT_PROFILE;
  }
  if (opts.noSpin && device === 'cpu') options.extra = { session: { intra_op: { allow_spinning: '0' } } };
  if (device === 'webgpu') {
    // KV caches stay on the GPU; logits and hook outputs (read by the runtime) come back as CPU tensors.
    // (A gpu-buffer tensor cannot be downloaded in onnxruntime-node 1.30: getData() aborts the process.)
    const location: Record<string, ort.Tensor.DataLocation> = {};
    for (const name of opts.gpuOutputs ?? []) location[name] = 'gpu-buffer';
    options.preferredOutputLocation = location;
    if (opts.strictDevice) options.extra = { session: { disable_cpu_ep_fallback: '1' } };
  }
  try {
    return await withPrivateTempDir(() => (typeof file === 'string' ? ort.InferenceSession.create(file, options) : ort.InferenceSession.create(file, options)));
  } catch (e) {
    const msg = String((e as Error).message ?? e).split('\n')[0];
    if (device === 'webgpu' && /adapter/i.test(msg)) {
      throw new HeadwiseError(`device webgpu: no WebGPU adapter (${msg.replace(/^.* was false\. /, '').trim()}); on Linux ONNX Runtime's WebGPU needs a Vulkan driver (see tools/device/README.md)`);
    }
    if (device !== 'cpu') throw new HeadwiseError(`device ${device}: cannot create an ONNX Runtime session (${msg})`);
    throw e;
  }
}

let webgpuProbe: Promise<{ ok: true } | { ok: false; reason: string }> | null = null;

/** Whether a WebGPU session can be created here (once per process): a one-node graph on the webgpu EP. */
export function probeWebgpu(): Promise<{ ok: true } | { ok: false; reason: string }> {
  webgpuProbe ??= (async () => {
    const b = new GraphBuilder('probe');
    b.output(b.add(b.input('x', DataType.FLOAT, [2]), b.scalar(1)), 'y', DataType.FLOAT, [2]);
    try {
      const s = await createSession(b.toBytes(), { device: 'webgpu', threads: 1, strictDevice: true });
      const y = (await s.run({ x: new ort.Tensor('float32', Float32Array.from([1, 2]), [2]) })).y.data as Float32Array;
      await s.release();
      return y[0] === 2 && y[1] === 3 ? { ok: true as const } : { ok: false as const, reason: `device webgpu: wrong result ${Array.from(y)}` };
    } catch (e) {
      return { ok: false as const, reason: String((e as Error).message ?? e).split('\n')[0] };
    }
  })();
  return webgpuProbe;
}

export { ort };
