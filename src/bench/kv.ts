/**
 * `npm run bench:kv`: decode speed and KV memory of the head-aware cache policies against context
 * length — full, streaming (sink + window), duo (a share of KV heads full, the rest streaming) and the
 * selection policies snapkv, headkv and longheads-static (`--kv-budget` of full attention's rows) and
 * longheads per step (every row held, `--kv-budget` of them read per step: `kvBytesAttended`) —
 * on a random-weight model of ref-llama-30m's shape with a 32K context (made once by `make-random`
 * into the cache folder: decode speed depends on cache lengths, not on weights).
 *
 * For each context length N every policy's cache is filled to N − steps − 2 tokens, then the policies
 * decode in turn, one token each, round after round (the last step at context N), so a noisy machine
 * slows them alike; the median step is reported. By default the cache is filled with random keys/values through `KvCache.update` (the
 * same eviction and allocation path as a prefill, without the quadratic prefill a 32K full-attention
 * cache would cost); `--fill model` runs the real chunked prefill instead. KV bytes are what the
 * cache's buffers hold after decoding (`kvBytes`), next to full attention's for the same tokens and
 * the theoretical r + (1 − r)(S + W)/N (the budget for selection policies). Selection policies select
 * once the cache is filled: with the synthetic fill on random attention rows (decode speed depends on
 * how many rows each head holds, not on which), with `--fill model` through the real prefill and its
 * observation pass (`runtime/generate.ts`).
 *
 * Prints a table; writes `kv-bench.json` and `kv-bench.html` (a self-contained Observable Plot chart)
 * into `--out`. A benchmark, not a test: it asserts nothing.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { Command } from 'commander';
import { makeRandom } from '../cli/makeRandom.js';
import { PACKAGE_ROOT } from '../cli/common.js';
import { cacheRoot } from '../graph/weights.js';
import { cacheSetup, theoreticalKvRatio, type KvPolicyName } from '../kv/policy.js';
import { forward } from '../runtime/forward.js';
import type { GroupPattern } from '../runtime/forward.js';
import { NO_HOOKS } from '../graph/hooks.js';
import { stepQueryHooks } from '../runtime/stepAttention.js';
import { kvBytesFull, prefill, type CacheSetup } from '../runtime/generate.js';
import { groupQueryHeads } from '../graph/layout.js';
import { KvCache } from '../runtime/kvCache.js';
import { Model } from '../runtime/model.js';
import { kvBenchHtml } from './kvPlot.js';

export interface KvBenchRow {
  policy: KvPolicyName;
  contextTokens: number;
  /** Median wall time of one decode step. */
  decodeMs: number;
  decodeTokensPerSecond: number;
  /** Median process CPU time of one decode step (all threads). */
  decodeCpuMs: number;
  kvBytes: number;
  kvBytesFull: number;
  /** Bytes of the key/value rows one decode step reads (the last step's): below `kvBytes` for longheads per step. */
  kvBytesAttended: number;
  kvRatio: number;
  kvRatioTheoretical: number;
  /** Speed-up over full attention at this context (median of per-round ratios). */
  speedupVsFull: number | null;
}

export interface KvBenchResult {
  format: 'headwise-kv-bench';
  version: 1;
  createdAt: string;
  model: { like: string; layers: number; heads: number; kvHeads: number; headDim: number; hidden: number; maxPositions: number };
  settings: { sink: number; window: number; fullHeads: number; kvBudget: number; steps: number; fill: 'synthetic' | 'model'; threads: number | null; seed: number };
  rows: KvBenchRow[];
}

interface Flags {
  like: string;
  contexts: string;
  policies: string;
  steps: number;
  sink: number;
  window: number;
  fullHeads: number;
  kvBudget: number;
  sizeClasses?: number;
  fill: 'synthetic' | 'model';
  threads?: number;
  seed: number;
  out: string;
  json?: boolean;
}

/** The random-weight model for `like`, made once per (config, context) into the cache folder. */
function randomModelDir(like: string, maxPositions: number): string {
  const config = fs.readFileSync(path.join(like, 'config.json'), 'utf8');
  const key = crypto.createHash('sha256').update(`${config}\n${maxPositions}`).digest('hex').slice(0, 12);
  const dir = path.join(cacheRoot(), 'random', `${path.basename(like)}-${maxPositions}-${key}`);
  if (!fs.existsSync(path.join(dir, 'model.safetensors'))) {
    console.error(`bench:kv: writing a random-weight model of ${path.basename(like)}'s shape (${maxPositions} positions) to ${dir}`);
    makeRandom({ like, out: dir, maxPositions, seed: 0, force: true });
  }
  return dir;
}

const WARMUP = 2;

function mulberry(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), a | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function setupFor(model: Model, policy: KvPolicyName, f: Flags): CacheSetup {
  const c = model.config;
  // Speed does not depend on which heads are full: a seeded random choice.
  const rand = mulberry(f.seed + 1);
  const scores = Array.from({ length: c.numLayers }, () => Array.from({ length: c.numKvHeads }, () => rand()));
  return cacheSetup(c, { policy, sink: f.sink, window: f.window, fullHeads: f.fullHeads, kvHeadScores: scores, budget: f.kvBudget, sizeClasses: f.sizeClasses });
}

/** One random attention row per group over every held key, standing in for the observation window's. */
function syntheticPatterns(model: Model, cache: KvCache, seed: number): GroupPattern[] {
  const c = model.config;
  const rand = mulberry(seed);
  const keys = Int32Array.from({ length: cache.seen }, (_, i) => i);
  return cache.layout.flatMap((groups, layer) => groups.map((group) => {
    const heads = groupQueryHeads(group, c.numHeads, c.numKvHeads);
    return { layer, heads, queryPositions: Int32Array.from([cache.seen - 1]), keyPositions: keys, data: Float32Array.from({ length: heads.length * keys.length }, () => rand() / keys.length) };
  }));
}

/** Fills a cache to `tokens` positions with random keys/values through the cache's own update path. */
function fillSynthetic(cache: KvCache, tokens: number, headDim: number, seed: number): void {
  const chunk = 512;
  const rand = mulberry(seed);
  const noise = Float32Array.from({ length: chunk * 64 * headDim }, () => rand() - 0.5);
  for (let at = 0; at < tokens; at += chunk) {
    const q = Math.min(chunk, tokens - at);
    const news = cache.layout.map((groups) => groups.map((g) => {
      const n = q * g.kvHeads.length * headDim;
      const data = noise.length >= n ? noise.subarray(0, n) : Float32Array.from({ length: n }, (_, i) => noise[i % noise.length]);
      return { key: data, value: data };
    }));
    cache.update(news, Array.from({ length: q }, (_, i) => at + i));
  }
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

export async function runKvBench(f: Flags, log: (line: string) => void = () => {}): Promise<KvBenchResult> {
  const contexts = f.contexts.split(',').map((s) => Number(s.trim()));
  const policies = f.policies.split(',').map((s) => s.trim()) as KvPolicyName[];
  const dir = randomModelDir(f.like, Math.max(...contexts, 32768));
  const model = await Model.load(dir, { threads: f.threads });
  const c = model.config;
  const rows: KvBenchRow[] = [];
  try {
    const sessions = new Map<KvPolicyName, { setup: CacheSetup; gs: Awaited<ReturnType<Model['session']>> }>();
    for (const p of policies) {
      const setup = setupFor(model, p, f);
      sessions.set(p, { setup, gs: await model.session(setup.layout, stepQueryHooks(setup.policies, NO_HOOKS, c.numLayers)) });
    }
    const rand = mulberry(f.seed);
    const token = () => 1 + Math.floor(rand() * (c.vocabSize - 1));
    for (const N of contexts) {
      const caches = new Map<KvPolicyName, KvCache>();
      for (const p of policies) {
        const { setup, gs } = sessions.get(p)!;
        let cache = new KvCache(setup.layout, setup.policies, c.headDim);
        // Filled so that the last decode step runs at context N: the steps span N − steps .. N.
        const prompt = N - f.steps - WARMUP;
        cache.reserve(N);
        if (setup.selection && f.fill === 'model') {
          cache = (await prefill(model, Array.from({ length: prompt }, token), { cache: setup, prefillChunk: 512, maxNewTokens: N - prompt + 1 })).cache;
        } else if (setup.selection) {
          fillSynthetic(cache, prompt, c.headDim, f.seed + N);
          setup.selection.select(cache, syntheticPatterns(model, cache, f.seed + N), N - prompt);
        } else if (f.fill === 'model') {
          const ids = Array.from({ length: prompt }, token);
          for (let i = 0; i < prompt; i += 512) await forward(model, gs, cache, ids.slice(i, i + 512));
        } else {
          fillSynthetic(cache, prompt, c.headDim, f.seed + N);
        }
        for (let i = 0; i < WARMUP; i++) await forward(model, gs, cache, [token()]);
        caches.set(p, cache);
      }
      const wall = new Map<KvPolicyName, number[]>(policies.map((p) => [p, []]));
      const cpu = new Map<KvPolicyName, number[]>(policies.map((p) => [p, []]));
      for (let step = 0; step < f.steps; step++) {
        // Rotate the order each round so no policy always runs right after another.
        const order = policies.map((_, i) => policies[(i + step) % policies.length]);
        for (const p of order) {
          const id = token();
          const c0 = process.cpuUsage();
          const t0 = performance.now();
          await forward(model, sessions.get(p)!.gs, caches.get(p)!, [id]);
          wall.get(p)!.push(performance.now() - t0);
          const dc = process.cpuUsage(c0);
          cpu.get(p)!.push((dc.user + dc.system) / 1000);
        }
      }
      const fullWall = wall.get('full');
      for (const p of policies) {
        const cache = caches.get(p)!;
        const decodeMs = median(wall.get(p)!);
        const fullShare = p === 'full' ? 1 : p === 'streaming' ? 0 : f.fullHeads;
        const selecting = !!sessions.get(p)!.setup.selection;
        const stepping = p === 'longheads';
        const row: KvBenchRow = {
          policy: p,
          contextTokens: N,
          decodeMs,
          decodeTokensPerSecond: 1000 / decodeMs,
          decodeCpuMs: median(cpu.get(p)!),
          kvBytes: cache.kvBytes,
          kvBytesFull: kvBytesFull(model, cache.seen),
          kvBytesAttended: cache.kvBytesAttended,
          kvRatio: cache.kvBytes / kvBytesFull(model, cache.seen),
          kvRatioTheoretical: stepping ? 1 : selecting ? f.kvBudget : theoreticalKvRatio(fullShare, f.sink, f.window, cache.seen),
          speedupVsFull: fullWall ? median(fullWall.map((w, i) => w / wall.get(p)![i])) : null,
        };
        rows.push(row);
        log(formatRow(row));
      }
      caches.clear();
    }
  } finally {
    await model.dispose();
  }
  return {
    format: 'headwise-kv-bench',
    version: 1,
    createdAt: new Date().toISOString(),
    model: { like: path.basename(f.like), layers: c.numLayers, heads: c.numHeads, kvHeads: c.numKvHeads, headDim: c.headDim, hidden: c.hiddenSize, maxPositions: c.maxPositions },
    settings: { sink: f.sink, window: f.window, fullHeads: f.fullHeads, kvBudget: f.kvBudget, steps: f.steps, fill: f.fill, threads: f.threads ?? null, seed: f.seed },
    rows,
  };
}

const MiB = 2 ** 20;

export const TABLE_HEADER = 'context  policy              tok/s   ms/step  cpu ms  speedup  KV MiB  full MiB  ratio  theory  read MiB';

export function formatRow(r: KvBenchRow): string {
  return [
    String(r.contextTokens).padStart(7),
    r.policy.padEnd(17),
    r.decodeTokensPerSecond.toFixed(1).padStart(8),
    r.decodeMs.toFixed(1).padStart(8),
    r.decodeCpuMs.toFixed(1).padStart(7),
    (r.speedupVsFull === null ? '-' : `${r.speedupVsFull.toFixed(2)}x`).padStart(8),
    (r.kvBytes / MiB).toFixed(1).padStart(7),
    (r.kvBytesFull / MiB).toFixed(1).padStart(9),
    r.kvRatio.toFixed(3).padStart(6),
    r.kvRatioTheoretical.toFixed(3).padStart(7),
    (r.kvBytesAttended / MiB).toFixed(1).padStart(9),
  ].join(' ');
}

async function main(): Promise<void> {
  const shared = path.resolve(PACKAGE_ROOT, '..', 'shared', 'models', 'ref-llama-30m');
  const program = new Command('bench:kv')
    .description('decode tokens/s and KV bytes vs context length for the full, streaming, duo, snapkv, headkv, longheads and longheads-static KV policies')
    .option('--like <dir>', 'model whose shape the random-weight model copies', shared)
    .option('--contexts <list>', 'context lengths', '1024,2048,4096,8192,16384,32768')
    .option('--policies <list>', 'policies', 'full,streaming,duo,snapkv,headkv,longheads,longheads-static')
    .option('--steps <n>', 'decode steps per policy and context', (v) => Number(v), 32)
    .option('--sink <n>', 'sink tokens', (v) => Number(v), 4)
    .option('--window <n>', 'window tokens', (v) => Number(v), 64)
    .option('--full-heads <fraction>', 'duo: share of full KV heads', (v) => Number(v), 0.25)
    .option('--size-classes <n>', 'headkv: budget size classes (default 4; the number of KV heads or more: one budget and one group per head)', (v) => Number(v))
    .option('--kv-budget <share>', 'snapkv/headkv/longheads-static: share of full attention\'s rows held; longheads: share read per step', (v) => Number(v), 0.3)
    .option('--fill <how>', 'synthetic (random keys/values through the cache) or model (real prefill)', 'synthetic')
    .option('--threads <n>', 'ONNX Runtime threads (default: all cores)', (v) => Number(v))
    .option('--seed <n>', 'seed', (v) => Number(v), 0)
    .option('--out <dir>', 'folder for kv-bench.json and kv-bench.html', 'bench-kv')
    .option('--json', 'print the JSON result instead of the table');
  program.parse(process.argv);
  const f = program.opts<Flags>();
  if (!fs.existsSync(path.join(f.like, 'config.json'))) {
    const bundled = path.join(PACKAGE_ROOT, 'models', 'ref-llama-7m');
    console.error(`bench:kv: ${f.like} not found, using the shape of the bundled ${bundled}`);
    f.like = bundled;
  }
  if (!f.json) console.log(TABLE_HEADER);
  const result = await runKvBench(f, f.json ? undefined : (line) => console.log(line));
  fs.mkdirSync(f.out, { recursive: true });
  fs.writeFileSync(path.join(f.out, 'kv-bench.json'), JSON.stringify(result, null, 2) + '\n');
  fs.writeFileSync(path.join(f.out, 'kv-bench.html'), kvBenchHtml(result));
  if (f.json) console.log(JSON.stringify(result));
  else console.log(`wrote ${path.join(f.out, 'kv-bench.json')} and kv-bench.html`);
}

if (process.argv[1] && path.resolve(process.argv[1]).replace(/\.ts$/, '.js').endsWith(path.join('bench', 'kv.js'))) {
  main().catch((e) => {
    console.error(`bench:kv: ${(e as Error).message}`);
    process.exit(1);
  });
}
