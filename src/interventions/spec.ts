/**
 * The intervention spec: which heads to change, how, and with what parameters, as plain JSON data.
 * This file owns the format, its validation (`parseInterventionSpec`, `parseHeadList`) and the types
 * the rest of `interventions/` works on. Turning text spans into token spans is `spans.ts`, listing and
 * composing specs is `compose.ts`, turning a spec into per-head runtime parameters is `lower.ts`, and the
 * math each op stands for is `reference.ts`. Every value here is frozen; functions return new specs.
 *
 * ## Format (version 1)
 *
 * ```json
 * { "version": 1,
 *   "note": "optional free text",
 *   "interventions": [
 *     { "op": "ablate", "heads": ["4:1", {"layer": 5, "head": 3}], "params": {"mode": "zero"} },
 *     { "op": "pasta",  "heads": "2:*", "params": {"alpha": 0.01, "spans": [{"text": "Mary is a doctor."}]} }
 *   ] }
 * ```
 *
 * A bare array of interventions is accepted as well. Interventions apply in list order (it matters only
 * where two of them change the same head's output: see `lower.ts`).
 *
 * **heads** — an array whose items are `"L:H"` strings or `{"layer": L, "head": H}` objects, or one string
 * `"L:H,L:H"`. Indices count from 0. `"*"` in either place means all: `"3:*"` is every head of layer 3,
 * `"*:0"` head 0 of every layer. A head listed twice counts once. At least one head.
 *
 * **op / params** (a parameter left out takes the default shown; unknown parameters are errors):
 * - `ablate` `{mode: "zero" | "mean" = "zero"}` — replace the head's output (before o_proj) by zero, or by
 *   its mean output; for `"mean"` the spec only says so, the mean vectors come from the runtime at
 *   lowering time.
 * - `scale` `{factor: number}` — multiply the head's output by a finite factor.
 * - `pasta` `{alpha: number = 0.01, spans: Span[]}` — PASTA (Zhang et al. 2023): attention the head puts
 *   on prompt keys outside every span is multiplied by α and renormalised, i.e. log α is added to those
 *   keys' pre-softmax scores. 0 < α ≤ 1. A span is `{"text": "...", "occurrence": 0}` (the n-th occurrence
 *   in the prompt, default the first), `{"chars": [start, end]}` or `{"tokens": [start, end]}`, ranges
 *   half-open, characters counted as JavaScript string indices. Text and char spans are turned into
 *   token spans per prompt by `resolveSpans`. Generated tokens are never down-weighted.
 * - `act` `{tau: number = 0.1, beta: number = 0.4, minQueries: number = 1}` — ACT attention calibration
 *   (Yu et al. 2024): keys k > 0 whose mean received attention exceeds τ (hidden sinks) get their
 *   attention multiplied by β and the freed mass goes to the other keys in proportion. 0 < τ < 1,
 *   0 ≤ β ≤ 1 (β = 1 changes nothing). The last keys are seen by few queries, so their mean is noisy;
 *   `minQueries` > 1 (an integer) keeps keys seen by fewer queries out of the sinks, as
 *   `heads/hiddenSinks` does. The default 1 is the definition as written.
 * - `steer` `{alpha: number, vector: number[]}` — add α·vector to the head's output; the vector has the
 *   model's headDim entries.
 *
 * An intervention may carry a `note` string, shown by `describe`.
 *
 * Errors are `SpecError`s whose message starts with the path of the offending field, e.g.
 * `interventions[1].heads[0].layer: 12 is out of range (model has 8 layers)`.
 */

import { HeadwiseError } from '../errors.js';
import { nestedDeeperThan } from '../io/json.js';
import type { HeadId } from '../runtime/capture.js';

export const SPEC_VERSION = 1;

export const OPS = ['ablate', 'scale', 'pasta', 'act', 'steer'] as const;
export type InterventionOp = (typeof OPS)[number];

export const DEFAULTS = Object.freeze({
  ablateMode: 'zero' as const,
  pastaAlpha: 0.01,
  actTau: 0.1,
  actBeta: 0.4,
  actMinQueries: 1,
});

/** The three numbers of a model that a spec is checked against. */
export interface ModelShape {
  numLayers: number;
  numHeads: number;
  headDim: number;
}

export type SpanRange = readonly [start: number, end: number];

/** A highlighted part of the prompt; ranges are half-open. */
export type SpanRef =
  | { readonly text: string; readonly occurrence: number }
  | { readonly chars: SpanRange }
  | { readonly tokens: SpanRange };

export interface AblateParams {
  readonly mode: 'zero' | 'mean';
}
export interface ScaleParams {
  readonly factor: number;
}
export interface PastaParams {
  readonly alpha: number;
  readonly spans: readonly SpanRef[];
}
export interface ActParams {
  readonly tau: number;
  readonly beta: number;
  readonly minQueries: number;
}
export interface SteerParams {
  readonly alpha: number;
  readonly vector: readonly number[];
}

interface InterventionOf<Op extends InterventionOp, P> {
  readonly op: Op;
  readonly heads: readonly Readonly<HeadId>[];
  readonly params: P;
  readonly note?: string;
}

export type AblateIntervention = InterventionOf<'ablate', AblateParams>;
export type ScaleIntervention = InterventionOf<'scale', ScaleParams>;
export type PastaIntervention = InterventionOf<'pasta', PastaParams>;
export type ActIntervention = InterventionOf<'act', ActParams>;
export type SteerIntervention = InterventionOf<'steer', SteerParams>;
export type Intervention =
  | AblateIntervention
  | ScaleIntervention
  | PastaIntervention
  | ActIntervention
  | SteerIntervention;

/**
 * A head as a caller writes it: `"L:H"` (`"*"` for every layer or head) or `{layer, head}`. The
 * validated form is always `{layer, head}` with numbers.
 */
export type HeadRefInput = `${number | '*'}:${number | '*'}` | { readonly layer: number | '*'; readonly head: number | '*' };
/** A list of heads, or one comma-separated string such as `"6:6,6:0"`. */
export type HeadsInput = string | readonly HeadRefInput[];
/** A span as a caller writes it (`occurrence` defaults to 0). */
export type SpanInput = { readonly text: string; readonly occurrence?: number } | { readonly chars: SpanRange } | { readonly tokens: SpanRange };

interface InterventionInputOf<Op extends InterventionOp, P> {
  readonly op: Op;
  readonly heads: HeadsInput;
  readonly note?: string;
  readonly params: P;
}
type Optional<T> = { readonly [K in keyof T]?: T[K] };
type WithOptionalParams<Op extends InterventionOp, P> = Omit<InterventionInputOf<Op, P>, 'params'> & { readonly params?: P };

/**
 * One intervention as TypeScript callers write it, before validation: a union discriminated on `op`,
 * so a misspelled op, a misspelled field or a parameter of another op is a compile error
 * (`test/types/spec.test.ts`). Parameters with a default may be left out; `scale`, `pasta` and `steer`
 * have required ones. Values are still checked at run time by `parseInterventionSpec` (ranges, the
 * model's shape).
 */
export type InterventionInput =
  | WithOptionalParams<'ablate', Optional<AblateParams>>
  | InterventionInputOf<'scale', ScaleParams>
  | InterventionInputOf<'pasta', { readonly alpha?: number; readonly spans: readonly SpanInput[] }>
  | WithOptionalParams<'act', Optional<ActParams>>
  | InterventionInputOf<'steer', SteerParams>;

/** A spec as TypeScript callers write it: `{version?, note?, interventions}` or a bare array. A validated `InterventionSpec` is one too. */
export type InterventionSpecInput =
  | { readonly version?: typeof SPEC_VERSION; readonly note?: string; readonly interventions: readonly InterventionInput[] }
  | readonly InterventionInput[];

/** A validated spec. Plain data: `JSON.stringify` of it parses back to an equal spec. */
export interface InterventionSpec {
  readonly version: typeof SPEC_VERSION;
  readonly note?: string;
  readonly interventions: readonly Intervention[];
}

/**
 * A spec that does not validate; `path` names the offending field, and the message starts with it.
 * A `HeadwiseError`, so the CLI and server report it as bad input.
 */
export class SpecError extends HeadwiseError {
  override readonly name = 'SpecError';
  constructor(
    readonly path: string,
    readonly detail: string,
  ) {
    super(`${path}: ${detail}`);
  }
}

/** Deepest nesting a spec may have (a real one needs about 6). */
export const MAX_SPEC_DEPTH = 32;

/**
 * Validate a spec (already-parsed JSON, or a JSON string) against a model and return it normalised:
 * heads expanded to `{layer, head}` objects, defaults filled in, everything frozen.
 *
 * @example
 * const spec = parseInterventionSpec({ version: 1, interventions: [{ op: 'scale', heads: ['2:1'], params: { factor: 0.5 } }] },
 *   { numLayers: 6, numHeads: 4, headDim: 64 });
 */
export function parseInterventionSpec(json: unknown, model: ModelShape): InterventionSpec {
  checkModel(model);
  let value = json;
  if (typeof value === 'string') {
    try {
      value = JSON.parse(value);
    } catch (e) {
      throw new SpecError('spec', `not valid JSON (${(e as Error).message})`);
    }
  }
  // Checked without recursion, before any recursive walk (messages, freezing) could overflow the stack.
  if (nestedDeeperThan(value, MAX_SPEC_DEPTH)) throw new SpecError('spec', `nested more than ${MAX_SPEC_DEPTH} levels deep`);
  let list: unknown;
  let note: string | undefined;
  if (Array.isArray(value)) {
    list = value;
  } else if (isRecord(value)) {
    checkKeys(value, 'spec', ['version', 'note', 'interventions'], 'a spec takes version, note, interventions');
    if (value.version !== undefined && value.version !== SPEC_VERSION) {
      throw new SpecError('version', `unsupported version ${show(value.version)} (this headwise reads version ${SPEC_VERSION})`);
    }
    note = optionalString(value.note, 'note');
    if (value.interventions === undefined) throw new SpecError('interventions', 'missing (expected an array of interventions)');
    list = value.interventions;
    if (!Array.isArray(list)) throw new SpecError('interventions', `must be an array of interventions (got ${show(list)})`);
  } else {
    throw new SpecError('spec', `must be {"version": 1, "interventions": [...]} or an array of interventions (got ${show(value)})`);
  }
  const interventions = (list as unknown[]).map((item, i) => parseIntervention(item, `interventions[${i}]`, model));
  return deepFreeze(note === undefined ? { version: SPEC_VERSION, interventions } : { version: SPEC_VERSION, note, interventions });
}

/**
 * Parse a comma-separated head list such as the CLI's `--ablate 6:6,6:0` (`"*"` for all layers or heads).
 * `path` names the source in error messages.
 *
 * @example parseHeadList('4:1, 5:*', { numLayers: 6, numHeads: 4, headDim: 64 }) // 5 heads
 */
export function parseHeadList(text: string, model: ModelShape, path = 'heads'): readonly Readonly<HeadId>[] {
  checkModel(model);
  if (typeof text !== 'string') throw new SpecError(path, `must be a string such as "6:6,6:0" (got ${show(text)})`);
  if (text.trim() === '') throw new SpecError(path, 'no heads given (expected e.g. "6:6,6:0")');
  const out = new HeadSet();
  text.split(',').forEach((item, i) => {
    const where = `item ${i + 1}`;
    if (item.trim() === '') throw new SpecError(path, `${where} is empty (expected e.g. "6:6,6:0")`);
    out.addAll(headsFromString(item, model, (detail) => new SpecError(path, `${where} ${detail}`)));
  });
  return Object.freeze(out.list());
}

// ---------------------------------------------------------------------------------------------------------

function parseIntervention(value: unknown, path: string, model: ModelShape): Intervention {
  if (!isRecord(value)) throw new SpecError(path, `must be an object {op, heads, params} (got ${show(value)})`);
  checkKeys(value, path, ['op', 'heads', 'params', 'note'], 'an intervention takes op, heads, params, note');
  const op = value.op;
  if (op === undefined) throw new SpecError(`${path}.op`, `missing (expected one of ${OPS.join(', ')})`);
  if (typeof op !== 'string' || !(OPS as readonly string[]).includes(op)) {
    const guess = typeof op === 'string' ? closest(op, OPS) : undefined;
    throw new SpecError(
      `${path}.op`,
      `unknown op ${show(op)} (expected one of ${OPS.join(', ')})${guess ? `; did you mean "${guess}"?` : ''}`,
    );
  }
  const heads = parseHeads(value.heads, `${path}.heads`, model);
  const note = optionalString(value.note, `${path}.note`);
  const paramsPath = `${path}.params`;
  const raw = value.params === undefined ? {} : value.params;
  if (!isRecord(raw)) throw new SpecError(paramsPath, `must be an object (got ${show(raw)})`);
  const params = parseParams(op as InterventionOp, raw, paramsPath, model);
  const out = { op, heads, params } as Intervention;
  return note === undefined ? out : { ...out, note };
}

function parseParams(op: InterventionOp, p: Record<string, unknown>, path: string, model: ModelShape) {
  switch (op) {
    case 'ablate': {
      checkKeys(p, path, ['mode'], 'ablate takes mode');
      const mode = p.mode === undefined ? DEFAULTS.ablateMode : p.mode;
      if (mode !== 'zero' && mode !== 'mean') throw new SpecError(`${path}.mode`, `must be "zero" or "mean" (got ${show(mode)})`);
      return { mode };
    }
    case 'scale': {
      checkKeys(p, path, ['factor'], 'scale takes factor');
      return { factor: finiteNumber(p.factor, `${path}.factor`) };
    }
    case 'pasta': {
      checkKeys(p, path, ['alpha', 'spans'], 'pasta takes alpha, spans');
      const alpha = p.alpha === undefined ? DEFAULTS.pastaAlpha : finiteNumber(p.alpha, `${path}.alpha`);
      if (!(alpha > 0)) throw new SpecError(`${path}.alpha`, `must be > 0 (got ${alpha})`);
      if (alpha > 1) throw new SpecError(`${path}.alpha`, `must be ≤ 1 (got ${alpha}); PASTA down-weights the keys outside the spans`);
      if (p.spans === undefined) throw new SpecError(`${path}.spans`, 'missing (expected an array of {text} | {chars: [start, end]} | {tokens: [start, end]})');
      if (!Array.isArray(p.spans)) throw new SpecError(`${path}.spans`, `must be an array of spans (got ${show(p.spans)})`);
      if (p.spans.length === 0) throw new SpecError(`${path}.spans`, 'must list at least one span to highlight');
      return { alpha, spans: p.spans.map((s, i) => parseSpan(s, `${path}.spans[${i}]`)) };
    }
    case 'act': {
      checkKeys(p, path, ['tau', 'beta', 'minQueries'], 'act takes tau, beta, minQueries');
      const tau = p.tau === undefined ? DEFAULTS.actTau : finiteNumber(p.tau, `${path}.tau`);
      if (!(tau > 0 && tau < 1)) throw new SpecError(`${path}.tau`, `must be in (0, 1): mean received attention is at most 1 (got ${tau})`);
      const beta = p.beta === undefined ? DEFAULTS.actBeta : finiteNumber(p.beta, `${path}.beta`);
      if (!(beta >= 0 && beta <= 1)) throw new SpecError(`${path}.beta`, `must be in [0, 1] (got ${beta})`);
      const minQueries = p.minQueries === undefined ? DEFAULTS.actMinQueries : p.minQueries;
      if (!isNonNegativeInt(minQueries) || minQueries < 1) {
        throw new SpecError(`${path}.minQueries`, `must be an integer ≥ 1 (got ${show(minQueries)})`);
      }
      return { tau, beta, minQueries };
    }
    case 'steer': {
      checkKeys(p, path, ['alpha', 'vector'], 'steer takes alpha, vector');
      if (p.alpha === undefined) throw new SpecError(`${path}.alpha`, 'missing (expected a finite number)');
      const alpha = finiteNumber(p.alpha, `${path}.alpha`);
      if (p.vector === undefined) throw new SpecError(`${path}.vector`, `missing (expected ${model.headDim} numbers, the model's headDim)`);
      if (!Array.isArray(p.vector)) throw new SpecError(`${path}.vector`, `must be an array of ${model.headDim} numbers (got ${show(p.vector)})`);
      if (p.vector.length !== model.headDim) {
        throw new SpecError(`${path}.vector`, `has ${p.vector.length} entries, expected ${model.headDim} (the model's headDim)`);
      }
      return { alpha, vector: p.vector.map((x, i) => finiteNumber(x, `${path}.vector[${i}]`)) };
    }
  }
}

function parseSpan(value: unknown, path: string): SpanRef {
  if (!isRecord(value)) throw new SpecError(path, `must be {text} | {chars: [start, end]} | {tokens: [start, end]} (got ${show(value)})`);
  const kinds = ['text', 'chars', 'tokens'].filter((k) => value[k] !== undefined);
  if (kinds.length !== 1) {
    throw new SpecError(path, kinds.length === 0 ? 'needs one of text, chars, tokens' : `has ${kinds.join(' and ')}; give exactly one`);
  }
  const kind = kinds[0];
  if (kind === 'text') {
    checkKeys(value, path, ['text', 'occurrence'], 'a text span takes text, occurrence');
    if (typeof value.text !== 'string' || value.text === '') {
      throw new SpecError(`${path}.text`, `must be a non-empty string (got ${show(value.text)})`);
    }
    const occurrence = value.occurrence === undefined ? 0 : value.occurrence;
    if (!isNonNegativeInt(occurrence)) throw new SpecError(`${path}.occurrence`, `must be an integer ≥ 0 (got ${show(occurrence)})`);
    return { text: value.text, occurrence };
  }
  checkKeys(value, path, [kind], `a ${kind} span takes only ${kind}`);
  const range = parseRange(value[kind], `${path}.${kind}`);
  return kind === 'chars' ? { chars: range } : { tokens: range };
}

function parseRange(value: unknown, path: string): SpanRange {
  if (!Array.isArray(value) || value.length !== 2 || !value.every(isNonNegativeInt)) {
    throw new SpecError(path, `must be [start, end] with integers ≥ 0 (got ${show(value)})`);
  }
  const [start, end] = value as number[];
  if (!(start < end)) throw new SpecError(path, `must have start < end; ranges are half-open (got [${start}, ${end}])`);
  return [start, end];
}

function parseHeads(value: unknown, path: string, model: ModelShape): readonly Readonly<HeadId>[] {
  if (value === undefined) throw new SpecError(path, 'missing (expected e.g. ["6:0", {"layer": 6, "head": 1}])');
  if (typeof value === 'string') return parseHeadList(value, model, path);
  if (!Array.isArray(value)) throw new SpecError(path, `must be an array of "L:H" strings or {layer, head} objects (got ${show(value)})`);
  if (value.length === 0) throw new SpecError(path, 'must list at least one head');
  const out = new HeadSet();
  value.forEach((item, i) => {
    const at = `${path}[${i}]`;
    if (typeof item === 'string') {
      out.addAll(headsFromString(item, model, (detail) => new SpecError(at, detail)));
    } else if (isRecord(item)) {
      checkKeys(item, at, ['layer', 'head'], 'a head takes layer, head');
      const layers = indexOrAll(item.layer, `${at}.layer`, model.numLayers, 'layers');
      const heads = indexOrAll(item.head, `${at}.head`, model.numHeads, 'heads per layer');
      for (const layer of layers) for (const head of heads) out.add({ layer, head });
    } else {
      throw new SpecError(at, `must be "L:H" or {layer, head} (got ${show(item)})`);
    }
  });
  return out.list();
}

function headsFromString(text: string, model: ModelShape, fail: (detail: string) => SpecError): HeadId[] {
  const m = /^\s*(\d+|\*)\s*:\s*(\d+|\*)\s*$/.exec(text);
  if (!m) throw fail(`${show(text.trim())} is not a head; write L:H such as 6:0 ("*" means all)`);
  const range = (tok: string, n: number, what: string, unit: string): number[] => {
    if (tok === '*') return [...Array(n).keys()];
    const i = Number(tok);
    if (i >= n) throw fail(`${show(text.trim())}: ${what} ${i} is out of range (model has ${n} ${unit})`);
    return [i];
  };
  const layers = range(m[1], model.numLayers, 'layer', 'layers');
  const heads = range(m[2], model.numHeads, 'head', 'heads per layer');
  return layers.flatMap((layer) => heads.map((head) => ({ layer, head })));
}

function indexOrAll(value: unknown, path: string, n: number, unit: string): number[] {
  if (value === '*') return [...Array(n).keys()];
  if (value === undefined) throw new SpecError(path, `missing (expected an integer in [0, ${n}) or "*")`);
  if (!isNonNegativeInt(value)) throw new SpecError(path, `must be an integer ≥ 0 or "*" (got ${show(value)})`);
  if (value >= n) throw new SpecError(path, `${value} is out of range (model has ${n} ${unit})`);
  return [value];
}

/** Heads in first-seen order, each once. */
class HeadSet {
  private readonly seen = new Set<string>();
  private readonly heads: HeadId[] = [];
  add(h: HeadId): void {
    const key = `${h.layer}:${h.head}`;
    if (this.seen.has(key)) return;
    this.seen.add(key);
    this.heads.push(h);
  }
  addAll(hs: HeadId[]): void {
    hs.forEach((h) => this.add(h));
  }
  list(): HeadId[] {
    return this.heads.map((h) => Object.freeze({ ...h }));
  }
}

function checkModel(model: ModelShape): void {
  for (const k of ['numLayers', 'numHeads', 'headDim'] as const) {
    if (!isNonNegativeInt(model?.[k]) || model[k] === 0) {
      throw new SpecError(`model.${k}`, `must be a positive integer (got ${show(model?.[k])})`);
    }
  }
}

function checkKeys(obj: Record<string, unknown>, path: string, allowed: readonly string[], hint: string): void {
  for (const key of Object.keys(obj)) {
    if (!allowed.includes(key)) {
      const guess = closest(key, allowed);
      throw new SpecError(path === 'spec' ? key : `${path}.${key}`, `unknown field (${hint})${guess ? `; did you mean "${guess}"?` : ''}`);
    }
  }
}

function finiteNumber(value: unknown, path: string): number {
  if (typeof value !== 'number') throw new SpecError(path, `must be a number (got ${show(value)})`);
  if (!Number.isFinite(value)) throw new SpecError(path, `must be a finite number (got ${value})`);
  return value;
}

function optionalString(value: unknown, path: string): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string') throw new SpecError(path, `must be a string (got ${show(value)})`);
  return value;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && !ArrayBuffer.isView(value);
}

function isNonNegativeInt(value: unknown): value is number {
  return typeof value === 'number' && Number.isInteger(value) && value >= 0;
}

/** How a bad value reads in a message. */
export function show(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (value === null) return 'null';
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  if (Array.isArray(value)) {
    const s = JSON.stringify(value);
    return s !== undefined && s.length <= 40 ? s : `an array of ${value.length}`;
  }
  return typeof value === 'object' ? 'an object' : `a ${typeof value}`;
}

function closest(word: string, options: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDist = 3;
  for (const o of options) {
    const d = editDistance(word.toLowerCase(), o);
    if (d < bestDist) [best, bestDist] = [o, d];
  }
  return best;
}

function editDistance(a: string, b: string): number {
  const row = [...Array(b.length + 1).keys()];
  for (let i = 1; i <= a.length; i++) {
    let diag = row[0];
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const up = row[j];
      row[j] = Math.min(row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] === b[j - 1] ? 0 : 1));
      diag = up;
    }
  }
  return row[b.length];
}

/** Freeze plain data all the way down (specs hold only objects, arrays, strings and numbers). */
export function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}
