/**
 * Runs needle-in-a-haystack samples through a model (methods.md §4): prefill the prompt with the given
 * KV cache setup and hooks (a KV policy, an intervention, ablated heads), decode greedily, score the
 * value by exact match, and put the outcomes into the context × depth grid. Decoding stops as soon as
 * the first number of the answer is settled (`answer.ts`), at EOS, or after `maxNewTokens`.
 *
 * KV memory is measured from the real cache buffers at the end of each sample: `kvBytes` is what the
 * buffers allocate, `kvBytesHeld` what the tokens they hold take, and `kvBytesFull` what full attention
 * holds for the same tokens; the result reports the mean of each over the samples.
 *
 * Unlike the rest of `eval/` (pure), this file runs a model; the atlas (`atlas/`), the CLI and the web
 * app call it.
 */
import type { HookOptions } from '../graph/hooks.js';
import { forward, type HookProvider } from '../runtime/forward.js';
import { fullCache, kvBytesFull, prefill, type CacheSetup } from '../runtime/generate.js';
import { withBound, type HookBinder } from '../runtime/hookSet.js';
import type { Model } from '../runtime/model.js';
import { answerVerdict, finalVerdict } from './answer.js';
import { niahAccuracy, type NiahAccuracy } from './grid.js';
import type { NiahItem } from './niahSet.js';

export interface NiahRunOptions {
  cache?: CacheSetup;
  hookOptions?: HookOptions;
  hooks?: HookProvider;
  /** Hooks bound to each prompt (an intervention with prompt spans), applied before `hooks`. */
  bindHooks?: HookBinder;
  /** Most tokens to decode per sample (default 12). */
  maxNewTokens?: number;
  prefillChunk?: number;
  onProgress?: (p: NiahProgress) => void;
}

export interface NiahProgress {
  done: number;
  total: number;
  correct: number;
}

export interface NiahOutcomeDetail {
  contextTokens: number;
  depth: number;
  variant: string;
  value: string;
  /** What the model answered (decoded greedy tokens). */
  text: string;
  correct: boolean;
  promptTokens: number;
  kvBytes: number;
  kvBytesHeld: number;
  kvBytesFull: number;
}

export interface NiahRunResult {
  /** Share of samples answered with the exact value. */
  accuracy: number;
  samples: number;
  grid: NiahAccuracy;
  /** Mean over samples (rounded to a byte) of the bytes the KV buffers allocate at the end of the sample. */
  kvBytes: number;
  /** Mean over samples of the bytes taken by the tokens the cache holds. */
  kvBytesHeld: number;
  /** Mean over samples of what full attention would hold for the same tokens. */
  kvBytesFull: number;
  outcomes: NiahOutcomeDetail[];
}

function argmax(x: Float32Array, from: number, n: number): number {
  let best = 0;
  for (let i = 1; i < n; i++) if (x[from + i] > x[from + best]) best = i;
  return best;
}

/** Greedy answer to one sample. */
export async function answerSample(model: Model, item: NiahItem, opts: NiahRunOptions = {}): Promise<NiahOutcomeDetail> {
  const maxNew = opts.maxNewTokens ?? 12;
  const { sample } = item;
  const setup = opts.cache ?? fullCache(model);
  const bound = opts.bindHooks ? await opts.bindHooks(sample.inputIds, sample.prompt) : null;
  const { hookOptions, hooks } = withBound(bound, opts.hookOptions, opts.hooks);
  const gen = { cache: setup, hookOptions, hooks, maxNewTokens: maxNew, prefillChunk: opts.prefillChunk };
  const { cache, logits } = await prefill(model, sample.inputIds, gen);
  const gs = await model.session(setup.layout, hookOptions);
  const eos = new Set(model.config.eosTokenIds);
  const V = model.config.vocabSize;
  const tokens: number[] = [];
  let text = '';
  let next = argmax(logits, 0, V);
  for (let step = 0; step < maxNew && !eos.has(next); step++) {
    tokens.push(next);
    text = model.tokenizer ? model.tokenizer.decode(tokens) : '';
    if (answerVerdict(text, sample.value) !== 'open' || step === maxNew - 1 || cache.seen >= model.config.maxPositions) break;
    const r = await forward(model, gs, cache, [next], { hooks });
    next = argmax(r.logits, 0, V);
  }
  return {
    contextTokens: item.contextTokens,
    depth: item.depth,
    variant: sample.variant,
    value: sample.value,
    text,
    correct: finalVerdict(text, sample.value) === 'correct',
    promptTokens: sample.inputIds.length,
    kvBytes: cache.kvBytes,
    kvBytesHeld: cache.kvBytesUsed,
    kvBytesFull: kvBytesFull(model, cache.seen),
  };
}

/** Runs every sample; accuracy overall and per (context length, depth) cell. */
export async function runNiah(model: Model, items: NiahItem[], opts: NiahRunOptions = {}): Promise<NiahRunResult> {
  const outcomes: NiahOutcomeDetail[] = [];
  let correct = 0;
  for (const item of items) {
    const o = await answerSample(model, item, opts);
    outcomes.push(o);
    if (o.correct) correct++;
    opts.onProgress?.({ done: outcomes.length, total: items.length, correct });
  }
  return summarizeNiah(outcomes);
}

/** Accuracy, grid and mean KV bytes of scored samples. */
export function summarizeNiah(outcomes: NiahOutcomeDetail[]): NiahRunResult {
  const mean = (f: (o: NiahOutcomeDetail) => number) => (outcomes.length ? Math.round(outcomes.reduce((s, o) => s + f(o), 0) / outcomes.length) : NaN);
  const grid = niahAccuracy(outcomes);
  return {
    accuracy: grid.overall,
    samples: outcomes.length,
    grid,
    kvBytes: mean((o) => o.kvBytes),
    kvBytesHeld: mean((o) => o.kvBytesHeld),
    kvBytesFull: mean((o) => o.kvBytesFull),
    outcomes,
  };
}
