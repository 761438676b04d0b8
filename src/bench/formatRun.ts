/**
 * One weight format of one model measured in its own process (so peak RSS belongs to it alone):
 * `compile` converts the weights and writes the graph (time and peak RSS of that alone), `run` loads
 * the compiled graph into an ONNX Runtime session (time and peak RSS up to there: the load), then
 * times prefill and decode. Also the bytes a decode step reads, from the config and the format, for
 * the read-bandwidth bound. `main.ts` runs these as child processes, interleaved.
 */
import fs from 'node:fs';
import { compileGraph, archFor } from '../graph/compile.js';
import { NO_HOOKS } from '../graph/hooks.js';
import { formatBits, type WeightOptions } from '../graph/quant.js';
import { Checkpoint } from '../hf/checkpoint.js';
import { forward, newCache } from '../runtime/forward.js';
import { fullCache } from '../runtime/generate.js';
import { FULL_HISTORY } from '../runtime/kvCache.js';
import { applyModelWindows } from '../runtime/modelWindow.js';
import { Model } from '../runtime/model.js';
import { uniformLayout } from '../graph/layout.js';

/** Token ids the runs draw from (as the llama.cpp bench does). */
export const BENCH_VOCAB = 8192;

/** Peak resident set of this process so far (VmHWM), in MiB. */
export function peakRssMB(): number {
  const m = /VmHWM:\s+(\d+) kB/.exec(fs.readFileSync('/proc/self/status', 'utf8'));
  return m ? Number(m[1]) / 1024 : process.resourceUsage().maxRSS / 1024;
}

/**
 * Bytes one decode step reads at `context` tokens: every matrix the step multiplies by (the embedding
 * only when it is also the LM head: a lookup reads one row), the 1-D weights, and the cache's keys
 * and values (float32).
 */
export function decodeBytesPerToken(ckpt: Checkpoint, weights: WeightOptions, context: number): { weightBytes: number; kvBytes: number } {
  const c = ckpt.config;
  const bits = formatBits(weights.format);
  let bytes = 0;
  for (const w of archFor(ckpt).weights) {
    const elems = w.shape.reduce((a, b) => a * b, 1);
    const vocabShaped = w.shape.length === 2 && w.shape[0] === c.vocabSize;
    const lookupOnly = vocabShaped && !c.tieWordEmbeddings && /embed|wte/.test(w.name);
    if (lookupOnly) continue;
    const f32 = w.shape.length !== 2 || (vocabShaped && !weights.quantizeEmbeddings);
    if (f32 || weights.format === 'f32') bytes += 4 * elems;
    else if (bits === null) bytes += 2 * elems;
    else bytes += (elems * bits) / 8 + (elems / weights.blockSize) * 4;
  }
  return { weightBytes: bytes, kvBytes: 2 * c.numLayers * c.numKvHeads * c.headDim * 4 * context };
}

export interface CompileFigures {
  /** Whether the graph was already cached (then the figures measure a cache hit). */
  cached: boolean;
  compileMs: number;
  compilePeakRssMB: number;
}

export function compileFormat(dir: string, weights: WeightOptions, accuracyLevel?: number): CompileFigures {
  const ckpt = Checkpoint.open(dir);
  try {
    const c = ckpt.config;
    const t = performance.now();
    // The layout `fullCache` gives the loaded model (its sliding-window layers in their own classes).
    const { layout } = applyModelWindows({ layout: uniformLayout(c.numLayers, c.numKvHeads), policies: new Map([['full', FULL_HISTORY]]) }, c);
    const { cached } = compileGraph(ckpt, layout, NO_HOOKS, 'append', { weights, accuracyLevel });
    return { cached, compileMs: performance.now() - t, compilePeakRssMB: peakRssMB() };
  } finally {
    ckpt.close();
  }
}

export interface RunFigures {
  loadMs: number;
  loadPeakRssMB: number;
  prefillTokensPerSecond: number;
  decodeTokensPerSecond: number;
  peakRssMB: number;
}

/** Loads the (already compiled) graph, then times prefill of `prefill` tokens and `steps` decode steps at `context`. */
export async function runFormat(dir: string, weights: WeightOptions, threads: number, o: { prefill: number; context: number; steps: number; chunk: number; accuracyLevel?: number }): Promise<RunFigures> {
  const t0 = performance.now();
  const model = await Model.load(dir, { threads, weights, accuracyLevel: o.accuracyLevel });
  try {
    const setup = fullCache(model);
    const gs = await model.session(setup.layout);
    const loadMs = performance.now() - t0;
    const loadPeakRssMB = peakRssMB();
    // The token ids of `../shared/peer/llama_bench.mjs` (ids below 8192), so that both engines look up
    // the same embedding rows: spread over a 128k vocabulary they touched ~200 MB more of the mapped
    // embedding at 1B, which llama.cpp's run never reads.
    const V = Math.min(BENCH_VOCAB, model.config.vocabSize);
    const ids = (n: number) => Array.from({ length: n }, (_, i) => 1 + ((i * 7919) % (V - 1)));
    const cache = newCache(model, gs, setup.policies);
    cache.reserve(Math.max(o.prefill, o.context + o.steps + 8));
    const prefillOnce = async (n: number) => {
      cache.reset();
      const x = ids(n);
      const t = performance.now();
      for (let i = 0; i < n; i += o.chunk) await forward(model, gs, cache, x.slice(i, i + o.chunk));
      return performance.now() - t;
    };
    await prefillOnce(Math.min(64, o.prefill)); // warm-up
    const prefillMs = await prefillOnce(o.prefill);
    await prefillOnce(o.context);
    for (let i = 0; i < 3; i++) await forward(model, gs, cache, [7], { commit: false });
    const t = performance.now();
    for (let i = 0; i < o.steps; i++) await forward(model, gs, cache, [7 + (i % 100)]);
    const decodeMs = (performance.now() - t) / o.steps;
    return { loadMs, loadPeakRssMB, prefillTokensPerSecond: (o.prefill * 1000) / prefillMs, decodeTokensPerSecond: 1000 / decodeMs, peakRssMB: peakRssMB() };
  } finally {
    await model.dispose();
  }
}
