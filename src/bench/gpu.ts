/**
 * `npm run bench:gpu`: headwise on ONNX Runtime's WebGPU execution provider vs the same host's CPU EP.
 * A benchmark, not a test: it prints numbers (and the logits check) and asserts nothing.
 *
 * For every model:
 * - check: the same prompt (prefill in chunks, then teacher-forced decode) on both devices with full
 *   attention and with a streaming policy (which evicts on the GPU); max |Δlogits| webgpu vs cpu;
 * - speed (models given with --model or --random): prefill tokens/s of `--context` tokens in chunks of
 *   `--chunk` (and, on webgpu, also in one call), and decode tokens/s at `--context` tokens of context
 *   (one token per call, logits downloaded every step, KV cache kept on the GPU).
 *
 * --random CONFIG makes a random-weight checkpoint of that shape (`make-random`, bf16 on disk) under
 * --work, declaring enough positions for the context; speed does not depend on the weights.
 * --torch SCRIPT runs the PyTorch peer (`../shared/peer/torch_gpu_bench.py`) on the same GPU and the
 * same --random shapes first, in this process's call, and prints headwise webgpu / PyTorch ratios.
 * Half precision (`--weights f16` on webgpu: f16 weights and activations, `graph/half.ts`) runs
 * beside fp32 on webgpu unless --no-half: its own speed row, and its logits against webgpu fp32 in the
 * same run (max |Δ|, mean and max KL, argmax agreement) on every check-policy trace; with
 * --half-residual16 also the variant whose residual stream (and norms) are half (`halfResidual: 'f16'`).
 * --explicit-attention adds a webgpu row with the explicit attention graph (fused GroupQueryAttention
 * off); --atlas times `runAtlas` (--atlas-samples prompts of --atlas-context tokens) of each random
 * model on webgpu (and with --atlas-cpu on the CPU EP), its tokenizer copied from --tokenizer-from.
 * Usage: node dist/bench/gpu.js --check-model models/ref-llama-7m \
 *          --random tools/device/configs/ref-llama-30m.json --random tools/device/configs/llama-3.2-1b.json
 */
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Command } from 'commander';
import { makeRandom } from '../cli/makeRandom.js';
import { uniformLayout } from '../graph/layout.js';
import { disposeDeviceKv } from '../runtime/deviceKv.js';
import { forward, newCache } from '../runtime/forward.js';
import type { ClassPolicy, KvCache } from '../runtime/kvCache.js';
import { causalClassesOf, Model, type ModelOptions } from '../runtime/model.js';
import { createSession, defaultThreads, ort, probeWebgpu, type Device } from '../runtime/ort.js';
import { GraphBuilder } from '../graph/builder.js';
import { DataType } from '../graph/onnxProto.js';
import type { CacheSetup } from '../runtime/generate.js';
import { FULL_HISTORY, windowClass } from '../kv/classPolicy.js';
import { runAtlas } from '../atlas/run.js';
import { weightOptions } from '../graph/quant.js';
import { klPerPosition } from '../heads/kl.js';

interface Opts {
  model: string[];
  random: string[];
  checkModel: string[];
  work: string;
  context: number;
  chunk: number;
  steps: number;
  cpuSteps: number;
  reps: number;
  cpuReps: number;
  checkTokens: number;
  out?: string;
  json?: boolean;
  ops?: boolean;
  torch?: string;
  python: string;
  torchVariants: string;
  explicitAttention?: boolean;
  atlas?: boolean;
  atlasCpu?: boolean;
  atlasSamples: number;
  atlasContext: number;
  tokenizerFrom: string;
  speed: boolean;
  half: boolean;
  halfResidual16?: boolean;
}

interface Check {
  policy: string;
  maxAbsDiff: number;
  maxAbsRef: number;
  argmaxAgree: number;
  rows: number;
  /** Half checks: `f16` or `f16 (f16 residual)`. */
  variant?: string;
  /** KL(reference ‖ other) per logits row, nats. */
  klMean: number;
  klMax: number;
}

interface Speed {
  device: Device;
  /** webgpu: `fused` (GroupQueryAttention where nothing is hooked, the default) or `explicit`. */
  attention?: 'fused' | 'explicit';
  /** webgpu: `fp32`, or `f16` (f16 weights and activations, KV cache float16). */
  precision?: 'fp32' | 'f16';
  /** f16: the residual stream in half too. */
  halfResidual?: 'f16';
  loadMs: number;
  prefillMs: number;
  prefillTokensPerSecond: number;
  prefillOneCallTokensPerSecond?: number;
  decodeMsPerToken: number;
  /** Process CPU time (user + system, all threads) per decode step. */
  decodeCpuMsPerToken?: number;
  decodeTokensPerSecond: number;
  kvBytes: number;
}

interface ModelReport {
  name: string;
  dir: string;
  weights: 'trained' | 'random';
  params: number;
  config: { layers: number; hidden: number; heads: number; kvHeads: number; headDim: number; ffn: number; vocab: number };
  checks: Check[];
  /** webgpu f16 (weights and activations) against webgpu fp32, the same traces as `checks`. */
  halfChecks?: Check[];
  speed: Speed[];
  atlas?: { device: Device; precision?: 'fp32' | 'f16'; seconds: number; samples: number; contextTokens: number; timing: Record<string, number> }[];
}

const log = (s: string) => process.stderr.write(`[bench:gpu ${new Date().toISOString().slice(11, 19)}] ${s}\n`);

function tokenIds(n: number, vocab: number, seed: number): number[] {
  return Array.from({ length: n }, (_, i) => 1 + ((i * 7919 + seed * 104729) % (vocab - 1)));
}

const POLICY_NAMES = ['full', 'streaming(sink 4, window 64)'];

function setups(model: Model): { name: string; setup: CacheSetup }[] {
  const c = model.config;
  return [
    { name: POLICY_NAMES[0], setup: { layout: model.fullLayout(), policies: new Map<string, ClassPolicy>([['full', FULL_HISTORY]]) } },
    {
      name: POLICY_NAMES[1],
      setup: { layout: uniformLayout(c.numLayers, c.numKvHeads, 'stream'), policies: new Map<string, ClassPolicy>([['stream', windowClass(4, 64)]]) },
    },
  ];
}

/**
 * Logits of a chunked prefill (every 16th row and the last of each chunk) and 8 teacher-forced decode
 * steps, on the graph the speed runs use: full-history classes causal (no mask, `Model.session`).
 */
async function checkTrace(model: Model, setup: CacheSetup, tokens: number): Promise<Float32Array[]> {
  const gs = await model.session(setup.layout, undefined, { causalClasses: causalClassesOf(setup.policies) });
  const cache = newCache(model, gs, setup.policies);
  const prompt = tokenIds(tokens, model.config.vocabSize, 3);
  const out: Float32Array[] = [];
  const chunk = Math.max(1, Math.ceil(tokens / 3));
  for (let i = 0; i < tokens; i += chunk) {
    const ids = prompt.slice(i, i + chunk);
    const rows = ids.map((_, r) => r).filter((r) => r % 16 === 0 || r === ids.length - 1);
    out.push((await forward(model, gs, cache, ids, { logitsAt: rows })).logits);
  }
  for (const t of tokenIds(8, model.config.vocabSize, 4)) out.push((await forward(model, gs, cache, [t])).logits);
  disposeDeviceKv(cache);
  return out;
}

function compareTraces(policy: string, ref: Float32Array[], dut: Float32Array[], vocab: number): Check {
  let maxAbsDiff = 0;
  let maxAbsRef = 0;
  let agree = 0;
  let rows = 0;
  let klSum = 0;
  let klMax = 0;
  ref.forEach((a, i) => {
    for (const kl of klPerPosition(a, dut[i], vocab)) {
      klSum += kl;
      klMax = Math.max(klMax, kl);
    }
    const b = dut[i];
    for (let j = 0; j < a.length; j++) {
      maxAbsDiff = Math.max(maxAbsDiff, Math.abs(a[j] - b[j]));
      maxAbsRef = Math.max(maxAbsRef, Math.abs(a[j]));
    }
    for (let r = 0; r < a.length / vocab; r++) {
      const argmax = (x: Float32Array) => {
        let best = 0;
        for (let j = 1; j < vocab; j++) if (x[r * vocab + j] > x[r * vocab + best]) best = j;
        return best;
      };
      rows++;
      if (argmax(a) === argmax(b)) agree++;
    }
  });
  return { policy, maxAbsDiff, maxAbsRef, argmaxAgree: agree / rows, rows, klMean: klSum / rows, klMax };
}

/** The benchmark's caches hold full history and run no branches: the lean GPU graph without masks (`Model.session`). */
const FULL_CAUSAL = { causalClasses: ['full'] };

async function prefillOnce(model: Model, ids: number[], chunk: number): Promise<{ ms: number; cache: KvCache }> {
  const gs = await model.session(undefined, undefined, FULL_CAUSAL);
  const cache = newCache(model, gs, new Map([['full', FULL_HISTORY]]));
  cache.reserve(ids.length + 64);
  const t = performance.now();
  for (let i = 0; i < ids.length; i += chunk) await forward(model, gs, cache, ids.slice(i, i + chunk));
  return { ms: performance.now() - t, cache };
}

async function measure(model: Model, device: Device, loadMs: number, o: Opts): Promise<Speed> {
  const gpu = device === 'webgpu';
  const ids = tokenIds(o.context, model.config.vocabSize, 1);
  const reps = gpu ? o.reps : o.cpuReps;
  let best = Infinity;
  let cache: KvCache | null = null;
  for (let r = 0; r < reps; r++) {
    if (cache) disposeDeviceKv(cache);
    const p = await prefillOnce(model, ids, o.chunk);
    log(`  ${device} prefill ${o.context} (chunk ${o.chunk}) rep ${r + 1}/${reps}: ${p.ms.toFixed(0)} ms`);
    best = Math.min(best, p.ms);
    cache = p.cache;
  }
  let oneCall: number | undefined;
  if (gpu && o.chunk < o.context) {
    let b1 = Infinity;
    for (let r = 0; r < 2; r++) {
      const p = await prefillOnce(model, ids, o.context);
      disposeDeviceKv(p.cache);
      log(`  ${device} prefill ${o.context} (one call) rep ${r + 1}/2: ${p.ms.toFixed(0)} ms`);
      b1 = Math.min(b1, p.ms);
    }
    oneCall = o.context / (b1 / 1000);
  }
  // Decode on top of the last prefill: `steps` tokens at context ≈ o.context.
  const gs = await model.session(undefined, undefined, FULL_CAUSAL);
  const steps = gpu ? o.steps : o.cpuSteps;
  for (let i = 0; i < 2; i++) await forward(model, gs, cache!, [7 + i]);
  const t = performance.now();
  const cpu0 = process.cpuUsage();
  for (let i = 0; i < steps; i++) await forward(model, gs, cache!, [11 + (i % 100)]);
  const decodeMs = (performance.now() - t) / steps;
  const cpu = process.cpuUsage(cpu0);
  // CPU time of this process per step (all threads): near the wall time means the host side is the bound.
  const decodeCpuMs = (cpu.user + cpu.system) / 1000 / steps;
  log(`  ${device} decode at ${o.context}: ${decodeMs.toFixed(2)} ms/token (process CPU ${decodeCpuMs.toFixed(2)} ms/token)`);
  const kvBytes = cache!.kvBytesUsed;
  disposeDeviceKv(cache!);
  return {
    device,
    loadMs,
    prefillMs: best,
    prefillTokensPerSecond: o.context / (best / 1000),
    prefillOneCallTokensPerSecond: oneCall,
    decodeMsPerToken: decodeMs,
    decodeCpuMsPerToken: decodeCpuMs,
    decodeTokensPerSecond: 1000 / decodeMs,
    kvBytes,
  };
}

async function benchModel(dir: string, weights: 'trained' | 'random', speed: boolean, o: Opts): Promise<ModelReport> {
  const traces = new Map<string, Float32Array[][]>();
  const speeds: Speed[] = [];
  let report: ModelReport | null = null;
  type Engine = { device: Device; attention?: 'fused' | 'explicit'; precision?: 'fp32' | 'f16'; halfResidual?: 'f16' };
  const engines: Engine[] = [{ device: 'webgpu', attention: 'fused', precision: 'fp32' }];
  if (o.half) engines.push({ device: 'webgpu', attention: 'fused', precision: 'f16' });
  if (o.half && o.halfResidual16) engines.push({ device: 'webgpu', attention: 'fused', precision: 'f16', halfResidual: 'f16' });
  if (o.explicitAttention && speed) engines.push({ device: 'webgpu', attention: 'explicit', precision: 'fp32' });
  engines.push({ device: 'cpu' });
  const traceKey = (e: Engine) => `${e.device}${e.precision === 'f16' ? '-f16' : ''}${e.halfResidual ? '-r16' : ''}`;
  for (const engine of engines) {
    const { device, attention, precision, halfResidual } = engine;
    const explicit = attention === 'explicit';
    const opts: ModelOptions = device === 'webgpu'
      ? { device, strictDevice: true, fusedAttention: !explicit, ...(precision === 'f16' ? { weights: weightOptions('f16'), halfResidual } : {}) }
      : { device, threads: defaultThreads() };
    const t0 = performance.now();
    const model = await Model.load(dir, opts);
    try {
      await model.session(undefined, undefined, FULL_CAUSAL); // converts weights, compiles, creates the session
      const loadMs = performance.now() - t0;
      const c = model.config;
      log(`${path.basename(dir)} on ${device}${attention ? ` (${attention} attention${precision === 'f16' ? `, f16${halfResidual ? ', f16 residual' : ''}` : ''})` : ''}: loaded in ${(loadMs / 1000).toFixed(1)} s (kv mode ${model.kvMode})`);
      report ??= {
        name: path.basename(dir),
        dir,
        weights,
        params: model.ckpt.tensorNames.reduce((s, n) => s + model.ckpt.info(n).shape.reduce((a, b) => a * b, 1), 0),
        config: { layers: c.numLayers, hidden: c.hiddenSize, heads: c.numHeads, kvHeads: c.numKvHeads, headDim: c.headDim, ffn: c.intermediateSize, vocab: c.vocabSize },
        checks: [],
        speed: [],
      };
      if (!explicit) {
        const tr: Float32Array[][] = [];
        for (const s of setups(model)) tr.push(await checkTrace(model, s.setup, Math.min(o.checkTokens, c.maxPositions - 16)));
        traces.set(traceKey(engine), tr);
      }
      if (speed) speeds.push({ ...(await measure(model, device, loadMs, o)), attention, precision, halfResidual });
    } finally {
      await model.dispose();
    }
  }
  const r = report!;
  POLICY_NAMES.forEach((name, i) => r.checks.push(compareTraces(name, traces.get('cpu')![i], traces.get('webgpu')![i], r.config.vocab)));
  for (const ch of r.checks) log(`${r.name} check ${ch.policy}: max |Δlogits| ${ch.maxAbsDiff.toExponential(2)} (max |logit| ${ch.maxAbsRef.toFixed(2)}), argmax agree ${(100 * ch.argmaxAgree).toFixed(1)}% of ${ch.rows} rows`);
  for (const [key, variant] of [['webgpu-f16', 'f16'], ['webgpu-f16-r16', 'f16 (f16 residual)']]) {
    const half = traces.get(key);
    if (!half) continue;
    const checks = POLICY_NAMES.map((name, i) => ({ ...compareTraces(name, traces.get('webgpu')![i], half[i], r.config.vocab), variant }));
    r.halfChecks = [...(r.halfChecks ?? []), ...checks];
    for (const ch of checks) log(`${r.name} half check ${ch.policy}: webgpu ${variant} vs fp32 max |Δlogits| ${ch.maxAbsDiff.toExponential(2)}, KL mean ${ch.klMean.toExponential(2)} max ${ch.klMax.toExponential(2)}, argmax agree ${(100 * ch.argmaxAgree).toFixed(1)}% of ${ch.rows} rows`);
  }
  r.speed = speeds;
  return r;
}

/** One PyTorch peer result (`torch_gpu_bench.py`): a model (config basename) × variant (e.g. `bf16-eager`). */
interface TorchResult {
  model: string;
  variant: string;
  error?: string;
  [figure: string]: unknown;
}

interface TorchReport {
  host?: Record<string, unknown>;
  results: TorchResult[];
  status: number | null;
}

/** Runs the PyTorch peer on the CUDA GPU for the --random shapes; its results file is read even after a failure (it is rewritten after each variant). */
function runTorch(o: Opts, configs: string[]): TorchReport {
  const out = path.join(o.work, 'torch-gpu.json');
  fs.mkdirSync(o.work, { recursive: true });
  fs.rmSync(out, { force: true });
  const args = [o.torch!, ...configs.flatMap((c) => ['--config', c]), '--out', out, '--device', 'cuda', '--context', String(o.context), '--chunk', String(o.chunk), '--steps', String(o.steps), '--gpu-variants', o.torchVariants];
  log(`torch peer: ${o.python} ${args.join(' ')}`);
  const t = performance.now();
  const r = spawnSync(o.python, args, { stdio: ['ignore', 'ignore', 'inherit'], timeout: 20 * 60_000 });
  log(`torch peer: exit ${r.status}${r.error ? ` (${r.error.message})` : ''} after ${((performance.now() - t) / 1000).toFixed(0)} s`);
  const file = fs.existsSync(out) ? (JSON.parse(fs.readFileSync(out, 'utf8')) as { host?: Record<string, unknown>; results: TorchResult[] }) : { results: [] };
  return { ...file, status: r.status };
}

/** headwise webgpu (fused attention) vs each PyTorch variant, per random shape: prefill in one call, in chunks, decode. */
function torchTable(reports: ModelReport[], torch: TorchReport, o: Opts): string {
  const variants = o.torchVariants.split(',');
  const lines = [
    `| shape | figure | headwise webgpu tok/s | ${variants.map((v) => `PyTorch ${v} | ratio`).join(' | ')} |`,
    `| --- | --- | ---: | ${variants.map(() => '---: | ---:').join(' | ')} |`,
  ];
  const figures: [string, (s: Speed) => number | undefined, string][] = [
    [`prefill ${o.context}, one call`, (s) => s.prefillOneCallTokensPerSecond, 'prefill_tok_s'],
    [`prefill ${o.context / o.chunk} × ${o.chunk}`, (s) => s.prefillTokensPerSecond, `prefill_chunk${o.chunk}_tok_s`],
    [`decode at ${o.context}`, (s) => s.decodeTokensPerSecond, 'decode_tok_s'],
  ];
  for (const r of reports.filter((m) => m.weights === 'random')) for (const precision of ['fp32', 'f16'] as const) {
    const gpu = r.speed.find((s) => s.device === 'webgpu' && s.attention !== 'explicit' && (s.precision ?? 'fp32') === precision && !s.halfResidual);
    const shape = `${r.name.replace(/-random$/, '')}${precision === 'f16' ? ' (f16)' : ''}`;
    if (!gpu) continue;
    for (const [figure, ours, key] of figures) {
      const mine = ours(gpu);
      const cells = variants.map((v) => {
        const t = torch.results.find((x) => x.model === r.name.replace(/-random$/, '') && x.variant === v);
        const theirs = typeof t?.[key] === 'number' ? (t[key] as number) : undefined;
        if (theirs === undefined) return `${t?.error ? 'failed' : 'n/a'} | `;
        return `${theirs.toFixed(0)} | ${mine === undefined ? '' : `**${(mine / theirs).toFixed(2)}×**`}`;
      });
      lines.push(`| ${shape} | ${figure} | ${mine === undefined ? 'n/a' : mine.toFixed(mine < 100 ? 1 : 0)} | ${cells.join(' | ')} |`);
    }
  }
  return lines.join('\n');
}

/** Wall time of `runAtlas` (sessions created on the way, as a user sees it) on a device. */
async function atlasTiming(dir: string, device: Device, o: Opts, precision: 'fp32' | 'f16' = 'fp32'): Promise<NonNullable<ModelReport['atlas']>[number]> {
  const half = precision === 'f16' ? { weights: weightOptions('f16') } : {};
  const model = await Model.load(dir, device === 'webgpu' ? { device, strictDevice: true, ...half } : { device, threads: defaultThreads() });
  try {
    const t = performance.now();
    const a = await runAtlas(model, { samples: o.atlasSamples, contextTokens: o.atlasContext });
    const seconds = (performance.now() - t) / 1000;
    log(`${path.basename(dir)} atlas on ${device}${precision === 'f16' ? ' f16' : ''}: ${seconds.toFixed(1)} s (${o.atlasSamples} prompts of ${o.atlasContext} tokens; ${JSON.stringify(a.timing)})`);
    return { device, precision, seconds, samples: o.atlasSamples, contextTokens: o.atlasContext, timing: a.timing ?? {} };
  } finally {
    await model.dispose();
  }
}

/**
 * GPU GFLOP/s of a [m, k]·[k, k] linear layer as Gemm(transB=1) (how the graph writes Hugging Face
 * Linear weights) vs MatMul with the weight stored [in, out]: chains of 8 and 40 layers, difference / 32.
 */
async function linearOps(device: Device, m: number, k: number): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  const w = new Float32Array(k * k).map((_, i) => (((i * 2654435761) % 1000) / 1000 - 0.5) * (2 / Math.sqrt(k)));
  for (const kind of ['Gemm(transB=1)', 'MatMul']) {
    const ms: number[] = [];
    for (const n of [8, 40]) {
      const b = new GraphBuilder('linear');
      const W = b.constF32(w, [k, k]);
      let x = b.input('x', DataType.FLOAT, [m, k]);
      for (let i = 0; i < n; i++) x = kind === 'MatMul' ? b.matmul(x, W) : b.linear(x, W);
      b.output(b.reduceSum(x, [0, 1]), 'y', DataType.FLOAT, [1, 1]);
      const session = await createSession(b.toBytes(), { device, strictDevice: device === 'webgpu' });
      const feeds = { x: new ort.Tensor('float32', new Float32Array(m * k).fill(0.01), [m, k]) };
      await session.run(feeds);
      let best = Infinity;
      for (let r = 0; r < 5; r++) {
        const t = performance.now();
        await session.run(feeds);
        best = Math.min(best, performance.now() - t);
      }
      ms.push(best);
      await session.release();
    }
    out[kind] = (32 * 2 * m * k * k) / ((ms[1] - ms[0]) / 1000) / 1e9;
  }
  return out;
}

function hostInfo(): Record<string, unknown> {
  let gpu = 'unknown';
  try {
    gpu = execFileSync('nvidia-smi', ['--query-gpu=name,driver_version,memory.total', '--format=csv,noheader'], { encoding: 'utf8', timeout: 10_000 }).trim();
  } catch {
    // no NVIDIA tools (lavapipe, other vendors)
  }
  return { cpu: os.cpus()[0]?.model, cores: os.cpus().length, memGB: Math.round(os.totalmem() / 2 ** 30), gpu, ort: ort.env.versions?.common, node: process.version };
}

function table(reports: ModelReport[], o: Opts): string {
  const f = (x: number | undefined, d = 0) => (x === undefined ? 'n/a' : x.toFixed(d));
  const lines = [
    `| model | weights | device | load s | prefill@${o.context} tok/s (chunk ${o.chunk}) | prefill@${o.context} tok/s (one call) | decode@${o.context} tok/s | ms/token |`,
    '| --- | --- | --- | ---: | ---: | ---: | ---: | ---: |',
  ];
  for (const r of reports) {
    const cpu = r.speed.find((s) => s.device === 'cpu');
    const gpu = r.speed.find((s) => s.device === 'webgpu');
    for (const s of r.speed) {
      lines.push(`| ${r.name} (${(r.params / 1e6).toFixed(0)}M) | ${r.weights} | ${s.device}${s.attention === 'explicit' ? ' (explicit attention)' : ''}${s.precision === 'f16' ? ` f16${s.halfResidual ? ' (f16 residual)' : ''}` : ''} | ${f(s.loadMs / 1000, 1)} | ${f(s.prefillTokensPerSecond)} | ${f(s.prefillOneCallTokensPerSecond)} | ${f(s.decodeTokensPerSecond, 1)} | ${f(s.decodeMsPerToken, 2)} |`);
    }
    const half = r.speed.find((s) => s.device === 'webgpu' && s.precision === 'f16' && !s.halfResidual);
    if (gpu && half) {
      lines.push(`| ${r.name} | | **webgpu f16 / fp32** | | **${f(half.prefillTokensPerSecond / gpu.prefillTokensPerSecond, 2)}×** | ${half.prefillOneCallTokensPerSecond && gpu.prefillOneCallTokensPerSecond ? f(half.prefillOneCallTokensPerSecond / gpu.prefillOneCallTokensPerSecond, 2) + '×' : ''} | **${f(half.decodeTokensPerSecond / gpu.decodeTokensPerSecond, 2)}×** | |`);
    }
    if (cpu && gpu) {
      lines.push(`| ${r.name} | | **webgpu / cpu** | | **${f(gpu.prefillTokensPerSecond / cpu.prefillTokensPerSecond, 1)}×** | ${gpu.prefillOneCallTokensPerSecond ? f(gpu.prefillOneCallTokensPerSecond / cpu.prefillTokensPerSecond, 1) + '×' : ''} | **${f(gpu.decodeTokensPerSecond / cpu.decodeTokensPerSecond, 1)}×** | |`);
    }
  }
  lines.push('', '| model | weights | policy | max \\|Δlogits\\| webgpu vs cpu | max \\|logit\\| | argmax agree |', '| --- | --- | --- | ---: | ---: | ---: |');
  for (const r of reports) for (const c of r.checks) lines.push(`| ${r.name} | ${r.weights} | ${c.policy} | ${c.maxAbsDiff.toExponential(2)} | ${c.maxAbsRef.toFixed(2)} | ${(100 * c.argmaxAgree).toFixed(1)}% of ${c.rows} |`);
  if (reports.some((r) => r.halfChecks)) {
    lines.push('', '| model | weights | variant | policy | max \\|Δlogits\\| webgpu half vs fp32 | KL mean | KL max | argmax agree |', '| --- | --- | --- | --- | ---: | ---: | ---: | ---: |');
    for (const r of reports) for (const c of r.halfChecks ?? []) lines.push(`| ${r.name} | ${r.weights} | ${c.variant} | ${c.policy} | ${c.maxAbsDiff.toExponential(2)} | ${c.klMean.toExponential(2)} | ${c.klMax.toExponential(2)} | ${(100 * c.argmaxAgree).toFixed(1)}% of ${c.rows} |`);
  }
  return lines.join('\n');
}

async function main(): Promise<void> {
  const many = (v: string, prev: string[] = []) => [...prev, v];
  const int = (v: string) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 1) throw new Error(`expected a positive integer, got ${v}`);
    return n;
  };
  const program = new Command('bench:gpu')
    .description('webgpu vs cpu: logits check, prefill and decode speed')
    .option('--model <dir>', 'model folder: check + speed (repeatable)', many, [])
    .option('--random <config>', 'config.json: make a random-weight bf16 checkpoint of that shape, check + speed (repeatable)', many, [])
    .option('--check-model <dir>', 'model folder: logits check only (repeatable)', many, [])
    .option('--work <dir>', 'where random checkpoints go', path.join(os.tmpdir(), 'headwise-bench-gpu'))
    .option('--context <n>', 'prefill length and decode context', int, 2048)
    .option('--chunk <n>', 'prefill chunk (tokens per call)', int, 512)
    .option('--steps <n>', 'decode steps timed on webgpu', int, 32)
    .option('--cpu-steps <n>', 'decode steps timed on cpu', int, 16)
    .option('--reps <n>', 'prefill repetitions on webgpu (best kept; the first compiles shaders)', int, 3)
    .option('--cpu-reps <n>', 'prefill repetitions on cpu (best kept)', int, 1)
    .option('--check-tokens <n>', 'prompt tokens of the logits check', int, 256)
    .option('--ops', 'also time a linear layer as Gemm(transB) vs MatMul on the GPU ([chunk, 2048]·[2048, 2048])')
    .option('--out <file>', 'also write the JSON report here')
    .option('--json', 'print the JSON report instead of the table')
    .option('--torch <script>', 'run this PyTorch peer (torch_gpu_bench.py) on the --random shapes first and print the ratios')
    .option('--python <bin>', 'python for --torch', 'python3')
    .option('--torch-variants <list>', 'PyTorch variants for --torch', 'bf16-eager,bf16-sdpa,fp32-eager')
    .option('--explicit-attention', 'also measure webgpu with the explicit attention graph (no fused GroupQueryAttention)')
    .option('--atlas', 'time the atlas of each random model on webgpu')
    .option('--atlas-cpu', 'with --atlas: also on the CPU EP')
    .option('--atlas-samples <n>', 'atlas needle prompts', int, 8)
    .option('--atlas-context <n>', 'atlas prompt tokens', int, 1024)
    .option('--no-speed', 'random models: logits check (and --atlas) only, no prefill/decode timing')
    .option('--no-half', 'skip the webgpu half-precision variant (f16 weights and activations)')
    .option('--half-residual16', 'also the half variant with the residual stream and norms in half')
    .option('--tokenizer-from <dir>', 'tokenizer copied into random checkpoints for --atlas', 'models/ref-llama-7m');
  program.parse(process.argv);
  const o = program.opts<Opts>();
  const probe = await probeWebgpu();
  if (!probe.ok) throw new Error(probe.reason);
  const host = hostInfo();
  log(`host ${JSON.stringify(host)}`);
  let ops: Record<string, number> | undefined;
  if (o.ops) {
    ops = await linearOps('webgpu', o.chunk, 2048);
    log(`webgpu linear [${o.chunk}, 2048]·[2048, 2048] GFLOP/s: ${JSON.stringify(ops)}`);
  }
  // The peer first, while nothing of ours holds GPU memory.
  const torch = o.torch && o.random.length ? runTorch(o, o.random) : null;
  const reports: ModelReport[] = [];
  for (const dir of o.checkModel) reports.push(await benchModel(path.resolve(dir), 'trained', false, o));
  for (const dir of o.model) reports.push(await benchModel(path.resolve(dir), 'trained', true, o));
  for (const config of o.random) {
    const name = path.basename(config, '.json');
    const out = path.join(o.work, `${name}-random`);
    const raw = JSON.parse(fs.readFileSync(config, 'utf8')) as Record<string, number>;
    const need = o.context + o.steps + 16;
    const maxPositions = Math.max(raw.max_position_embeddings ?? 0, need);
    if (!fs.existsSync(path.join(out, 'model.safetensors'))) {
      const t = performance.now();
      const r = makeRandom({ like: config, out, dtype: 'bf16', maxPositions, force: true });
      log(`make-random ${name}: ${(r.bytes / 2 ** 20).toFixed(0)} MiB bf16 in ${((performance.now() - t) / 1000).toFixed(1)} s`);
    }
    const report = await benchModel(out, 'random', o.speed, o);
    if (o.atlas) {
      for (const f of ['tokenizer.json', 'tokenizer_config.json']) {
        if (fs.existsSync(path.join(o.tokenizerFrom, f)) && !fs.existsSync(path.join(out, f))) fs.copyFileSync(path.join(o.tokenizerFrom, f), path.join(out, f));
      }
      report.atlas = [await atlasTiming(out, 'webgpu', o)];
      if (o.half) report.atlas.push(await atlasTiming(out, 'webgpu', o, 'f16'));
      if (o.atlasCpu) report.atlas.push(await atlasTiming(out, 'cpu', o));
    }
    reports.push(report);
  }
  const result = { host, linearGflops: ops, options: { context: o.context, chunk: o.chunk, steps: o.steps, cpuSteps: o.cpuSteps, reps: o.reps, cpuReps: o.cpuReps }, models: reports, torch };
  if (o.out) fs.writeFileSync(o.out, JSON.stringify(result, null, 1));
  if (o.json) console.log(JSON.stringify(result));
  else {
    console.log(`headwise bench:gpu — ${host.gpu} | ${host.cpu} × ${host.cores} | onnxruntime-node ${host.ort} | node ${host.node}`);
    console.log(table(reports, o));
    if (torch) console.log(`\nheadwise webgpu vs PyTorch ${torch.host?.torch ?? ''} on ${torch.host?.gpu ?? 'the GPU'} (peer exit ${torch.status}):\n${torchTable(reports, torch, o)}`);
    for (const r of reports) for (const a of r.atlas ?? []) console.log(`atlas ${r.name} on ${a.device}${a.precision === 'f16' ? ' f16' : ''}: ${a.seconds.toFixed(1)} s (${a.samples} prompts × ${a.contextTokens} tokens)`);
    if (ops) console.log(`\nwebgpu linear layer [${o.chunk}, 2048]·[2048, 2048]: ${Object.entries(ops).map(([k, v]) => `${k} ${v.toFixed(0)} GFLOP/s`).join(', ')}`);
  }
}

main().catch((e) => {
  console.error(`bench:gpu: ${(e as Error).message}`);
  process.exit(1);
});
