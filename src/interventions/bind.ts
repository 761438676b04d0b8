/**
 * Binding a spec to one prompt on one model, ready for the runtime: PASTA's text spans become token
 * spans (through the tokenizer's character offsets), the spec is lowered (`lower.ts`), ACT's hidden-sink
 * masks are found on the prompt's own attention, and the result is the `HookOptions` the graph must be
 * compiled with plus the `HookProvider` that feeds it. The same binding serves prefill and every decode
 * step (positions are absolute, so highlighted spans and sink masks stay put as tokens are generated).
 * Running prompts is the caller's (runtime/forward.ts, runtime/generate.ts); where mean head outputs come
 * from is `means.ts`'s.
 *
 * ACT's sinks are a property of the prompt's attention: `bindIntervention` runs the prompt once with the
 * spec's other interventions in place and ACT off, capturing the ACT layers' attention, and keeps, per
 * ACT head, keys k > 0 whose mean received attention over the prompt's queries exceeds τ — exactly
 * `actMask` (reference.ts) on the full prompt pattern, accumulated chunk by chunk so no T×T matrix is held.
 */

import { HeadwiseError } from '../errors.js';
import { NO_HOOKS, type HookOptions } from '../graph/hooks.js';
import type { HfTokenizer } from '../hf/tokenizer.js';
import { forward, newCache, type HookProvider } from '../runtime/forward.js';
import { DEFAULT_PREFILL_CHUNK, fullCache, type CacheSetup } from '../runtime/generate.js';
import type { Model } from '../runtime/model.js';
import { hookProvider, lowerSpec, type HeadHookParams } from './lower.js';
import { resolveSpans, type TokenOffsets } from './spans.js';
import type { InterventionSpec, ModelShape } from './spec.js';

/** A spec bound to a prompt: what to compile and what to feed. */
export interface BoundIntervention {
  /** The spec with every PASTA span as token positions of this prompt. */
  readonly spec: InterventionSpec;
  readonly lowered: HeadHookParams;
  /** The hook points the spec needs (merge with capture options via `mergeHookOptions`). */
  readonly hookOptions: HookOptions;
  /** Feeds the hook points, in prefill and decode alike. */
  readonly hooks: HookProvider;
  /** ACT: per head `"layer:head"`, the 0/1 sink mask over the prompt's key positions. */
  readonly actMasks: ReadonlyMap<string, Float32Array>;
}

export interface BindOptions {
  /** The prompt text `ids` were encoded from; needed when a PASTA span is given as text or characters. */
  prompt?: string;
  /** Character range of each prompt token in `prompt`; computed with the model's tokenizer when left out. */
  offsets?: TokenOffsets;
  /** Mean head outputs ([layer] → [numHeads·headDim]); needed for `ablate {mode: "mean"}` (see means.ts). */
  means?: readonly Float32Array[];
  /** KV cache for ACT's capture pass (default full attention). */
  cache?: CacheSetup;
  /** Tokens per forward call in ACT's capture pass (default 512). */
  prefillChunk?: number;
}

/** The model's `ModelShape`, which specs are validated against. */
export function modelShape(model: Model): ModelShape {
  const c = model.config;
  return { numLayers: c.numLayers, numHeads: c.numHeads, headDim: c.headDim };
}

/** Whether the spec mean-ablates any head (and so needs mean head outputs to bind). */
export function needsMeans(spec: InterventionSpec): boolean {
  return spec.interventions.some((iv) => iv.op === 'ablate' && iv.params.mode === 'mean');
}

/** The hook points a spec uses: head output hooks for ablate/scale/steer, score bias for PASTA, ACT inputs for ACT. */
export function specHookOptions(spec: InterventionSpec): HookOptions {
  const layersOf = (op: string) => sortedUnique(spec.interventions.filter((iv) => iv.op === op).flatMap((iv) => iv.heads.map((h) => h.layer)));
  return {
    ...NO_HOOKS,
    headHooks: spec.interventions.some((iv) => iv.op === 'ablate' || iv.op === 'scale' || iv.op === 'steer'),
    scoreBias: layersOf('pasta'),
    act: layersOf('act'),
  };
}

/** Union of hook options: a graph with every hook point either asks for. */
export function mergeHookOptions(...all: HookOptions[]): HookOptions {
  return {
    capturePattern: sortedUnique(all.flatMap((h) => h.capturePattern)),
    captureZ: sortedUnique(all.flatMap((h) => h.captureZ)),
    headHooks: all.some((h) => h.headHooks),
    scoreBias: sortedUnique(all.flatMap((h) => h.scoreBias)),
    act: sortedUnique(all.flatMap((h) => h.act)),
  };
}

/**
 * Bind a validated spec to the prompt `ids`. Errors in the spec that only the prompt can reveal (a span
 * text that does not occur, a token span past the end) are `SpecError`s naming the field.
 *
 * @example
 * const ids = model.tokenize(prompt);
 * const bound = await bindIntervention(model, spec, ids, { prompt });
 * await generate(model, ids, { hookOptions: bound.hookOptions, hooks: bound.hooks });
 */
export async function bindIntervention(model: Model, spec: InterventionSpec, ids: readonly number[], options: BindOptions = {}): Promise<BoundIntervention> {
  const shape = modelShape(model);
  const needsText = spec.interventions.some((iv) => iv.op === 'pasta' && iv.params.spans.some((s) => !('tokens' in s)));
  let offsets: TokenOffsets = options.offsets ?? [];
  if (needsText) {
    if (options.prompt === undefined) throw new HeadwiseError('bindIntervention: a PASTA span is given as text or characters, so the prompt text is needed (options.prompt)');
    if (!options.offsets) {
      if (!model.tokenizer) throw new HeadwiseError(`${model.ckpt.dir}: no tokenizer.json, so PASTA text spans cannot be found in the prompt; give token spans`);
      offsets = promptTokenOffsets(model.tokenizer, options.prompt, ids);
    }
  } else if (!options.offsets) {
    offsets = ids.map(() => [0, 0] as const);
  }
  const resolved = resolveSpans(spec, options.prompt ?? '', offsets);
  const lowered = lowerSpec(resolved, shape, { means: options.means, promptTokens: ids.length });
  const hookOptions = specHookOptions(resolved);
  const base = hookProvider(lowered);
  let actMasks = new Map<string, Float32Array>();
  if (lowered.act.length) {
    actMasks = await findActSinks(model, lowered, ids, { ...hookOptions, act: [] }, base, options);
  }
  const hooks: HookProvider = { headScale: base.headScale, headAdd: base.headAdd, scoreBias: base.scoreBias };
  if (lowered.act.length) hooks.act = (layer, heads, keyPositions) => actInputs(lowered, actMasks, layer, heads, keyPositions);
  return Object.freeze({ spec: resolved, lowered, hookOptions, hooks, actMasks });
}

/**
 * Character range, in `prompt`, of each token of `ids = tokenizer.encode(prompt)`: the decoded pieces are
 * matched against the prompt left to right; tokens that add no prompt text (BOS and other special tokens)
 * get an empty range at the current position, and byte-level tokens that share a character (a multi-byte
 * character split across tokens) share its range.
 */
export function promptTokenOffsets(tokenizer: HfTokenizer, prompt: string, ids: readonly number[]): Array<[number, number]> {
  const decoded = tokenizer.decode([...ids], false);
  const spans = tokenizer.offsets([...ids]);
  const out: Array<[number, number]> = [];
  let at = 0;
  let lastEnd = 0; // end of the previous token's span in `decoded`
  spans.forEach(([s, e], i) => {
    if (i > 0 && e > s && s < lastEnd && out[i - 1][1] > out[i - 1][0]) {
      out.push([...out[i - 1]]); // completes the character the previous token began
    } else {
      let piece = decoded.slice(s, e);
      // Metaspace-style decoders may drop or add a leading space on a token of its own.
      if (piece !== '' && !prompt.startsWith(piece, at) && prompt.startsWith(piece.trimStart(), at)) piece = piece.trimStart();
      if (piece !== '' && prompt.startsWith(piece, at)) {
        out.push([at, at + piece.length]);
        at += piece.length;
      } else {
        out.push([at, at]);
      }
    }
    lastEnd = Math.max(lastEnd, e);
  });
  return out;
}

// ------------------------------------------------------------------------------------------------ ACT

/** Runs the prompt with ACT off and returns each ACT head's sink mask (`actMask` on the prompt's attention). */
async function findActSinks(
  model: Model,
  lowered: HeadHookParams,
  ids: readonly number[],
  hookOptions: HookOptions,
  hooks: HookProvider,
  options: BindOptions,
): Promise<Map<string, Float32Array>> {
  const T = ids.length;
  const layers = sortedUnique(lowered.act.map((a) => a.layer));
  const setup = options.cache ?? fullCache(model);
  const gs = await model.session(setup.layout, { ...hookOptions, capturePattern: layers });
  const cache = newCache(model, gs, setup.policies);
  cache.reserve(T);
  // Column sums of attention received, per ACT head.
  const received = new Map<string, Float64Array>(lowered.act.map((a) => [`${a.layer}:${a.head}`, new Float64Array(T)]));
  const chunk = options.prefillChunk ?? DEFAULT_PREFILL_CHUNK;
  for (let i = 0; i < T; i += chunk) {
    const part = ids.slice(i, i + chunk);
    const r = await forward(model, gs, cache, [...part], { hooks, captureRows: part.map((_, j) => j), logitsAt: [part.length - 1] });
    for (const p of r.patterns) {
      const K = p.keyPositions.length;
      const rows = p.queryPositions.length;
      p.heads.forEach((head, hi) => {
        const sums = received.get(`${p.layer}:${head}`);
        if (!sums) return;
        const base = hi * rows * K;
        for (let t = 0; t < rows; t++) for (let j = 0; j < K; j++) sums[p.keyPositions[j]] += p.data[base + t * K + j];
      });
    }
  }
  const masks = new Map<string, Float32Array>();
  for (const a of lowered.act) {
    const key = `${a.layer}:${a.head}`;
    const sums = received.get(key)!;
    const mask = new Float32Array(T);
    // As reference.ts `actMask`: key k is seen by the T − k queries t ≥ k; key 0 is never a hidden sink.
    for (let k = 1; k < T; k++) mask[k] = T - k >= a.minQueries && sums[k] / (T - k) > a.tau ? 1 : 0;
    masks.set(key, mask);
  }
  return masks;
}

/** The graph's ACT inputs for some heads of a layer from precomputed sink masks (cf. `buildActInputs`). */
function actInputs(
  lowered: HeadHookParams,
  masks: ReadonlyMap<string, Float32Array>,
  layer: number,
  heads: readonly number[],
  keyPositions: Int32Array,
): { mask: Float32Array; beta: Float32Array } | null {
  const entries = lowered.act.filter((a) => a.layer === layer && heads.includes(a.head));
  if (entries.length === 0) return null;
  const k = keyPositions.length;
  const mask = new Float32Array(heads.length * k);
  const beta = new Float32Array(heads.length).fill(1);
  for (const e of entries) {
    const m = masks.get(`${layer}:${e.head}`)!;
    const row = heads.indexOf(e.head);
    // Keys generated after the prompt are never sinks.
    for (let j = 0; j < k; j++) mask[row * k + j] = keyPositions[j] < m.length ? m[keyPositions[j]] : 0;
    beta[row] = e.beta;
  }
  return { mask, beta };
}

function sortedUnique(xs: number[]): number[] {
  return [...new Set(xs)].sort((a, b) => a - b);
}
