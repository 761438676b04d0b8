/**
 * Head-aware KV cache policies, turned into a cache setup the runtime runs — the one place that
 * decides, per policy, how heads are grouped, which class rule (`classPolicy.ts`) each group follows
 * and, for selection policies, how each head's rows are picked at the end of the prompt
 * (`selection.ts`):
 * - `full`: every head keeps every token;
 * - `streaming` (StreamingLLM): every head keeps `sink` first tokens and the `window` most recent;
 * - `duo` (DuoAttention / RazorAttention style): the KV heads ranked highest by a per-KV-head score
 *   (retrieval score or streaming harm, from an atlas, a pattern folder, or computed on the fly) keep
 *   everything, the rest keep sink + window. Heads are regrouped at compile time so each group is one
 *   dense buffer.
 * - `snapkv`: at the end of the prompt each KV head keeps the sinks, the last `observe` prompt tokens
 *   (its observation window) and the keys those queries attended to most (pooled), `budget` of full
 *   attention's rows in all;
 * - `headkv`: the same selection with a budget per KV head, shared out by a per-KV-head score with
 *   the total fixed, then made one per size class (`sizeClasses` classes of similar scores, each
 *   head getting its class's mean budget, rounded down): the heads of a class in a layer are one
 *   group, holding only their class's rows and attending with one matmul;
 * - `longheads` (LongHeads as the paper runs it): every token stays held; at each decode step each KV
 *   head attends to whole chunks of `chunk` tokens — the first and the last always (the last `window`
 *   tokens' chunks are the "last chunks"), then the chunks whose representative (mean key) scores
 *   highest against the previous token's queries, `budget` of the context in all (`ChunkStepClass`).
 *   A dropped chunk can come back at a later step, so nothing is freed: it saves attention reads,
 *   not memory (`KvCache.kvBytesAttended` against `kvBytes`);
 * - `longheads-static`: the same chunk rule applied once, at the end of the prompt, scored by the last
 *   prompt query, and the other chunks freed (the memory-saving variant).
 * With `compensate`, streaming heads also keep RazorAttention's compensation token (the mean key and
 * value of what they evicted): one more row each.
 *
 * Model sliding windows (a config field that changes the math) are applied through the runtime's
 * `applyModelWindows` (`runtime/modelWindow.ts`), the one hook every setup passes through: window
 * layers' classes become window rules bounded by the model's window. Selection policies are refused
 * on such models (one line naming the policy).
 *
 * Errors name the option (`sink`, `fullHeads`, `budget`), not a CLI flag: the CLI maps them.
 */
import { HeadwiseError } from '../errors.js';
import { groupPastInput, splitLayout, uniformLayout, type KvLayout } from '../graph/layout.js';
import type { ModelConfig } from '../hf/config.js';
import type { CacheSetup } from '../runtime/generate.js';
import type { ClassPolicy } from '../runtime/kvCache.js';
import { applyModelWindows } from '../runtime/modelWindow.js';
import { ChunkStepClass, FULL_HISTORY, SelectClass, WindowClass } from './classPolicy.js';
import { classBudgets, headBudgets, headkvSelection, longheadsSelection, scoreClasses, snapkvSelection } from './selection.js';

export const KV_POLICIES = ['full', 'streaming', 'duo', 'snapkv', 'headkv', 'longheads', 'longheads-static'] as const;
export type KvPolicyName = (typeof KV_POLICIES)[number];
/** Policies that pick rows per head, sized by `budget`: at the end of the prompt (`selection.ts`), or at each step (`longheads`). */
export const SELECTION_POLICIES: readonly KvPolicyName[] = ['snapkv', 'headkv', 'longheads', 'longheads-static'];
/** Policies with chunks (`chunk`). */
export const CHUNK_POLICIES: readonly KvPolicyName[] = ['longheads', 'longheads-static'];

export interface KvPolicyOptions {
  policy: KvPolicyName;
  sink?: number;
  window?: number;
  /** duo: share of KV heads (over all layers) that keep the full cache, 0..1. */
  fullHeads?: number;
  /** duo / headkv: [layer][kvHead] score, higher = more in need of the cache. */
  kvHeadScores?: number[][];
  /** duo: [layer][kvHead] second score that orders heads tied on `kvHeadScores`. */
  kvHeadTieBreak?: number[][];
  /**
   * duo: the full KV heads as given (a DuoAttention pattern folder, `patterns/duo.ts`), instead of
   * ranking `kvHeadScores`.
   */
  fullKvHeads?: Set<string>;
  /**
   * streaming / duo: RazorAttention's compensation token — each streaming head also keeps the mean
   * key and value of the tokens it evicted, as one more row (`runtime/kvCache.ts`).
   */
  compensate?: boolean;
  /**
   * snapkv / headkv / longheads-static: share of full attention's KV rows held (prompt + tokens to
   * come); longheads: share of the context each step attends to. 0..1.
   */
  budget?: number;
  /** snapkv / headkv: the observation window — the last prompt tokens whose attention votes, all kept. */
  observe?: number;
  /** snapkv / headkv: max-pooling kernel over key positions (odd). */
  poolKernel?: number;
  /** longheads / longheads-static: tokens per chunk. */
  /**
   * headkv: size classes of budgets (`DEFAULT_SIZE_CLASSES`); at least the number of KV heads gives
   * every head its own budget (and its own group).
   */
  sizeClasses?: number;
  chunk?: number;
}

export const DEFAULT_SINK = 4;
export const DEFAULT_WINDOW = 64;
export const DEFAULT_BUDGET = 0.3;
/** SnapKV's pooling kernel (its code's default is 5–7; max-pooling keeps a needle's neighbours together). */
export const DEFAULT_POOL_KERNEL = 7;
export const DEFAULT_CHUNK = 16;
/**
 * headkv's size classes: 4 groups at most per layer instead of one per KV head (on the 30M shape at
 * 8K, 64 attention matmuls a step become at most 32).
 */
export const DEFAULT_SIZE_CLASSES = 4;
/**
 * The observation window: 64, the window streaming and duo heads keep (SnapKV's LongBench settings use
 * 32; on ref-llama-30m's needles at 1024 tokens, 96 prompts, 32 gave snapkv 71.9% vs 69.8% and headkv
 * by the mixed score 78.1% either way, and headkv by retrieval reaches duo's 79.2% with 64).
 */
export const DEFAULT_OBSERVE = 64;

/**
 * The KV heads (layer, kvHead) that keep the full cache: the top `round(fraction · total)` by score.
 * Ties (most heads of a model score exactly 0 on retrieval) go to the higher `tieBreak` score when
 * given (e.g. streaming harm), then to the lower layer and head. NaN (not measured) ranks last.
 */
export function chooseFullHeads(scores: number[][], fraction: number, tieBreak?: number[][]): Set<string> {
  const num = (x: number | undefined) => (x === undefined || Number.isNaN(x) ? -Infinity : x);
  const all = scores.flatMap((row, l) => row.map((s, g) => ({ l, g, s: num(s), t: num(tieBreak?.[l]?.[g]) })));
  all.sort((a, b) => b.s - a.s || b.t - a.t || a.l - b.l || a.g - b.g);
  const k = Math.round(fraction * all.length);
  return new Set(all.slice(0, k).map(({ l, g }) => `${l}:${g}`));
}

function checkScores(config: ModelConfig, scores: number[][] | undefined, policy: string): number[][] {
  if (!scores) throw new HeadwiseError(`${policy} needs per-KV-head scores (kvHeadScores): an atlas, a score file, or scores computed on the fly`);
  if (scores.length !== config.numLayers || scores.some((r) => r.length !== config.numKvHeads)) {
    throw new HeadwiseError(`${policy} scores must be ${config.numLayers} layers × ${config.numKvHeads} KV heads`);
  }
  return scores;
}

/**
 * Refuses a selection policy on a model with sliding-window layers: a selection keeps different
 * positions per head, which the model's window would expire at different times (one mask per class).
 */
export function checkPolicyFitsModel(config: ModelConfig, policy: KvPolicyName): void {
  if (!SELECTION_POLICIES.includes(policy)) return;
  const l = config.layerWindows.findIndex((w) => w !== null);
  if (l >= 0) throw new HeadwiseError(`policy ${policy} applies to models without sliding-window layers (layer ${l} has a window of ${config.layerWindows[l]} tokens): use full, streaming or duo`);
}

export function cacheSetup(config: ModelConfig, opts: KvPolicyOptions): CacheSetup {
  checkPolicyFitsModel(config, opts.policy);
  return applyModelWindows(policySetup(config, opts), config);
}

function policySetup(config: ModelConfig, opts: KvPolicyOptions): CacheSetup {
  const sink = opts.sink ?? DEFAULT_SINK;
  const window = opts.window ?? DEFAULT_WINDOW;
  const stream = new WindowClass(sink, window, !!opts.compensate);
  if (opts.compensate && !['streaming', 'duo'].includes(opts.policy)) throw new HeadwiseError(`compensate applies to the streaming and duo policies (got ${opts.policy})`);
  const L = config.numLayers;
  const G = config.numKvHeads;
  switch (opts.policy) {
    case 'full':
      return { layout: uniformLayout(L, G), policies: new Map<string, ClassPolicy>([['full', FULL_HISTORY]]) };
    case 'streaming':
      return { layout: groupPastInput(uniformLayout(L, G, 'stream'), 'stream'), policies: new Map<string, ClassPolicy>([['stream', stream]]) };
    case 'duo': {
      const fraction = opts.fullHeads ?? 0.25;
      if (!(fraction >= 0 && fraction <= 1)) throw new HeadwiseError(`fullHeads must be between 0 and 1 (got ${opts.fullHeads})`);
      let keep = opts.fullKvHeads;
      if (keep) {
        for (const k of keep) {
          const [l, g] = k.split(':').map(Number);
          if (!(l >= 0 && l < L && g >= 0 && g < G)) throw new HeadwiseError(`duo full KV head ${k} is outside the model (${L} layers × ${G} KV heads)`);
        }
      } else {
        keep = chooseFullHeads(checkScores(config, opts.kvHeadScores, 'duo'), fraction, opts.kvHeadTieBreak);
      }
      const full = keep;
      // Streaming groups hold at most sink + window rows: read as one input each (`layout.ts`).
      const layout = groupPastInput(splitLayout(L, G, (l, g) => full.has(`${l}:${g}`)), 'stream');
      return { layout, policies: new Map<string, ClassPolicy>([['full', FULL_HISTORY], ['stream', stream]]) };
    }
    case 'snapkv':
    case 'headkv':
    case 'longheads':
    case 'longheads-static': {
      const budget = opts.budget ?? DEFAULT_BUDGET;
      if (!(budget > 0 && budget <= 1)) throw new HeadwiseError(`budget must be in (0, 1] (got ${opts.budget})`);
      const kernel = opts.poolKernel ?? DEFAULT_POOL_KERNEL;
      if (!Number.isInteger(kernel) || kernel < 1 || kernel % 2 === 0) throw new HeadwiseError(`poolKernel must be an odd positive integer (got ${opts.poolKernel})`);
      const chunk = opts.chunk ?? DEFAULT_CHUNK;
      const observe = opts.observe ?? DEFAULT_OBSERVE;
      if (!Number.isInteger(observe) || observe < 1) throw new HeadwiseError(`observe must be a positive integer (got ${opts.observe})`);
      if (!Number.isInteger(chunk) || chunk < 1) throw new HeadwiseError(`chunk must be a positive integer (got ${opts.chunk})`);
      if (opts.policy === 'headkv' && budget < 1) {
        const scores = checkScores(config, opts.kvHeadScores, 'headkv');
        const sizes = opts.sizeClasses ?? DEFAULT_SIZE_CLASSES;
        if (!Number.isInteger(sizes) || sizes < 1) throw new HeadwiseError(`sizeClasses must be a positive integer (got ${opts.sizeClasses})`);
        // One class per size class; the heads of a class in a layer are one group (one buffer, one matmul).
        const classes = sizes >= L * G ? scores.map((row, l) => row.map((_, g) => l * G + g)) : scoreClasses(scores, sizes);
        const layout: KvLayout = classes.map((row) => [...new Set(row)].sort((a, b) => a - b).map((c) => ({ kvHeads: row.flatMap((x, g) => (x === c ? [g] : [])), cacheClass: `sel.${c}` })));
        const policies = new Map<string, ClassPolicy>(layout.flat().map((gr) => [gr.cacheClass, new SelectClass()]));
        return { layout, policies, selection: headkvSelection({ sink, window: observe, kernel, budgets: (n, room) => classBudgets(headBudgets(scores, budget, n + room, sink + observe + room), classes) }) };
      }
      if (opts.policy === 'longheads') {
        return { layout: uniformLayout(L, G, 'chunks'), policies: new Map<string, ClassPolicy>([['chunks', new ChunkStepClass({ sink, window, chunk, budget })]]) };
      }
      // A budget of 1 holds everything: headkv's heads then all hold the prompt, one group per layer.
      if (opts.policy === 'headkv') checkScores(config, opts.kvHeadScores, 'headkv');
      const layout = uniformLayout(L, G, 'select');
      const policies = new Map<string, ClassPolicy>([['select', new SelectClass()]]);
      const selection = opts.policy !== 'longheads-static' ? snapkvSelection({ sink, window: observe, kernel, budget }) : longheadsSelection({ sink, window, chunk, budget });
      return { layout, policies, selection };
    }
    default:
      throw new HeadwiseError(`unknown KV policy "${opts.policy as string}" (expected one of ${KV_POLICIES.join(', ')})`);
  }
}

/**
 * Theoretical share of full-attention KV bytes kept: r + (1 − r)(S + W)/N, capped at 1 per head
 * (S + W + 1 with the compensation token).
 */
export function theoreticalKvRatio(fullShare: number, sink: number, window: number, contextTokens: number, compensate = false): number {
  return fullShare + (1 - fullShare) * Math.min(1, (sink + window + (compensate ? 1 : 0)) / contextTokens);
}

/** Share of KV heads a setup keeps in full-history classes. */
export function fullHeadShare(setup: CacheSetup): number {
  let full = 0;
  let all = 0;
  for (const groups of setup.layout) for (const g of groups) {
    all += g.kvHeads.length;
    if (setup.policies.get(g.cacheClass)?.kind === 'full') full += g.kvHeads.length;
  }
  return all ? full / all : 0;
}
