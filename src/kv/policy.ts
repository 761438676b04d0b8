/**
 * Head-aware KV cache policies, turned into a cache setup the runtime runs:
 * - `full`: every head keeps every token;
 * - `streaming` (StreamingLLM): every head keeps `sink` first tokens and the `window` most recent;
 * - `duo` (DuoAttention / RazorAttention style): the KV heads ranked highest by a per-KV-head score
 *   (retrieval score or streaming harm, from an atlas or computed on the fly) keep everything, the
 *   rest keep sink + window. Heads are regrouped at compile time so each group is one dense buffer.
 * With `compensate`, streaming heads also keep RazorAttention's compensation token (the mean key and
 * value of what they evicted): one more row each.
 */
import { HeadwiseError } from '../errors.js';
import { groupPastInput, splitLayout, uniformLayout } from '../graph/layout.js';
import type { ModelConfig } from '../hf/config.js';
import type { CacheSetup } from '../runtime/generate.js';
import type { ClassPolicy } from '../runtime/kvCache.js';
import { applyModelWindows } from '../runtime/modelWindow.js';

export const KV_POLICIES = ['full', 'streaming', 'duo'] as const;
export type KvPolicyName = (typeof KV_POLICIES)[number];

export interface KvPolicyOptions {
  policy: KvPolicyName;
  sink?: number;
  window?: number;
  /** duo: share of KV heads (over all layers) that keep the full cache, 0..1. */
  fullHeads?: number;
  /** duo: [layer][kvHead] score, higher = more in need of the full cache. */
  kvHeadScores?: number[][];
  /** duo: [layer][kvHead] second score that orders heads tied on `kvHeadScores`. */
  kvHeadTieBreak?: number[][];
  /**
   * streaming / duo: RazorAttention's compensation token — each streaming head also keeps the mean
   * key and value of the tokens it evicted, as one more row (`runtime/kvCache.ts`).
   */
  compensate?: boolean;
}

export const DEFAULT_SINK = 4;
export const DEFAULT_WINDOW = 64;

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

export function cacheSetup(config: ModelConfig, opts: KvPolicyOptions): CacheSetup {
  return applyModelWindows(policySetup(config, opts), config);
}

function policySetup(config: ModelConfig, opts: KvPolicyOptions): CacheSetup {
  const sink = opts.sink ?? DEFAULT_SINK;
  const window = opts.window ?? DEFAULT_WINDOW;
  if (!Number.isInteger(sink) || sink < 0) throw new HeadwiseError(`--sink must be a non-negative integer (got ${opts.sink})`);
  if (!Number.isInteger(window) || window < 1) throw new HeadwiseError(`--window must be a positive integer (got ${opts.window})`);
  const stream: ClassPolicy = opts.compensate ? { kind: 'window', sink, window, compensate: true } : { kind: 'window', sink, window };
  switch (opts.policy) {
    case 'full':
      return { layout: uniformLayout(config.numLayers, config.numKvHeads), policies: new Map<string, ClassPolicy>([['full', { kind: 'full' }]]) };
    case 'streaming':
      return { layout: groupPastInput(uniformLayout(config.numLayers, config.numKvHeads, 'stream'), 'stream'), policies: new Map<string, ClassPolicy>([['stream', stream]]) };
    case 'duo': {
      const fraction = opts.fullHeads ?? 0.25;
      if (!(fraction >= 0 && fraction <= 1)) throw new HeadwiseError(`--full-heads must be between 0 and 1 (got ${opts.fullHeads})`);
      const scores = opts.kvHeadScores;
      if (!scores) throw new HeadwiseError('duo needs per-KV-head scores: pass --atlas FILE or let headwise compute them');
      if (scores.length !== config.numLayers || scores.some((r) => r.length !== config.numKvHeads)) {
        throw new HeadwiseError(`duo scores must be ${config.numLayers} layers × ${config.numKvHeads} KV heads`);
      }
      const keep = chooseFullHeads(scores, fraction, opts.kvHeadTieBreak);
      // Streaming groups hold at most sink + window rows: read as one input each (`layout.ts`).
      const layout = groupPastInput(splitLayout(config.numLayers, config.numKvHeads, (l, g) => keep.has(`${l}:${g}`)), 'stream');
      return { layout, policies: new Map<string, ClassPolicy>([['full', { kind: 'full' }], ['stream', stream]]) };
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
