/**
 * Attention patterns of prompts up to the model's whole context, binned (`patternBins.ts`): one head
 * over a window of queries × keys (the head view, its zoom and the compare view), or every head of
 * every layer as small thumbnails (the model view). The prompt is prefilled in chunks whose captured
 * rows are folded into the bins at once, so memory stays at one chunk's rows × keys × captured heads
 * however long the prompt; only the rows inside the window (and the one query row asked for) are
 * captured. An intervention spec, when given, runs on the same pass (the "with" side of a compare).
 */
import { NO_HOOKS, type HookOptions } from '../graph/hooks.js';
import { forward, newCache, type HookProvider } from '../runtime/forward.js';
import { disposeDeviceKv } from '../runtime/deviceKv.js';
import { fullCache } from '../runtime/generate.js';
import type { Model } from '../runtime/model.js';
import { bindIntervention, mergeHookOptions, needsMeans } from '../interventions/bind.js';
import { cachedHeadMeans, defaultMeanPrompts } from '../interventions/means.js';
import type { InterventionSpec } from '../interventions/spec.js';
import { PatternBinner, type PatternWindow } from './patternBins.js';

/** Most captured floats per prefill call (64 MB): bounds the chunk when many heads are captured. */
const MAX_CAPTURE_FLOATS = 16 * 1024 * 1024;
/** Largest chunk of prompt rows per call. */
const MAX_CHUNK = 256;

export interface BinnedHeadRequest {
  layer: number;
  head: number;
  window: PatternWindow;
  bins: number;
  /** Absolute position whose exact row is returned as well, or -1. */
  query: number;
}

/** Runs the prompt once and bins the attention of each requested head. */
export async function binnedPatterns(
  model: Model,
  ids: number[],
  requests: BinnedHeadRequest[],
  opts: { spec?: InterventionSpec | null; prompt?: string } = {},
): Promise<PatternBinner[]> {
  const c = model.config;
  const layers = [...new Set(requests.map((r) => r.layer))].sort((a, b) => a - b);
  let hookOptions: HookOptions = { ...NO_HOOKS, capturePattern: layers };
  let hooks: HookProvider | undefined;
  if (opts.spec && opts.spec.interventions.length > 0) {
    const means = needsMeans(opts.spec) ? await cachedHeadMeans(model, defaultMeanPrompts(model.tokenizer!)) : undefined;
    const bound = await bindIntervention(model, opts.spec, ids, { prompt: opts.prompt, means });
    hookOptions = mergeHookOptions(bound.hookOptions, hookOptions);
    hooks = bound.hooks;
  }
  const setup = fullCache(model);
  const gs = await model.session(setup.layout, hookOptions);
  const cache = newCache(model, gs, setup.policies);
  cache.reserve(ids.length);
  const binners = requests.map((r) => new PatternBinner(r.window, r.bins, r.query, ids.length));
  // Captures hold every query head of each captured layer: size the chunk so they stay bounded.
  const capturedHeads = layers.length * c.numHeads;
  const chunk = Math.max(1, Math.min(MAX_CHUNK, Math.floor(MAX_CAPTURE_FLOATS / (capturedHeads * ids.length))));
  try {
    for (let start = 0; start < ids.length; start += chunk) {
      const part = ids.slice(start, start + chunk);
      const rows = part.map((_, i) => i).filter((i) => binners.some((b) => b.wants(start + i)));
      // A capture of zero rows is not a valid graph input: capture one and ignore it.
      const r = await forward(model, gs, cache, part, { captureRows: rows.length ? rows : [0], hooks, logitsAt: [part.length - 1] });
      if (rows.length === 0) continue;
      requests.forEach((req, i) => {
        const group = r.patterns.find((p) => p.layer === req.layer && p.heads.includes(req.head));
        if (!group) throw new Error(`no captured pattern for ${req.layer}:${req.head}`);
        binners[i].add(group.data, group.heads.indexOf(req.head), group.queryPositions, group.keyPositions);
      });
    }
  } finally {
    disposeDeviceKv(cache);
  }
  return binners;
}
