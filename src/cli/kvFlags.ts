/**
 * The KV-cache flags shared by `generate`, `niah` and `serve`: --kv full|streaming|duo|snapkv|headkv|
 * longheads|longheads-static, --sink, --window, --full-heads, --kv-budget, --kv-chunk, --kv-size-classes, --atlas FILE,
 * --kv-metric, --pattern DIR (a DuoAttention folder), --head-scores FILE (Retrieval_Head / HeadKV JSON), --razor
 * and --export-duo DIR. For duo and headkv without scores, per-KV-head scores are computed on the fly
 * from a quick atlas run on needle prompts. `kvReport` is the KV part of a command's --json output:
 * bytes measured from the buffers next to full attention's and the theory.
 *
 * The library names its options (`sink must be …`); errors raised while resolving are given the
 * flag's name here.
 */
import { Option, type Command } from 'commander';
import { HeadwiseError, UsageError } from '../errors.js';
import { checkDuoPatternDir, duoFullHeads, readDuoPattern, writeDuoPattern } from '../atlas/duoPattern.js';
import { readAtlas, kvHeadScores, type AtlasFile, type KvScoreMetric } from '../atlas/file.js';
import { foldToKvHeads, readHeadScores } from '../atlas/headScores.js';
import { computeKvHeadScores } from '../atlas/kvScores.js';
import { cacheSetup, CHUNK_POLICIES, checkPolicyFitsModel, DEFAULT_BUDGET, DEFAULT_CHUNK, DEFAULT_OBSERVE, DEFAULT_SINK, DEFAULT_SIZE_CLASSES, DEFAULT_WINDOW, fullHeadShare, KV_POLICIES, SELECTION_POLICIES, theoreticalKvRatio, type KvPolicyName } from '../kv/policy.js';
import { mixScores } from '../kv/selection.js';
import { kvBytesFull } from '../runtime/generate.js';
import { baseClass } from '../runtime/modelWindow.js';
import type { CacheSetup } from '../runtime/generate.js';
import type { Model } from '../runtime/model.js';
import { floatArg, intArg } from './common.js';

export type KvMetricFlag = KvScoreMetric | 'mix';

export interface KvFlags {
  kv: KvPolicyName;
  sink: number;
  window: number;
  fullHeads: number;
  atlas?: string;
  kvMetric: KvMetricFlag;
  razor?: boolean;
  kvBudget?: number;
  kvChunk?: number;
  kvObserve?: number;
  kvSizeClasses?: number;
  pattern?: string;
  headScores?: string;
  exportDuo?: string;
}

export function kvOptions(cmd: Command): Command {
  return cmd
    .addOption(new Option('--kv <policy>', 'KV cache policy (longheads: chunks picked per head at every decode step, the full KV held; longheads-static: picked once at the end of the prompt, the rest freed)').choices(KV_POLICIES as unknown as string[]).default('full'))
    .option('--sink <n>', 'sink tokens kept by streaming heads (snapkv/headkv/longheads*: by every head)', intArg(0), DEFAULT_SINK)
    .option('--window <n>', 'recent tokens kept by streaming heads (longheads*: the recent tokens whose chunks are always attended)', intArg(1), DEFAULT_WINDOW)
    .option('--full-heads <fraction>', 'duo: share of KV heads that keep the full cache', floatArg(0, 1), 0.25)
    .option('--kv-budget <share>', 'snapkv/headkv/longheads-static: share of full attention\'s KV bytes to hold; longheads: share of the context each decode step attends to', floatArg(0, 1, { exclusiveMin: true }), DEFAULT_BUDGET)
    .option('--kv-chunk <n>', 'longheads/longheads-static: tokens per chunk', intArg(1), DEFAULT_CHUNK)
    .option('--kv-size-classes <n>', 'headkv: budgets in this many size classes of similar scores, the heads of a class in a layer one group (one matmul); the number of KV heads or more: one budget per head', intArg(1), DEFAULT_SIZE_CLASSES)
    .option('--kv-observe <n>', 'snapkv/headkv: observation window (the last prompt tokens whose attention picks the keys; kept)', intArg(1), DEFAULT_OBSERVE)
    .option('--atlas <file>', 'duo/headkv: atlas JSON whose scores choose the full heads / share out the budgets')
    .addOption(new Option('--kv-metric <metric>', 'duo/headkv: score that ranks KV heads (mix: retrieval and streaming harm, each scaled to sum 1)').choices(['retrieval', 'streamingHarm', 'mix']).default('retrieval'))
    .option('--pattern <dir>', 'duo: a DuoAttention pattern folder (full_attention_heads.tsv + config.json) that gives the full heads, sink and recent sizes')
    .option('--head-scores <file>', 'duo/headkv: Retrieval_Head or HeadKV head scores {"L-H": [scores...]} (mean of each list)')
    .option('--export-duo <dir>', 'duo: write the full heads used as a DuoAttention pattern folder')
    .option('--razor', 'streaming/duo: streaming heads keep a compensation token, the mean key and value of what they evicted (RazorAttention)');
}

export interface ResolvedCache {
  setup: CacheSetup;
  describe: Record<string, unknown>;
}

/** Library option → flag, for errors raised by `kv/`. */
const FLAG_OF: Record<string, string> = { observe: '--kv-observe', sink: '--sink', window: '--window', fullHeads: '--full-heads', budget: '--kv-budget', chunk: '--kv-chunk', sizeClasses: '--kv-size-classes', compensate: '--razor', policy: '--kv' };

function withFlagNames<T>(f: () => T): T {
  try {
    return f();
  } catch (e) {
    if (e instanceof HeadwiseError) {
      const m = /^(\w+) (?:[\w-]+ )?(must|applies)/.exec(e.message);
      if (m && FLAG_OF[m[1]]) throw new UsageError(FLAG_OF[m[1]] + e.message.slice(m[1].length));
    }
    throw e;
  }
}

function atlasScores(atlas: AtlasFile, metric: KvMetricFlag, model: Model): number[][] {
  if (metric === 'mix') return mixScores(kvHeadScores(atlas, 'retrieval', model.config), kvHeadScores(atlas, 'streamingHarm', model.config));
  return kvHeadScores(atlas, metric, model.config);
}

async function computedScores(model: Model, metric: KvMetricFlag): Promise<number[][]> {
  if (metric === 'mix') return mixScores(await computeKvHeadScores(model, 'retrieval'), await computeKvHeadScores(model, 'streamingHarm'));
  return computeKvHeadScores(model, metric);
}

export async function resolveCacheSetup(model: Model, flags: KvFlags): Promise<ResolvedCache> {
  const c = model.config;
  let scores: number[][] | undefined;
  let tieBreak: number[][] | undefined;
  let source: string | undefined;
  let fullKvHeads: Set<string> | undefined;
  let sink = flags.sink;
  let window = flags.window;
  if (flags.pattern && flags.kv !== 'duo') throw new UsageError('--pattern applies to --kv duo');
  if (flags.exportDuo && flags.kv !== 'duo') throw new UsageError('--export-duo applies to --kv duo');
  if (flags.headScores && flags.kv !== 'duo' && flags.kv !== 'headkv') throw new UsageError('--head-scores applies to --kv duo or headkv');
  if ([flags.atlas, flags.pattern, flags.headScores].filter(Boolean).length > 1) throw new UsageError('give one of --atlas, --pattern and --head-scores');
  if (flags.razor && flags.kv !== 'streaming' && flags.kv !== 'duo') throw new UsageError('--razor applies to --kv streaming or duo');
  // Before any scores are computed: a selection policy on a model with window layers, an unwritable folder.
  withFlagNames(() => checkPolicyFitsModel(c, flags.kv));
  if (flags.exportDuo) checkDuoPatternDir(flags.exportDuo, '--export-duo');
  if (flags.pattern) {
    const p = readDuoPattern(flags.pattern, c.numLayers, c.numKvHeads);
    // DuoAttention's binarisation: the folder's sparsity, else its threshold, else --full-heads as 1 − sparsity.
    fullKvHeads = duoFullHeads(p.gates, p.sparsity !== null || p.threshold !== null ? p : { sparsity: 1 - flags.fullHeads });
    scores = p.gates;
    sink = p.sinkSize;
    window = p.recentSize;
    source = flags.pattern;
  } else if (flags.kv === 'duo' || flags.kv === 'headkv') {
    if (flags.headScores) {
      scores = foldToKvHeads(readHeadScores(flags.headScores, c.numLayers, c.numHeads), c.numKvHeads);
      source = flags.headScores;
    } else if (flags.atlas) {
      const atlas = readAtlas(flags.atlas, c);
      scores = atlasScores(atlas, flags.kvMetric, model);
      // Heads tied on one metric (most score exactly 0 on retrieval) are ordered by the other, if the atlas has it.
      const other: KvScoreMetric = flags.kvMetric === 'retrieval' ? 'streamingHarm' : 'retrieval';
      if (flags.kv === 'duo' && flags.kvMetric !== 'mix' && atlas.metrics[other]) tieBreak = kvHeadScores(atlas, other, c);
      source = flags.atlas;
    } else {
      scores = await computedScores(model, flags.kvMetric);
      source = 'computed (16 needle prompts)';
    }
  }
  const setup = withFlagNames(() => cacheSetup(c, {
    policy: flags.kv,
    sink,
    window,
    fullHeads: flags.fullHeads,
    kvHeadScores: scores,
    kvHeadTieBreak: tieBreak,
    fullKvHeads,
    compensate: flags.razor,
    budget: flags.kvBudget,
    chunk: flags.kvChunk,
    observe: flags.kvObserve,
    sizeClasses: flags.kvSizeClasses,
  }));
  const describe: Record<string, unknown> = { policy: flags.kv };
  if (flags.kv !== 'full') Object.assign(describe, { sink, window, razor: !!flags.razor });
  if (SELECTION_POLICIES.includes(flags.kv)) Object.assign(describe, { budget: flags.kvBudget ?? DEFAULT_BUDGET });
  if (CHUNK_POLICIES.includes(flags.kv)) Object.assign(describe, { chunk: flags.kvChunk ?? DEFAULT_CHUNK });
  if (flags.kv === 'snapkv' || flags.kv === 'headkv') Object.assign(describe, { observe: flags.kvObserve ?? DEFAULT_OBSERVE });
  if (flags.kv === 'headkv') Object.assign(describe, { sizeClasses: flags.kvSizeClasses ?? DEFAULT_SIZE_CLASSES });
  if (flags.kv === 'headkv') Object.assign(describe, { metric: flags.headScores ? 'file' : flags.kvMetric, source });
  if (flags.kv === 'duo') {
    const full = setup.layout.map((groups) => groups.filter((g) => baseClass(g.cacheClass) === 'full').flatMap((g) => g.kvHeads));
    Object.assign(describe, { fullHeads: fullKvHeads ? fullKvHeads.size / (c.numLayers * c.numKvHeads) : flags.fullHeads, metric: flags.pattern ? 'pattern' : flags.headScores ? 'file' : flags.kvMetric, source, fullKvHeads: full });
    if (flags.exportDuo) {
      const set = new Set(full.flatMap((heads, l) => heads.map((g) => `${l}:${g}`)));
      writeDuoPattern(flags.exportDuo, { full: set, scores, layers: c.numLayers, kvHeads: c.numKvHeads, sink, recent: window, provenance: { tool: 'headwise', model: model.name, metric: describe.metric, source, fullHeads: describe.fullHeads } });
      describe.exportedDuo = flags.exportDuo;
    }
  }
  return { setup, describe };
}

export interface KvReport {
  /** Bytes allocated by the KV buffers at the end of the run (measured). */
  kvBytes: number;
  /** What full attention would hold for the same tokens. */
  kvBytesFull: number;
  kvRatio: number;
  /** r + (1 − r)(S + W)/N for this setup's share r of full KV heads at N tokens; the budget for selection policies. */
  kvRatioTheoretical: number;
  /** Policies that attend to part of what they hold (`longheads`): bytes the last decode step read, and their share of full attention's. */
  kvBytesAttended?: number;
  kvAttendedRatio?: number;
}

/** The KV numbers a command prints with --json, for a run that held `tokens` tokens. */
export function kvReport(model: Model, flags: Pick<KvFlags, 'sink' | 'window' | 'razor' | 'kv' | 'kvBudget'>, setup: CacheSetup, kvBytes: number, tokens: number, fullBytes = kvBytesFull(model, tokens), attended?: { bytes?: number; ratio?: number }): KvReport {
  const r = fullHeadShare(setup);
  const steps = [...setup.policies.values()].some((p) => p.kind === 'step');
  // A step policy holds everything (its budget is what a step reads).
  const theory = steps ? 1 : setup.selection ? Math.min(1, flags.kvBudget ?? DEFAULT_BUDGET) : r === 1 ? 1 : theoreticalKvRatio(r, flags.sink, flags.window, tokens, !!flags.razor);
  const report: KvReport = {
    kvBytes,
    kvBytesFull: fullBytes,
    kvRatio: fullBytes ? kvBytes / fullBytes : 0,
    kvRatioTheoretical: theory,
  };
  if (steps && attended?.bytes !== undefined) Object.assign(report, { kvBytesAttended: attended.bytes, kvAttendedRatio: fullBytes ? attended.bytes / fullBytes : 0 });
  if (steps && attended?.ratio !== undefined) report.kvAttendedRatio = attended.ratio;
  return report;
}
