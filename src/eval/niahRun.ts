/**
 * Runs needle-in-a-haystack samples through a model (methods.md §4): prefill the prompt with the given
 * KV cache setup and hooks (a KV policy, an intervention, ablated heads), decode greedily, score the
 * value by exact match, and put the outcomes into the context × depth grid. Decoding stops as soon as
 * the first number of the answer is settled (`answer.ts`), at EOS, or after `maxNewTokens`.
 *
 * KV memory is measured from the real cache buffers at the end of each sample: `kvBytes` is what the
 * buffers allocate, `kvBytesHeld` what the tokens they hold take, and `kvBytesFull` what full attention
 * holds for the same tokens; the result reports the mean of each over the samples. Where a policy
 * attends to fewer rows than it holds (`longheads` per step), `kvAttendedRatio` is the share of full
 * attention's rows a decode step reads, averaged over the decode steps.
 *
 * Unlike the rest of `eval/` (pure), this file runs a model; the atlas (`atlas/`), the CLI and the web
 * app call it.
 */
import { NO_HOOKS, type HookOptions } from '../graph/hooks.js';
import { disposeDeviceKv } from '../runtime/deviceKv.js';
import { forward, type HookProvider } from '../runtime/forward.js';
import { stepQueryHooks } from '../runtime/stepAttention.js';
import { DEFAULT_PREFILL_CHUNK, fullCache, kvBytesFull, prefill, type CacheSetup } from '../runtime/generate.js';
import { withBound, type HookBinder } from '../runtime/hookSet.js';
import type { Model } from '../runtime/model.js';
import { KvCache } from '../runtime/kvCache.js';
import { answerVerdict, finalVerdict, type AnswerVerdict } from './answer.js';
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
  /**
   * `decode` (default): prefill, then decode token by token. `teacherForced`, with a full cache only:
   * one pass over prompt + answer reads greedy decoding's outcome off the argmaxes (`greedyReadout`),
   * decoding on only when that leaves it open — the same outcome for far fewer graph runs.
   */
  readout?: 'decode' | 'teacherForced';
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
  /** Decode steps: mean of (bytes attended / full attention's at that step); absent without decode steps. */
  kvAttendedRatio?: number;
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
  /** Mean over the samples with decode steps of their `kvAttendedRatio` (absent when none has). */
  kvAttendedRatio?: number;
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
  if (opts.readout === 'teacherForced' && [...setup.policies.values()].every((p) => p.kind === 'full')) {
    return teacherForcedAnswer(model, item, setup, hookOptions, hooks, maxNew, opts.prefillChunk ?? DEFAULT_PREFILL_CHUNK);
  }
  const gen = { cache: setup, hookOptions, hooks, maxNewTokens: maxNew, prefillChunk: opts.prefillChunk };
  const { cache, logits } = await prefill(model, sample.inputIds, gen);
  const gs = await model.session(setup.layout, stepQueryHooks(setup.policies, hookOptions ?? NO_HOOKS, model.config.numLayers));
  const eos = new Set(model.config.eosTokenIds);
  const V = model.config.vocabSize;
  const tokens: number[] = [];
  let text = '';
  let next = argmax(logits, 0, V);
  const attended: number[] = [];
  for (let step = 0; step < maxNew && !eos.has(next); step++) {
    tokens.push(next);
    text = model.tokenizer ? model.tokenizer.decode(tokens) : '';
    if (answerVerdict(text, sample.value) !== 'open' || step === maxNew - 1 || cache.seen >= model.config.maxPositions) break;
    const r = await forward(model, gs, cache, [next], { hooks });
    attended.push(cache.kvBytesAttended / kvBytesFull(model, cache.seen));
    next = argmax(r.logits, 0, V);
  }
  const kv = { kvBytes: cache.kvBytes, kvBytesHeld: cache.kvBytesUsed, kvBytesFull: kvBytesFull(model, cache.seen), ...(attended.length ? { kvAttendedRatio: attended.reduce((a, x) => a + x, 0) / attended.length } : {}) };
  disposeDeviceKv(cache);
  return {
    contextTokens: item.contextTokens,
    depth: item.depth,
    variant: sample.variant,
    value: sample.value,
    text,
    correct: finalVerdict(text, sample.value) === 'correct',
    promptTokens: sample.inputIds.length,
    ...kv,
  };
}

/**
 * Greedy decoding's answer read off teacher-forced argmaxes: `predicted[r]` is the argmax at the step
 * that should emit `answerIds[r]`. Greedy decoding emits the answer tokens up to the first wrong argmax
 * (step `wrong`, −1 if none), then that argmax; `verdict` is `open` when exact match still depends on
 * what comes after (`answer.ts`), and `greedy` holds the tokens known so far.
 */
export function greedyReadout(
  tokenizer: { decode(ids: number[]): string },
  sample: Pick<NiahItem['sample'], 'answerIds' | 'value'>,
  predicted: number[],
  eosTokenIds: number[],
): { text: string; verdict: AnswerVerdict; wrong: number; greedy: number[] } {
  const wrong = predicted.findIndex((p, r) => p !== sample.answerIds[r]);
  if (wrong < 0) {
    const text = tokenizer.decode(sample.answerIds);
    const v = answerVerdict(text, sample.value);
    return { text, verdict: v === 'open' ? finalVerdict(text, sample.value) : v, wrong, greedy: sample.answerIds.slice() };
  }
  if (eosTokenIds.includes(predicted[wrong])) {
    const text = tokenizer.decode(sample.answerIds.slice(0, wrong));
    return { text, verdict: finalVerdict(text, sample.value), wrong, greedy: sample.answerIds.slice(0, wrong) };
  }
  const greedy = [...sample.answerIds.slice(0, wrong), predicted[wrong]];
  const text = tokenizer.decode(greedy);
  return { text, verdict: answerVerdict(text, sample.value), wrong, greedy };
}

/**
 * Greedy decoding on from `cache`: `feed` brings the cache to the step that predicted the last of
 * `greedy`'s tokens; decoding continues until exact match is settled, EOS, or `maxNewTokens` tokens.
 */
export async function decodeOn(
  model: Model,
  cache: KvCache,
  feed: number[],
  greedy: number[],
  value: string,
  hookOptions: HookOptions | undefined,
  hooks: HookProvider | undefined,
  maxNewTokens = 12,
): Promise<{ text: string; verdict: 'correct' | 'wrong' }> {
  const tok = model.tokenizer!;
  const gs = await model.session(cache.layout, stepQueryHooks(cache.policies, hookOptions ?? NO_HOOKS, model.config.numLayers));
  const V = model.config.vocabSize;
  const eos = new Set(model.config.eosTokenIds);
  if (feed.length) await forward(model, gs, cache, feed, { hooks });
  const tokens = greedy.slice();
  let text = tok.decode(tokens);
  while (tokens.length < maxNewTokens && cache.seen < model.config.maxPositions) {
    const r = await forward(model, gs, cache, [tokens[tokens.length - 1]], { hooks });
    const next = argmax(r.logits, 0, V);
    if (eos.has(next)) break;
    tokens.push(next);
    text = tok.decode(tokens);
    if (answerVerdict(text, value) !== 'open') break;
  }
  return { text, verdict: finalVerdict(text, value) };
}

/** `readout: 'teacherForced'`: one pass over prompt + answer (chunked), decoding on only when needed. */
async function teacherForcedAnswer(
  model: Model,
  item: NiahItem,
  setup: CacheSetup,
  hookOptions: HookOptions | undefined,
  hooks: HookProvider | undefined,
  maxNew: number,
  chunk: number,
): Promise<NiahOutcomeDetail> {
  const { sample } = item;
  const c = model.config;
  const P = sample.inputIds.length;
  const A = sample.answerIds.length;
  const prefix = sample.inputIds.slice(0, P - 1);
  const tail = [sample.inputIds[P - 1], ...sample.answerIds.slice(0, A - 1)];
  const gs = await model.session(setup.layout, stepQueryHooks(setup.policies, hookOptions ?? NO_HOOKS, model.config.numLayers));
  const cache = new KvCache(setup.layout, setup.policies, c.headDim);
  if (model.kvMode === 'append') cache.reserve(P + maxNew);
  let logits: Float32Array = new Float32Array(0);
  for (let from = 0; from < prefix.length; from += chunk) {
    const to = Math.min(prefix.length, from + chunk);
    const last = to === prefix.length;
    const part = last ? [...prefix.slice(from, to), ...tail] : prefix.slice(from, to);
    const r = await forward(model, gs, cache, part, { hooks, commit: !last, logitsAt: last ? tail.map((_, i) => to - from + i) : undefined });
    if (last) logits = r.logits;
  }
  const predicted = tail.map((_, r) => argmax(logits, r * c.vocabSize, c.vocabSize));
  let { text, verdict, wrong, greedy } = greedyReadout(model.tokenizer!, sample, predicted, c.eosTokenIds);
  if (verdict === 'open') {
    ({ text, verdict } = await decodeOn(model, cache, [...prefix.slice(cache.seen), ...tail.slice(0, wrong + 1)], greedy, sample.value, hookOptions, hooks, maxNew));
  }
  disposeDeviceKv(cache);
  const full = kvBytesFull(model, P);
  return {
    contextTokens: item.contextTokens,
    depth: item.depth,
    variant: sample.variant,
    value: sample.value,
    text,
    correct: verdict === 'correct',
    promptTokens: P,
    kvBytes: full,
    kvBytesHeld: full,
    kvBytesFull: full,
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
  const stepped = outcomes.filter((o) => o.kvAttendedRatio !== undefined);
  return {
    accuracy: grid.overall,
    samples: outcomes.length,
    grid,
    kvBytes: mean((o) => o.kvBytes),
    kvBytesHeld: mean((o) => o.kvBytesHeld),
    kvBytesFull: mean((o) => o.kvBytesFull),
    ...(stepped.length ? { kvAttendedRatio: stepped.reduce((a, o) => a + o.kvAttendedRatio!, 0) / stepped.length } : {}),
    outcomes,
  };
}
