/**
 * The KV-cache flags shared by `generate`, `niah` and `serve`: --kv full|streaming|duo, --sink,
 * --window, --full-heads, --atlas FILE, --kv-metric and --razor. For duo without an atlas, per-KV-head
 * scores are computed on the fly from a quick atlas run on needle prompts. `kvReport` is the KV part of
 * a command's --json output: bytes measured from the buffers next to full attention's and the theory.
 */
import { Option, type Command } from 'commander';
import { UsageError } from '../errors.js';
import { readAtlas, kvHeadScores, type KvScoreMetric } from '../atlas/file.js';
import { computeKvHeadScores } from '../atlas/kvScores.js';
import { cacheSetup, DEFAULT_SINK, DEFAULT_WINDOW, fullHeadShare, KV_POLICIES, theoreticalKvRatio, type KvPolicyName } from '../kv/policy.js';
import { kvBytesFull } from '../runtime/generate.js';
import { baseClass } from '../runtime/modelWindow.js';
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
  razor?: boolean;
}

export function kvOptions(cmd: Command): Command {
  return cmd
    .addOption(new Option('--kv <policy>', 'KV cache policy').choices(KV_POLICIES as unknown as string[]).default('full'))
    .option('--sink <n>', 'sink tokens kept by streaming heads', intArg(0), DEFAULT_SINK)
    .option('--window <n>', 'recent tokens kept by streaming heads', intArg(1), DEFAULT_WINDOW)
    .option('--full-heads <fraction>', 'duo: share of KV heads that keep the full cache', floatArg(0, 1), 0.25)
    .option('--atlas <file>', 'duo: atlas JSON whose scores choose the full heads')
    .addOption(new Option('--kv-metric <metric>', 'duo: score that ranks KV heads').choices(['retrieval', 'streamingHarm']).default('retrieval'))
    .option('--razor', 'streaming/duo: streaming heads keep a compensation token, the mean key and value of what they evicted (RazorAttention)');
}

export interface ResolvedCache {
  setup: CacheSetup;
  describe: Record<string, unknown>;
}

export async function resolveCacheSetup(model: Model, flags: KvFlags): Promise<ResolvedCache> {
  let scores: number[][] | undefined;
  let tieBreak: number[][] | undefined;
  let source: string | undefined;
  if (flags.kv === 'duo') {
    if (flags.atlas) {
      const atlas = readAtlas(flags.atlas, model.config);
      scores = kvHeadScores(atlas, flags.kvMetric, model.config);
      // Heads tied on one metric (most score exactly 0 on retrieval) are ordered by the other, if the atlas has it.
      const other: KvScoreMetric = flags.kvMetric === 'retrieval' ? 'streamingHarm' : 'retrieval';
      if (atlas.metrics[other]) tieBreak = kvHeadScores(atlas, other, model.config);
      source = flags.atlas;
    } else {
      scores = await computeKvHeadScores(model, flags.kvMetric);
      source = 'computed (16 needle prompts)';
    }
  }
  if (flags.razor && flags.kv === 'full') throw new UsageError('--razor applies to --kv streaming or duo');
  const setup = cacheSetup(model.config, { policy: flags.kv, sink: flags.sink, window: flags.window, fullHeads: flags.fullHeads, kvHeadScores: scores, kvHeadTieBreak: tieBreak, compensate: flags.razor });
  const describe: Record<string, unknown> = { policy: flags.kv };
  if (flags.kv !== 'full') Object.assign(describe, { sink: flags.sink, window: flags.window, razor: !!flags.razor });
  if (flags.kv === 'duo') {
    const full = setup.layout.map((groups) => groups.filter((g) => baseClass(g.cacheClass) === 'full').flatMap((g) => g.kvHeads));
    Object.assign(describe, { fullHeads: flags.fullHeads, metric: flags.kvMetric, source, fullKvHeads: full });
  }
  return { setup, describe };
}

export interface KvReport {
  /** Bytes allocated by the KV buffers at the end of the run (measured). */
  kvBytes: number;
  /** What full attention would hold for the same tokens. */
  kvBytesFull: number;
  kvRatio: number;
  /** r + (1 − r)(S + W)/N for this setup's share r of full KV heads at N tokens. */
  kvRatioTheoretical: number;
}

/** The KV numbers a command prints with --json, for a run that held `tokens` tokens. */
export function kvReport(model: Model, flags: Pick<KvFlags, 'sink' | 'window' | 'razor'>, setup: CacheSetup, kvBytes: number, tokens: number, fullBytes = kvBytesFull(model, tokens)): KvReport {
  const r = fullHeadShare(setup);
  return {
    kvBytes,
    kvBytesFull: fullBytes,
    kvRatio: fullBytes ? kvBytes / fullBytes : 0,
    kvRatioTheoretical: r === 1 ? 1 : theoreticalKvRatio(r, flags.sink, flags.window, tokens, !!flags.razor),
  };
}
