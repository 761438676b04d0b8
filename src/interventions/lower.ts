/**
 * Lowering: a validated spec becomes the per-head numbers the ONNX graph's hook points consume — output
 * scale and add before o_proj, PASTA's additive pre-softmax score bias, ACT's post-softmax calibration.
 * This file is the contract between `interventions/` and the graph/runtime; what each number means is
 * defined by `reference.ts`. `hookProvider` serves them to runtime/forward.ts per layer and KV-head group;
 * building the graph and running it is the runtime's business.
 *
 * Output hooks compose in spec order. Each op is an affine map of the head's output, z ↦ s·z + a:
 * ablate zero (0, 0), ablate mean (0, mean), scale (factor, 0), steer (1, α·v). Applying (s₂, a₂) after
 * (s₁, a₁) gives (s₁·s₂, s₂·a₁ + a₂): scales multiply, and a later scale or ablation also acts on what
 * earlier ops added (steer then zero-ablate is zero; zero-ablate then steer is α·v).
 * PASTA biases on one head add up; a head takes at most one ACT calibration.
 */

import type { AttentionMatrix } from '../runtime/capture.js';
import type { HookProvider } from '../runtime/forward.js';
import { actMask, pastaBiasAt } from './reference.js';
import { SpecError, type InterventionSpec, type ModelShape, type SpanRange } from './spec.js';

/** PASTA on one head: key positions outside every span and before `keyEnd` get `logAlpha` added. */
export interface PastaHeadBias {
  readonly layer: number;
  readonly head: number;
  /** ln α, < 0 for α < 1. */
  readonly logAlpha: number;
  /** Highlighted key positions, half-open `[start, end)`, sorted and non-overlapping. */
  readonly keySpans: readonly SpanRange[];
  /** The prompt's token count: keys at or past it (generated tokens) are never biased. */
  readonly keyEnd: number;
}

/**
 * ACT on one head: keys k > 0 with mean received attention > tau, seen by at least minQueries queries,
 * are sinks; their attention × beta (see `actMask`).
 */
export interface ActHeadCalibration {
  readonly layer: number;
  readonly head: number;
  readonly tau: number;
  readonly beta: number;
  readonly minQueries: number;
}

/**
 * What the graph's hook points take, for the whole model. The typed arrays belong to the caller once
 * returned, but are shared by every forward pass that uses them: read, don't write.
 */
export interface HeadHookParams {
  readonly numLayers: number;
  readonly numHeads: number;
  readonly headDim: number;
  /** [layer] → [numHeads]: multiplies head h's output z (before o_proj). 1 where untouched. */
  readonly headScale: Float32Array[];
  /** [layer] → [numHeads·headDim], head-major: added after scaling, z' = headScale·z + headAdd. null for a layer where nothing is added. */
  readonly headAdd: (Float32Array | null)[];
  /** Pre-softmax score bias, one entry per (intervention, head); feed `buildScoreBias` / `buildGroupScoreBias`. */
  readonly pasta: readonly PastaHeadBias[];
  /** Post-softmax calibration, at most one entry per head; feed `buildActInputs`. */
  readonly act: readonly ActHeadCalibration[];
}

export interface LowerOptions {
  /** Mean head outputs, [layer] → [numHeads·headDim] head-major; required when the spec mean-ablates. */
  means?: readonly Float32Array[];
  /** The prompt's token count; required when the spec has PASTA (only prompt keys are down-weighted). */
  promptTokens?: number;
}

/**
 * Lower a validated spec (PASTA spans resolved to tokens with `resolveSpans`) to hook parameters.
 *
 * @example
 * const hooks = lowerSpec(parseInterventionSpec(json, model), model, { promptTokens: 12 });
 * hooks.headScale[4][1] // 0 after `ablate 4:1`
 */
export function lowerSpec(spec: InterventionSpec, model: ModelShape, options: LowerOptions = {}): HeadHookParams {
  const { numLayers, numHeads, headDim } = model;
  const width = numHeads * headDim;
  const headScale = Array.from({ length: numLayers }, () => new Float32Array(numHeads).fill(1));
  // Accumulate the additive part in float64; convert once at the end.
  const adds: (Float64Array | null)[] = Array(numLayers).fill(null);
  const pasta: PastaHeadBias[] = [];
  const act: ActHeadCalibration[] = [];
  const actSetBy = new Map<string, number>();

  spec.interventions.forEach((iv, i) => {
    const path = `interventions[${i}]`;
    iv.heads.forEach(({ layer, head }, j) => {
      if (!(Number.isInteger(layer) && layer >= 0 && layer < numLayers)) {
        throw new SpecError(`${path}.heads[${j}].layer`, `${layer} is out of range (model has ${numLayers} layers)`);
      }
      if (!(Number.isInteger(head) && head >= 0 && head < numHeads)) {
        throw new SpecError(`${path}.heads[${j}].head`, `${head} is out of range (model has ${numHeads} heads per layer)`);
      }
    });

    switch (iv.op) {
      case 'ablate':
      case 'scale':
      case 'steer': {
        if (iv.op === 'steer' && iv.params.vector.length !== headDim) {
          throw new SpecError(`${path}.params.vector`, `has ${iv.params.vector.length} entries, expected ${headDim} (the model's headDim)`);
        }
        for (const { layer, head } of iv.heads) {
          let s: number;
          let a: ArrayLike<number> | null;
          if (iv.op === 'scale') [s, a] = [iv.params.factor, null];
          else if (iv.op === 'steer') [s, a] = [1, iv.params.vector.map((x) => iv.params.alpha * x)];
          else if (iv.params.mode === 'zero') [s, a] = [0, null];
          else [s, a] = [0, meanOf(options.means, layer, head, model, `${path} (ablate mean on ${layer}:${head})`)];
          headScale[layer][head] *= s;
          const base = head * headDim;
          if (adds[layer]) for (let d = 0; d < headDim; d++) adds[layer]![base + d] *= s;
          if (a) {
            const add = (adds[layer] ??= new Float64Array(width));
            for (let d = 0; d < headDim; d++) add[base + d] += a[d];
          }
        }
        break;
      }
      case 'pasta': {
        const keyEnd = options.promptTokens;
        if (keyEnd === undefined || !Number.isInteger(keyEnd) || keyEnd < 0) {
          throw new SpecError(
            `${path} (pasta)`,
            `lowering needs options.promptTokens, the prompt's token count (got ${keyEnd}); PASTA down-weights prompt keys only`,
          );
        }
        const spans = iv.params.spans.map((span, j) => {
          const at = `${path}.params.spans[${j}]`;
          if (!('tokens' in span)) {
            throw new SpecError(at, `${'text' in span ? 'text' : 'chars'} span is not resolved; call resolveSpans(spec, prompt, tokenOffsets) before lowering`);
          }
          if (span.tokens[1] > keyEnd) {
            throw new SpecError(`${at}.tokens`, `[${span.tokens[0]}, ${span.tokens[1]}] runs past the prompt (${keyEnd} tokens)`);
          }
          return span.tokens;
        });
        const keySpans = Object.freeze(mergeSpans(spans));
        const logAlpha = Math.log(iv.params.alpha);
        for (const { layer, head } of iv.heads) pasta.push(Object.freeze({ layer, head, logAlpha, keySpans, keyEnd }));
        break;
      }
      case 'act': {
        for (const { layer, head } of iv.heads) {
          const key = `${layer}:${head}`;
          const earlier = actSetBy.get(key);
          if (earlier !== undefined) {
            throw new SpecError(`${path}.heads`, `head ${key} already has an act calibration from interventions[${earlier}]; a head takes at most one`);
          }
          actSetBy.set(key, i);
          act.push(Object.freeze({ layer, head, ...iv.params }));
        }
        break;
      }
    }
  });

  return Object.freeze({
    numLayers,
    numHeads,
    headDim,
    headScale,
    headAdd: adds.map((a) => (a ? Float32Array.from(a) : null)),
    pasta: Object.freeze(pasta),
    act: Object.freeze(act),
  });
}

/**
 * Dense additive pre-softmax bias for one layer, `[numHeads, queries, keys]` row-major, 0 where nothing
 * steers; null when no head of the layer has PASTA (the graph can skip the add). Key positions are
 * absolute (they need not be dense: an evicting cache passes the positions it kept); the bias depends on
 * the key only, so `queryPositions` just sets the middle dimension. Called per forward pass (prefill:
 * all prompt positions; decode: one query).
 */
export function buildScoreBias(
  lowered: HeadHookParams,
  layer: number,
  numHeads: number,
  queryPositions: Int32Array,
  keyPositions: Int32Array,
): Float32Array | null {
  if (numHeads !== lowered.numHeads) throw new Error(`buildScoreBias: numHeads ${numHeads} does not match the lowered spec's ${lowered.numHeads}`);
  return buildGroupScoreBias(lowered, layer, allHeads(numHeads), queryPositions, keyPositions);
}

/**
 * `buildScoreBias` for a subset of query heads (a KV-head group), `[heads.length, queries, keys]` in the
 * order of `heads`; null when none of them has PASTA.
 */
export function buildGroupScoreBias(
  lowered: HeadHookParams,
  layer: number,
  heads: readonly number[],
  queryPositions: Int32Array,
  keyPositions: Int32Array,
): Float32Array | null {
  checkHeads(lowered, layer, heads, 'buildScoreBias');
  const entries = lowered.pasta.filter((p) => p.layer === layer && heads.includes(p.head));
  if (entries.length === 0) return null;
  const q = queryPositions.length;
  const k = keyPositions.length;
  const bias = new Float32Array(heads.length * q * k);
  const keyBias = new Float32Array(k);
  for (const e of entries) {
    for (let j = 0; j < k; j++) keyBias[j] = pastaBiasAt(keyPositions[j], e.keySpans, e.logAlpha, e.keyEnd);
    const base = heads.indexOf(e.head) * q * k;
    for (let i = 0; i < q; i++) for (let j = 0; j < k; j++) bias[base + i * k + j] += keyBias[j];
  }
  return bias;
}

/** The graph's ACT inputs: `mask` `[heads, keys]` of 0/1 and `beta` `[heads]`. */
export interface ActInputs {
  mask: Float32Array;
  beta: Float32Array;
}

/**
 * ACT inputs for some query heads of one layer (in the order of `heads`), or null when none of them has
 * ACT. Heads without ACT get mask 0 and β = 1 (both mean "unchanged"). An ACT head's mask comes from its
 * captured pattern (`patternOf(head)`, typically from prefill) via `actMask`; the key at position p takes
 * the pattern's column p, and 0 past the pattern's columns (keys generated since the capture).
 */
export function buildActInputs(
  lowered: HeadHookParams,
  layer: number,
  heads: readonly number[],
  keyPositions: Int32Array,
  patternOf: (head: number) => AttentionMatrix | undefined,
): ActInputs | null {
  checkHeads(lowered, layer, heads, 'buildActInputs');
  const entries = lowered.act.filter((a) => a.layer === layer && heads.includes(a.head));
  if (entries.length === 0) return null;
  const k = keyPositions.length;
  const mask = new Float32Array(heads.length * k);
  const beta = new Float32Array(heads.length).fill(1);
  for (const e of entries) {
    const pattern = patternOf(e.head);
    if (!pattern) throw new Error(`buildActInputs: act on ${layer}:${e.head} needs that head's captured pattern`);
    const m = actMask(pattern, e.tau, e.minQueries);
    const row = heads.indexOf(e.head);
    for (let j = 0; j < k; j++) mask[row * k + j] = keyPositions[j] < m.length ? m[keyPositions[j]] : 0;
    beta[row] = e.beta;
  }
  return { mask, beta };
}

/**
 * The lowered parameters as the runtime's `HookProvider` (runtime/forward.ts). `actPatternOf` supplies
 * the captured pattern each ACT head's sink mask is computed from; it is needed only when the spec has
 * ACT.
 *
 * @example
 * await forward(model, gs, cache, ids, { hooks: hookProvider(lowerSpec(spec, model.config, { promptTokens })) });
 */
export function hookProvider(
  lowered: HeadHookParams,
  actPatternOf?: (layer: number, head: number) => AttentionMatrix | undefined,
): HookProvider {
  return {
    headScale: (layer) => lowered.headScale[layer] ?? null,
    headAdd: (layer) => lowered.headAdd[layer] ?? null,
    scoreBias: (layer, heads, queryPositions, keyPositions) =>
      buildGroupScoreBias(lowered, layer, heads, queryPositions, keyPositions),
    act: (layer, heads, keyPositions) =>
      buildActInputs(lowered, layer, heads, keyPositions, (head) => actPatternOf?.(layer, head)),
  };
}

/** True when the parameters change nothing, so the runtime may run the plain graph. */
export function isNoop(lowered: HeadHookParams): boolean {
  return (
    lowered.pasta.every((p) => p.logAlpha === 0) &&
    lowered.act.every((a) => a.beta === 1) &&
    lowered.headScale.every((s) => s.every((x) => x === 1)) &&
    lowered.headAdd.every((a) => a === null || a.every((x) => x === 0))
  );
}

// ----------------------------------------------------------------------------------------------

function meanOf(
  means: readonly Float32Array[] | undefined,
  layer: number,
  head: number,
  model: ModelShape,
  path: string,
): Float32Array {
  const width = model.numHeads * model.headDim;
  if (!means) {
    throw new SpecError(path, `lowering needs options.means (mean head outputs, [layer] → [numHeads·headDim]) and none were given`);
  }
  if (means.length !== model.numLayers) {
    throw new SpecError('options.means', `has ${means.length} layers, expected ${model.numLayers}`);
  }
  const row = means[layer];
  if (!row || row.length !== width) {
    throw new SpecError(`options.means[${layer}]`, `has ${row ? row.length : 'no'} values, expected ${width} (numHeads × headDim)`);
  }
  const slice = row.subarray(head * model.headDim, (head + 1) * model.headDim);
  if (!slice.every(Number.isFinite)) throw new SpecError(`options.means[${layer}]`, `head ${head}'s mean is not finite`);
  return slice;
}

function mergeSpans(spans: readonly SpanRange[]): SpanRange[] {
  const sorted = [...spans].sort((a, b) => a[0] - b[0]);
  const out: [number, number][] = [];
  for (const [s, e] of sorted) {
    const last = out[out.length - 1];
    if (last && s <= last[1]) last[1] = Math.max(last[1], e);
    else out.push([s, e]);
  }
  return out.map((r) => Object.freeze(r) as SpanRange);
}

function checkHeads(lowered: HeadHookParams, layer: number, heads: readonly number[], fn: string): void {
  if (!(Number.isInteger(layer) && layer >= 0 && layer < lowered.numLayers)) {
    throw new Error(`${fn}: layer ${layer} is out of range (model has ${lowered.numLayers} layers)`);
  }
  for (const h of heads) {
    if (!(Number.isInteger(h) && h >= 0 && h < lowered.numHeads)) {
      throw new Error(`${fn}: head ${h} is out of range (model has ${lowered.numHeads} heads per layer)`);
    }
  }
}

function allHeads(n: number): number[] {
  return [...Array(n).keys()];
}
