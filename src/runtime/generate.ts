/**
 * Text generation: prefill the prompt in chunks, then decode one token at a time on the KV cache,
 * streaming text as it forms. The cache layout and policies, and any hook inputs, are passed in,
 * so KV policies (`kv/`) and interventions apply identically in prefill and decode.
 */
import { HeadwiseError } from '../errors.js';
import type { HookOptions } from '../graph/hooks.js';
import type { KvLayout } from '../graph/layout.js';
import { disposeDeviceKv } from './deviceKv.js';
import { NO_HOOKS } from '../graph/hooks.js';
import { forward, newCache, type GroupPattern, type HookProvider } from './forward.js';
import { FULL_HISTORY, type KvCache, type ClassPolicy } from './kvCache.js';
import { causalClassesOf, type Model } from './model.js';
import { applyModelWindows } from './modelWindow.js';
import { Sampler, type SamplingOptions } from './sampling.js';
import { stepQueryHooks } from './stepAttention.js';

/** The KV cache a run uses: how heads are grouped, and what each cache class keeps. */
export interface CacheSetup {
  layout: KvLayout;
  policies: Map<string, ClassPolicy>;
  /** Picks each head's rows at the end of the prompt (selection policies, `kv/selection.ts`). */
  selection?: PromptSelection;
}

/**
 * A selection run once the whole prompt is in the cache: the last prefill chunk is run with the
 * attention of its last `observe(promptTokens)` rows captured on every layer, and `select` gets those
 * patterns and picks the rows each head keeps (`KvCache.keepRows`), leaving room for `room` more tokens.
 */
export interface PromptSelection {
  observe(promptTokens: number): number;
  select(cache: KvCache, patterns: GroupPattern[], room: number): void;
}

export function fullCache(model: Model): CacheSetup {
  return applyModelWindows({ layout: model.fullLayout(), policies: new Map<string, ClassPolicy>([['full', FULL_HISTORY]]) }, model.config);
}

/**
 * Tokens per prefill call. Bounds the attention score buffers ([heads, chunk, context] floats per
 * layer) and so peak memory; past ~256 larger chunks gain little speed on CPU.
 */
export const DEFAULT_PREFILL_CHUNK = 256;

export interface GenerateOptions extends SamplingOptions {
  maxNewTokens?: number;
  /** Tokens per prefill call (bounds the size of attention score buffers). */
  prefillChunk?: number;
  cache?: CacheSetup;
  hookOptions?: HookOptions;
  hooks?: HookProvider;
  /** Stop at an end-of-sequence token (default true). */
  stopAtEos?: boolean;
  /** Called with each new token id and the text it completes (may be '' mid-character). */
  onToken?: (id: number, textDelta: string) => void;
}

export interface GenerateResult {
  tokens: number[];
  text: string;
  promptTokens: number;
  /** Bytes held by the KV buffers at the end of the run. */
  kvBytes: number;
  /** What full attention would hold for the same tokens. */
  kvBytesFull: number;
  /**
   * Bytes of the key/value rows the last decode step read (held rows fed + the new token): below
   * `kvBytes` where a policy attends to part of what it holds (`longheads` per step).
   */
  kvBytesAttended: number;
  prefillMs: number;
  decodeMs: number;
  stoppedBy: 'eos' | 'length' | 'context';
}

/** Runs the prompt through the model in chunks; returns the cache and the last position's logits. */
export async function prefill(model: Model, ids: number[], opts: GenerateOptions = {}): Promise<{ cache: KvCache; logits: Float32Array }> {
  if (ids.length === 0) throw new HeadwiseError('prompt is empty');
  if (ids.length > model.config.maxPositions) {
    throw new HeadwiseError(`prompt of ${ids.length} tokens is longer than the model's context of ${model.config.maxPositions} tokens`);
  }
  const setup = opts.cache ?? fullCache(model);
  const gs = await model.session(setup.layout, stepQueryHooks(setup.policies, opts.hookOptions ?? NO_HOOKS, model.config.numLayers), { causalClasses: causalClassesOf(setup.policies) });
  const cache = newCache(model, gs, setup.policies);
  // Room for the prompt and the new tokens that will be fed back (the last one never is) up front: one
  // allocation, no regrowth copies. Never past the model's context; window classes cap it at what
  // they keep (`KvCache.reserve`).
  cache.reserve(Math.min(ids.length + Math.max(0, (opts.maxNewTokens ?? 0) - 1), model.config.maxPositions));
  const chunk = opts.prefillChunk ?? DEFAULT_PREFILL_CHUNK;
  const selection = setup.selection;
  // A selection reads the attention of the prompt's last `observe` rows: before the chunk that holds
  // the first of them, the rest of the prompt is run once more on a graph that captures attention,
  // without committing (a dedicated pass: the cache and logits come from the plain graph, so a
  // selection that keeps everything is bit-identical to full attention).
  const observeFrom = selection ? ids.length - Math.min(ids.length, Math.max(1, selection.observe(ids.length))) : Infinity;
  let patterns: GroupPattern[] = [];
  let logits: Float32Array = new Float32Array(0);
  for (let i = 0; i < ids.length; i += chunk) {
    if (selection && observeFrom < i + chunk && !patterns.length) {
      const hooks = opts.hookOptions ?? NO_HOOKS;
      const observing = await model.session(setup.layout, { ...hooks, capturePattern: Array.from({ length: model.config.numLayers }, (_, l) => l) });
      const rest = ids.slice(i);
      const captureRows = Array.from({ length: ids.length - observeFrom }, (_, k) => observeFrom - i + k);
      patterns = (await forward(model, observing, cache, rest, { hooks: opts.hooks, captureRows, commit: false })).patterns;
    }
    const r = await forward(model, gs, cache, ids.slice(i, i + chunk), { hooks: opts.hooks });
    logits = r.logits;
  }
  if (selection) selection.select(cache, patterns, Math.max(0, Math.min(ids.length + Math.max(0, (opts.maxNewTokens ?? 0) - 1), model.config.maxPositions) - ids.length));
  return { cache, logits };
}

export function kvBytesFull(model: Model, tokens: number): number {
  const c = model.config;
  return 2 * c.numLayers * c.numKvHeads * tokens * c.headDim * 4;
}

export async function generate(model: Model, promptIds: number[], opts: GenerateOptions = {}): Promise<GenerateResult> {
  const maxNew = opts.maxNewTokens ?? 32;
  const t0 = performance.now();
  const { cache, logits } = await prefill(model, promptIds, opts);
  const t1 = performance.now();
  const gs = await model.session(cache.layout, stepQueryHooks(cache.policies, opts.hookOptions ?? NO_HOOKS, model.config.numLayers), { causalClasses: causalClassesOf(cache.policies) });
  const sampler = new Sampler(opts);
  const eos = new Set(model.config.eosTokenIds);
  const tokens: number[] = [];
  let text = '';
  let stoppedBy: GenerateResult['stoppedBy'] = 'length';
  let next = sampler.next(logits);
  for (let step = 0; step < maxNew; step++) {
    if ((opts.stopAtEos ?? true) && eos.has(next)) {
      stoppedBy = 'eos';
      break;
    }
    tokens.push(next);
    if (model.tokenizer) {
      const full = model.tokenizer.decode(tokens);
      const delta = full.endsWith('\uFFFD') ? '' : full.slice(text.length);
      if (delta) text += delta;
      opts.onToken?.(next, delta);
    } else {
      opts.onToken?.(next, '');
    }
    if (step === maxNew - 1) break;
    if (cache.seen >= model.config.maxPositions) {
      stoppedBy = 'context';
      break;
    }
    const r = await forward(model, gs, cache, [next], { hooks: opts.hooks });
    next = sampler.next(r.logits);
  }
  if (model.tokenizer) text = model.tokenizer.decode(tokens);
  const kvBytes = cache.kvBytes;
  const kvBytesAttended = cache.kvBytesAttended;
  disposeDeviceKv(cache);
  return {
    tokens,
    text,
    promptTokens: promptIds.length,
    kvBytes,
    kvBytesFull: kvBytesFull(model, cache.seen),
    kvBytesAttended,
    prefillMs: t1 - t0,
    decodeMs: performance.now() - t1,
    stoppedBy,
  };
}
