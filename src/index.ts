/**
 * headwise as a library: load a Hugging Face checkpoint, run a prompt with interventions on heads and
 * get logits, attention captures and text — what the CLI does, from TypeScript. This file is a small
 * facade over `runtime/` (running), `interventions/` (specs, binding, means, steer-profile) and `kv/`
 * (cache policies), and re-exports their main types; reach into those folders for more control.
 *
 * @example
 * import { defaultModel, loadModel, run, generate } from 'headwise';
 * const model = await loadModel(defaultModel); // the bundled ref-llama-7m, from any directory
 * const r = await run(model, 'The pass key is 4821. ... What is the pass key? The pass key is', {
 *   interventions: [{ op: 'ablate', heads: ['5:3', '5:1'] }],
 *   capture: { layers: [5], rows: 'last' },
 *   maxNewTokens: 8,
 * });
 * r.logits;                // [1, vocab] next-token logits at the last prompt position
 * r.pattern(5, 3).data;   // layer 5, head 3: attention of the last row over every key
 * r.text;                  // the greedy continuation, with the heads ablated
 * await model.dispose();
 */

import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { HeadwiseError } from './errors.js';
import { NO_HOOKS, type HookOptions } from './graph/hooks.js';
import type { WeightOptions } from './graph/quant.js';
import {
  bindIntervention,
  defaultHeadMeans,
  describe,
  mergeHookOptions,
  modelShape,
  needsMeans,
  parseInterventionSpec,
  type BoundIntervention,
  type InterventionSpec,
  type InterventionSpecInput,
} from './interventions/index.js';
import { cacheSetup, type KvPolicyOptions } from './kv/policy.js';
import { forward, newCache } from './runtime/forward.js';
import { stepQueryHooks } from './runtime/stepAttention.js';
import { fullCache, generate as runtimeGenerate, type CacheSetup, type GenerateResult } from './runtime/generate.js';
import { Model } from './runtime/model.js';
import type { Device } from './runtime/ort.js';
import { Sampler, type SamplingOptions } from './runtime/sampling.js';

export { HeadwiseError, UsageError } from './errors.js';
export { Model } from './runtime/model.js';
export { weightOptions, WEIGHT_FORMATS, type WeightFormat, type WeightOptions } from './graph/quant.js';
export type { Device } from './runtime/ort.js';
export type { HeadId, AttentionMatrix } from './runtime/capture.js';
export type { GenerateResult, CacheSetup } from './runtime/generate.js';
export type { SamplingOptions } from './runtime/sampling.js';
export type { KvPolicyOptions, KvPolicyName } from './kv/policy.js';
export type { HookOptions, HookName, BlockHookPoint } from './graph/hooks.js';
export { CAPTURE_POINTS, blockHook } from './graph/hooks.js';
// Research verbs: cache every hook point, patch activations between runs, attribute the logit to heads.
export { runWithCache, ActivationCache, type RunWithCacheOptions, type Tensor } from './runtime/activationCache.js';
export { runWithHooks, type ResidualHook, type RunWithHooksOptions, type HookedRunResult } from './runtime/runWithHooks.js';
export * from './patching/index.js';
// The atlas and the needle-in-a-haystack evaluation, as the CLI runs them.
export { runAtlas, validateAtlas, writeAtlas, readAtlas, writeReport, type AtlasOptions, type AtlasFile } from './atlas/index.js';
export { writePatchReport, patchReportHtml } from './atlas/patchReport.js';
export { niahSamples, loadHaystack, generateNeedleSample, passKeyPair, type NiahSetSpec, type NiahItem, type NeedleSample, type PassKeyPair } from './eval/index.js';
export { runNiah, type NiahRunOptions, type NiahRunResult } from './eval/niahRun.js';
export {
  parseInterventionSpec,
  parseHeadList,
  combine,
  removeIntervention,
  describe,
  specToJson,
  SpecError,
  bindIntervention,
  headMeans,
  defaultHeadMeans,
  steerProfile,
  steerProfileSpec,
  conflictingTasks,
  followRate,
  highlightSpec,
} from './interventions/index.js';
export type {
  InterventionSpec,
  InterventionSpecInput,
  InterventionInput,
  HeadRefInput,
  HeadsInput,
  SpanInput,
  Intervention,
  InterventionOp,
  SpanRef,
  BoundIntervention,
  HeadMeans,
  SteerProfile,
  HeadSteerScore,
  FollowRate,
} from './interventions/index.js';

export interface LoadOptions {
  /** Where ONNX Runtime computes (default `cpu`). */
  device?: Device;
  /** CPU threads (default: all cores). */
  threads?: number;
  /** Linear-layer weight format, e.g. `weightOptions('q4')` (default float32). */
  weights?: WeightOptions;
}

/**
 * The bundled ref-llama-7m's folder, resolved from the package root, so `loadModel(defaultModel)` works
 * from any working directory.
 */
export const defaultModel: string = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', 'models', 'ref-llama-7m');

/** Opens a Hugging Face model folder (config.json, *.safetensors, tokenizer.json). Call `dispose()` when done. */
export function loadModel(dir: string, options: LoadOptions = {}): Promise<Model> {
  return Model.load(dir, options);
}

/**
 * Interventions as a caller may give them: a typed spec (`InterventionSpecInput`, which a validated
 * `InterventionSpec` also is) or spec JSON text. Untyped JSON (`unknown`) goes through
 * `interventionSpec(model, json)` first.
 */
export type InterventionsInput = InterventionSpecInput | string;

interface CommonOptions {
  /** Interventions to apply, in prefill and decode (see `interventions/spec.ts` for the format). */
  interventions?: InterventionsInput;
  /** Mean head outputs for `ablate {mode: "mean"}` (default: computed once over haystack windows and cached). */
  means?: Float32Array[];
  /** KV cache policy (default full attention), e.g. `{policy: 'streaming', sink: 4, window: 64}`. */
  kv?: KvPolicyOptions;
}

export interface RunOptions extends CommonOptions, SamplingOptions {
  /** Attention and head-output captures. */
  capture?: {
    /** Layers whose attention patterns are captured (`'all'` for every layer). */
    layers?: number[] | 'all';
    /** Query rows (token indices of the prompt) to capture: `'last'` (default), `'all'`, or a list. */
    rows?: number[] | 'last' | 'all';
    /** Layers whose per-head outputs (hook_z, after interventions) are returned. */
    z?: number[] | 'all';
  };
  /** Prompt positions whose next-token logits are returned: `'last'` (default), `'all'`, or a list. */
  logitsAt?: number[] | 'last' | 'all';
  /** Tokens to generate after the prompt (default 0: no text). */
  maxNewTokens?: number;
  /** Stop generating at an end-of-sequence token (default true). */
  stopAtEos?: boolean;
}

/** Attention of one head over the captured rows. */
export interface HeadPattern {
  layer: number;
  head: number;
  /** Absolute positions of the rows. */
  queryPositions: Int32Array;
  /** Absolute positions of the columns (every key the head could see). */
  keyPositions: Int32Array;
  /** [rows, keys] row-major. */
  data: Float32Array;
}

export interface RunResult {
  /** The prompt's token ids (BOS included). */
  ids: number[];
  /** [logitsAt.length, vocab] */
  logits: Float32Array;
  logitsAt: number[];
  vocab: number;
  /**
   * The captured attention of one head: `r.pattern(6, 6)`. Throws a `HeadwiseError` naming the layers
   * captured when (layer, head) was not.
   */
  pattern(layer: number, head: number): HeadPattern;
  /** Every captured head's pattern, sorted by (layer, head); prefer `pattern(layer, head)`. */
  patterns: HeadPattern[];
  /** [layer] → [prompt tokens, heads, headDim] per-head outputs, for the layers asked for. */
  z: Map<number, Float32Array>;
  /** One line per intervention applied (`describe`). */
  interventions: string[];
  /** With `maxNewTokens`: the generated tokens and their text. */
  tokens?: number[];
  text?: string;
}

/**
 * Runs a prompt (text, or token ids) through the model with interventions, returning logits, attention
 * patterns and head outputs of the prompt, and — with `maxNewTokens` — the continuation.
 */
export async function run(model: Model, prompt: string | number[], options: RunOptions = {}): Promise<RunResult> {
  const c = model.config;
  const { ids, text } = promptIds(model, prompt);
  const T = ids.length;
  const setup = cacheOf(model, options.kv);
  const bound = await bindInputs(model, options, ids, text, setup);
  const all = Array.from({ length: c.numLayers }, (_, l) => l);
  const layers = options.capture?.layers === 'all' ? all : (options.capture?.layers ?? []);
  const zLayers = options.capture?.z === 'all' ? all : (options.capture?.z ?? []);
  for (const l of [...layers, ...zLayers]) if (!(Number.isInteger(l) && l >= 0 && l < c.numLayers)) throw new HeadwiseError(`capture: layer ${l} is out of range (model has ${c.numLayers} layers)`);
  const rows = positions(options.capture?.rows ?? 'last', T, 'capture.rows');
  const logitsAt = positions(options.logitsAt ?? 'last', T, 'logitsAt');
  const hookOptions: HookOptions = mergeHookOptions(bound?.hookOptions ?? NO_HOOKS, { ...NO_HOOKS, capturePattern: layers, captureZ: zLayers });
  const gs = await model.session(setup.layout, stepQueryHooks(setup.policies, hookOptions, c.numLayers));
  const cache = newCache(model, gs, setup.policies);
  const maxNew = options.maxNewTokens ?? 0;
  cache.reserve(T + maxNew);
  // The last position's logits are needed to continue; ask for them and hand back only what was asked.
  const extra = maxNew > 0 && !logitsAt.includes(T - 1);
  const r = await forward(model, gs, cache, ids, { logitsAt: extra ? [...logitsAt, T - 1] : logitsAt, captureRows: layers.length ? rows : [], hooks: bound?.hooks });
  const V = c.vocabSize;
  const patterns: HeadPattern[] = [];
  for (const p of r.patterns) {
    const K = p.keyPositions.length;
    const n = p.queryPositions.length;
    p.heads.forEach((head, i) => patterns.push({ layer: p.layer, head, queryPositions: p.queryPositions, keyPositions: p.keyPositions, data: p.data.slice(i * n * K, (i + 1) * n * K) }));
  }
  patterns.sort((a, b) => a.layer - b.layer || a.head - b.head);
  const result: RunResult = {
    ids,
    logits: extra ? r.logits.slice(0, logitsAt.length * V) : r.logits,
    logitsAt,
    vocab: r.vocab,
    pattern: patternLookup(patterns, layers),
    patterns,
    z: r.z,
    interventions: bound ? describe(bound.spec).split('\n') : [],
  };
  if (maxNew > 0) {
    // Continue from the prompt's cache with the same hooks.
    const at = extra ? logitsAt.length : logitsAt.indexOf(T - 1);
    const sampler = new Sampler(options);
    let next = sampler.next(r.logits.subarray(at * V, (at + 1) * V));
    const eos = new Set(c.eosTokenIds);
    const tokens: number[] = [];
    for (let step = 0; step < maxNew; step++) {
      if ((options.stopAtEos ?? true) && eos.has(next)) break;
      tokens.push(next);
      if (step === maxNew - 1 || cache.seen >= c.maxPositions) break;
      next = sampler.next((await forward(model, gs, cache, [next], { hooks: bound?.hooks })).logits);
    }
    result.tokens = tokens;
    if (model.tokenizer) result.text = model.tokenizer.decode(tokens);
  }
  return result;
}

export interface GenerateOptions extends CommonOptions, SamplingOptions {
  /** Tokens to generate (default 32). */
  maxNewTokens?: number;
  /** Stop at an end-of-sequence token (default true). */
  stopAtEos?: boolean;
  /** Called with each new token and the text it completes. */
  onToken?: (id: number, textDelta: string) => void;
}

/** Generates a continuation of a prompt (text or ids) with interventions applied in prefill and decode. */
export async function generate(model: Model, prompt: string | number[], options: GenerateOptions = {}): Promise<GenerateResult & { interventions: string[] }> {
  const { ids, text } = promptIds(model, prompt);
  const setup = cacheOf(model, options.kv);
  const bound = await bindInputs(model, options, ids, text, setup);
  const result = await runtimeGenerate(model, ids, { ...options, cache: setup, hookOptions: bound?.hookOptions, hooks: bound?.hooks });
  return { ...result, interventions: bound ? describe(bound.spec).split('\n') : [] };
}

/** Validates interventions given as JSON against the model (a `SpecError` names the bad field). */
export function interventionSpec(model: Model, input: unknown): InterventionSpec {
  return parseInterventionSpec(input, modelShape(model));
}

// ------------------------------------------------------------------------------------------------

function promptIds(model: Model, prompt: string | number[]): { ids: number[]; text?: string } {
  if (typeof prompt === 'string') {
    if (!model.tokenizer) throw new HeadwiseError(`${model.ckpt.dir}: no tokenizer.json; pass token ids instead of text`);
    return { ids: model.tokenize(prompt), text: prompt };
  }
  if (!Array.isArray(prompt) || prompt.length === 0) throw new HeadwiseError('prompt: give text or a non-empty array of token ids');
  return { ids: [...prompt] };
}

function cacheOf(model: Model, kv: KvPolicyOptions | undefined): CacheSetup {
  return kv ? cacheSetup(model.config, kv) : fullCache(model);
}

async function bindInputs(model: Model, options: CommonOptions, ids: number[], text: string | undefined, setup: CacheSetup): Promise<BoundIntervention | null> {
  if (options.interventions === undefined || options.interventions === null) return null;
  // A spec is re-validated against this model: cheap, and catches a spec written for another model.
  const spec = parseInterventionSpec(options.interventions, modelShape(model));
  if (spec.interventions.length === 0) return null;
  const means = options.means ?? (needsMeans(spec) ? await defaultHeadMeans(model) : undefined);
  return bindIntervention(model, spec, ids, { prompt: text, means, cache: setup });
}

function patternLookup(patterns: HeadPattern[], layers: number[]): (layer: number, head: number) => HeadPattern {
  const byHead = new Map(patterns.map((p) => [`${p.layer}:${p.head}`, p]));
  return (layer, head) => {
    const p = byHead.get(`${layer}:${head}`);
    if (!p) throw new HeadwiseError(`pattern(${layer}, ${head}): not captured (capture.layers was ${layers.length ? `[${layers.join(', ')}]` : 'empty'})`);
    return p;
  };
}

function positions(value: number[] | 'last' | 'all', T: number, what: string): number[] {
  if (value === 'last') return [T - 1];
  if (value === 'all') return Array.from({ length: T }, (_, i) => i);
  for (const p of value) if (!(Number.isInteger(p) && p >= 0 && p < T)) throw new HeadwiseError(`${what}: ${p} is not a prompt position (0..${T - 1})`);
  return [...value];
}
