/**
 * The KV-cache flags shared by `generate`, `niah` and `serve`: --kv full|streaming|duo, --sink,
 * --window, --full-heads, --atlas FILE and --kv-metric. For duo without an atlas, per-KV-head scores
 * are computed on the fly from a quick atlas run on needle prompts.
 */
import { Option, type Command } from 'commander';
import { HeadwiseError } from '../errors.js';
import { readAtlas, kvHeadScores, type KvScoreMetric } from '../atlas/file.js';
import { cacheSetup, DEFAULT_SINK, DEFAULT_WINDOW, KV_POLICIES, type KvPolicyName } from '../kv/policy.js';
import type { CacheSetup } from '../runtime/generate.js';
import type { Model } from '../runtime/model.js';
import { floatArg, intArg } from './common.js';

export interface KvFlags {
  kv: KvPolicyName;
  sink: number;
  window: number;
  fullHeads: number;
  atlas?: string;
  kvMetric: KvScoreMetric;
}

export function kvOptions(cmd: Command): Command {
  return cmd
    .addOption(new Option('--kv <policy>', 'KV cache policy').choices(KV_POLICIES as unknown as string[]).default('full'))
    .option('--sink <n>', 'sink tokens kept by streaming heads', intArg(0), DEFAULT_SINK)
    .option('--window <n>', 'recent tokens kept by streaming heads', intArg(1), DEFAULT_WINDOW)
    .option('--full-heads <fraction>', 'duo: share of KV heads that keep the full cache', floatArg(0, 1), 0.25)
    .option('--atlas <file>', 'duo: atlas JSON whose scores choose the full heads')
    .addOption(new Option('--kv-metric <metric>', 'duo: score that ranks KV heads').choices(['retrieval', 'streamingHarm']).default('retrieval'));
}

export interface ResolvedCache {
  setup: CacheSetup;
  describe: Record<string, unknown>;
}

/** Scores for duo when no atlas file is given; set by the atlas module to avoid a cycle. */
export let computeKvScores: ((model: Model, metric: KvScoreMetric) => Promise<number[][]>) | null = null;
export function setKvScoreComputer(fn: typeof computeKvScores): void {
  computeKvScores = fn;
}

export async function resolveCacheSetup(model: Model, flags: KvFlags): Promise<ResolvedCache> {
  let scores: number[][] | undefined;
  let source: string | undefined;
  if (flags.kv === 'duo') {
    if (flags.atlas) {
      scores = kvHeadScores(readAtlas(flags.atlas, model.config), flags.kvMetric, model.config);
      source = flags.atlas;
    } else {
      if (!computeKvScores) throw new HeadwiseError('--kv duo needs --atlas FILE (write one with `headwise atlas --out FILE`)');
      scores = await computeKvScores(model, flags.kvMetric);
      source = 'computed';
    }
  }
  const setup = cacheSetup(model.config, { policy: flags.kv, sink: flags.sink, window: flags.window, fullHeads: flags.fullHeads, kvHeadScores: scores });
  const describe: Record<string, unknown> = { policy: flags.kv };
  if (flags.kv !== 'full') Object.assign(describe, { sink: flags.sink, window: flags.window });
  if (flags.kv === 'duo') {
    const full = setup.layout.map((groups) => groups.filter((g) => g.cacheClass === 'full').flatMap((g) => g.kvHeads));
    Object.assign(describe, { fullHeads: flags.fullHeads, metric: flags.kvMetric, source, fullKvHeads: full });
  }
  return { setup, describe };
}
