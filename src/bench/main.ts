/**
 * `npm run bench`: engine speed and memory on ref-llama-30m (or --model DIR): prefill tokens/s at 512
 * and 2048 tokens, decode tokens/s at 512 and 2048 context, peak RSS, and this machine's ONNX Runtime
 * MatMul GFLOP/s measured in the same run, with prefill expressed as a fraction of it.
 * A benchmark, not a test: it prints numbers and asserts nothing.
 */
import fs from 'node:fs';
import path from 'node:path';
import { Command } from 'commander';
import { forward, newCache } from '../runtime/forward.js';
import { DEFAULT_PREFILL_CHUNK } from '../runtime/generate.js';
import { Model } from '../runtime/model.js';
import { PACKAGE_ROOT } from '../cli/common.js';
import { matmulGflops } from './matmulPeak.js';
import { FULL_HISTORY } from '../kv/classPolicy.js';

/** Multiply-add FLOPs of a forward pass over `q` new tokens after `past` cached ones (logits for 1 row). */
export function forwardFlops(model: Model, past: number, q: number): number {
  const c = model.config;
  const d = c.hiddenSize;
  const perToken = c.numLayers * (d * c.numHeads * c.headDim * 2 + d * c.numKvHeads * c.headDim * 2 + 3 * d * c.intermediateSize);
  // scores + weighted sum: each new token t attends to past + t keys.
  const attn = c.numLayers * c.numHeads * c.headDim * 2 * (q * past + (q * (q + 1)) / 2);
  return 2 * (perToken * q + attn) + 2 * d * c.vocabSize;
}

/** Median and spread of `reps` timings: this box is shared, so one timing says little. */
export interface Timing {
  median: number;
  min: number;
  max: number;
}

function summarize(ms: number[]): Timing {
  const s = [...ms].sort((a, b) => a - b);
  return { median: s[s.length >> 1], min: s[0], max: s[s.length - 1] };
}

async function timePrefill(model: Model, tokens: number, chunk: number, reps: number): Promise<Timing> {
  const gs = await model.session();
  const ids = Array.from({ length: tokens }, (_, i) => 1 + ((i * 7919) % (model.config.vocabSize - 1)));
  const ms: number[] = [];
  // One cache, reset between repetitions: its buffers are allocated once (peak RSS is reported).
  const cache = newCache(model, gs, new Map([['full', FULL_HISTORY]]));
  cache.reserve(tokens);
  for (let rep = 0; rep <= reps; rep++) {
    cache.reset();
    const t = performance.now();
    for (let i = 0; i < tokens; i += chunk) await forward(model, gs, cache, ids.slice(i, i + chunk));
    if (rep > 0) ms.push(performance.now() - t); // rep 0 warms up
  }
  return summarize(ms);
}

/** Per-token decode time at `context` tokens of context: `reps` runs of `steps` steps, each on a freshly prefilled cache. */
async function timeDecode(model: Model, context: number, steps: number, reps: number, chunk: number): Promise<Timing> {
  const gs = await model.session();
  const ids = Array.from({ length: context }, (_, i) => 1 + ((i * 7919) % (model.config.vocabSize - 1)));
  const ms: number[] = [];
  const cache = newCache(model, gs, new Map([['full', FULL_HISTORY]]));
  cache.reserve(context + steps + 8);
  for (let rep = 0; rep < reps; rep++) {
    cache.reset();
    for (let i = 0; i < context; i += chunk) await forward(model, gs, cache, ids.slice(i, i + chunk));
    for (let i = 0; i < 3; i++) await forward(model, gs, cache, [7], { commit: false });
    const t = performance.now();
    for (let i = 0; i < steps; i++) await forward(model, gs, cache, [7 + (i % 100)]);
    ms.push((performance.now() - t) / steps);
  }
  return summarize(ms);
}

async function main(): Promise<void> {
  const program = new Command('bench')
    .description('engine benchmark: prefill/decode speed, peak RSS, and machine MatMul throughput')
    .option('-m, --model <dir>', 'model folder', path.resolve(PACKAGE_ROOT, '..', 'shared', 'models', 'ref-llama-30m'))
    .option('--chunk <n>', 'prefill chunk size', (v) => Number(v), DEFAULT_PREFILL_CHUNK)
    .option('--reps <n>', 'timed repetitions of each figure (the median is reported)', (v) => Number(v), 5)
    .option('--json', 'print one JSON object');
  program.parse(process.argv);
  const opts = program.opts<{ model: string; chunk: number; reps: number; json?: boolean }>();
  if (!Number.isInteger(opts.reps) || opts.reps < 1) throw new Error(`--reps must be a positive integer, got ${opts.reps}`);
  let dir = opts.model;
  if (!fs.existsSync(path.join(dir, 'config.json'))) {
    dir = path.join(PACKAGE_ROOT, 'models', 'ref-llama-7m');
    console.error(`bench: ${opts.model} not found, using the bundled ${dir}`);
  }
  const rssBefore = process.memoryUsage().rss;
  const model = await Model.load(dir);
  const c = model.config;
  const fp32WeightBytes = model.ckpt.tensorNames.reduce((s, n) => s + model.ckpt.info(n).shape.reduce((a, b) => a * b, 1) * 4, 0);
  const results: Record<string, number> = {};
  // Rates from the median timing, with the range over the repetitions (slowest, fastest).
  const rates = (key: string, perMs: number, t: Timing) => {
    results[key] = perMs / t.median;
    results[`${key}Min`] = perMs / t.max;
    results[`${key}Max`] = perMs / t.min;
  };
  for (const tokens of [512, 2048].filter((t) => t <= c.maxPositions)) {
    const t = await timePrefill(model, tokens, opts.chunk, opts.reps);
    rates(`prefill${tokens}TokensPerSecond`, tokens * 1000, t);
    rates(`prefill${tokens}Gflops`, forwardFlops(model, 0, tokens) / 1e6, t);
  }
  for (const context of [512, 2048]) {
    // "at 2048 context": the cache holds as much of 2048 as the model's context leaves room for.
    const t = await timeDecode(model, Math.min(context, c.maxPositions - 40), 32, opts.reps, opts.chunk);
    rates(`decode${context}TokensPerSecond`, 1000, t);
  }
  // Peak RSS of the model work alone, read before the MatMul probe allocates its own buffers.
  const peakRss = process.resourceUsage().maxRSS * 1024;
  await model.dispose();
  const peaks = [];
  for (const [m, k, n] of [[512, 512, 1408], [1024, 1024, 1024], [2048, 2048, 2048]] as const) peaks.push(await matmulGflops(m, k, n));
  const peak = Math.max(...peaks.map((p) => p.gflops));
  const report = {
    model: path.basename(dir),
    params: fp32WeightBytes / 4,
    fp32WeightMB: fp32WeightBytes / 2 ** 20,
    threads: (await import('../runtime/ort.js')).defaultThreads(),
    reps: opts.reps,
    matmulPeakGflops: peak,
    matmul: peaks,
    ...results,
    prefill512FractionOfMatmul: results.prefill512Gflops / peak,
    prefill2048FractionOfMatmul: results.prefill2048Gflops / peak,
    peakRssMB: peakRss / 2 ** 20,
    rssBeforeModelMB: rssBefore / 2 ** 20,
    peakRssBudgetMB: (1.5 * fp32WeightBytes) / 2 ** 20 + 300,
  };
  if (opts.json) {
    console.log(JSON.stringify(report));
    return;
  }
  const f = (x: number | undefined, d = 1) => (x === undefined || Number.isNaN(x) ? 'n/a' : x.toFixed(d));
  console.log(`headwise bench — ${report.model} (${(report.params / 1e6).toFixed(1)}M params, ${report.threads} threads; medians of ${opts.reps} runs, [slowest–fastest])`);
  const range = (key: string, d = 0) => `[${f(results[`${key}Min`], d)}–${f(results[`${key}Max`], d)}]`;
  console.log(`  ORT MatMul peak            ${f(peak)} GFLOP/s  (${peaks.map((p) => `${p.m}x${p.k}x${p.n}: ${f(p.gflops)}`).join(', ')})`);
  for (const t of [512, 2048]) {
    console.log(`  prefill ${String(t).padStart(4)} tokens        ${f(results[`prefill${t}TokensPerSecond`], 0)} tok/s ${range(`prefill${t}TokensPerSecond`)} = ${f(results[`prefill${t}Gflops`])} GFLOP/s = ${f(100 * results[`prefill${t}Gflops`] / peak, 0)}% of MatMul peak [${f(100 * results[`prefill${t}GflopsMin`] / peak, 0)}–${f(100 * results[`prefill${t}GflopsMax`] / peak, 0)}%]`);
  }
  for (const t of [512, 2048]) console.log(`  decode at ${String(t).padStart(4)} context     ${f(results[`decode${t}TokensPerSecond`], 0)} tok/s ${range(`decode${t}TokensPerSecond`)}`);
  console.log(`  peak RSS                   ${f(report.peakRssMB, 0)} MB (budget 1.5 × ${f(report.fp32WeightMB, 0)} MB fp32 weights + 300 MB = ${f(report.peakRssBudgetMB, 0)} MB)`);
}

main().catch((e) => {
  console.error(`bench: ${(e as Error).message}`);
  process.exit(1);
});
