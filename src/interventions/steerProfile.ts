/**
 * Choosing heads for PASTA by profiling (Zhang et al. 2023): steer each candidate head alone on a small
 * task set and rank heads by how much that helps. The task is the conflicting needle: one key given two
 * values at two depths, one needle sentence highlighted (alternately the earlier and the later one, so
 * position preferences cancel out). Help is measured by the log-prob margin of the highlighted value over
 * the other (teacher-forced, summed over the value's tokens) — cheap and smooth; `followRate` measures
 * the share of greedy answers that give the highlighted value, for evaluating a chosen head set.
 * Generating the needle prompts is eval/'s; lowering and binding specs is lower.ts's and bind.ts's.
 *
 * Profile and evaluate on different seeds: the profile's default seed (1000) is away from the small
 * seeds an evaluation would start from.
 */

import { HeadwiseError } from '../errors.js';
import { loadHaystack } from '../eval/haystack.js';
import { matchedNeedle } from '../eval/match.js';
import { generateNeedleSample, type NeedleSample } from '../eval/needle.js';
import { Random } from '../eval/random.js';
import { fillTemplate, MAGIC_NUMBER_TEMPLATE, type NeedleTemplate } from '../eval/templates.js';
import { NO_HOOKS, type HookOptions } from '../graph/hooks.js';
import type { HeadId } from '../runtime/capture.js';
import { forward, newCache, type HookProvider } from '../runtime/forward.js';
import { fullCache, generate } from '../runtime/generate.js';
import type { Model } from '../runtime/model.js';
import { bindIntervention, modelShape } from './bind.js';
import { parseInterventionSpec, DEFAULTS, type InterventionSpec } from './spec.js';

export const STEER_PROFILE_DEFAULTS = Object.freeze({ samples: 16, contextTokens: 512, seed: 1000, alpha: DEFAULTS.pastaAlpha, top: 4 });

/** Text a steer-profile spec carries as its span: replace it, or use the spec's heads with `--highlight`. */
export const HIGHLIGHT_PLACEHOLDER = '<text to highlight>';

/** One conflicting-needle prompt with the needle to highlight. */
export interface SteerTask {
  sample: NeedleSample;
  /** Index in `sample.needles` (prompt order) of the highlighted needle; the other is `1 − highlight`. */
  highlight: number;
  /** Token ids of each needle's value as the answer (" 4829371"), following the prompt. */
  valueIds: [number[], number[]];
}

export interface SteerTaskOptions {
  samples?: number;
  contextTokens?: number;
  seed?: number;
  template?: NeedleTemplate;
  haystack?: string;
}

/**
 * `samples` conflicting-needle tasks, seeds `seed, seed + 1, ...`; task i highlights the earlier needle
 * when i is even and the later one when odd. Depths are drawn from [0.05, 0.95].
 */
export function conflictingTasks(model: Model, options: SteerTaskOptions = {}): SteerTask[] {
  const tokenizer = model.tokenizer;
  if (!tokenizer) throw new HeadwiseError(`${model.ckpt.dir}: no tokenizer.json, needed to build needle prompts`);
  const { samples = STEER_PROFILE_DEFAULTS.samples, contextTokens = STEER_PROFILE_DEFAULTS.contextTokens, seed = STEER_PROFILE_DEFAULTS.seed } = options;
  const template = options.template ?? MAGIC_NUMBER_TEMPLATE;
  const haystack = options.haystack ?? loadHaystack();
  return Array.from({ length: samples }, (_, i) => {
    const rng = new Random(seed + i);
    const sample = generateNeedleSample(tokenizer, haystack, {
      variant: 'conflicting',
      contextTokens,
      depth: 0.05 + 0.9 * rng.float(),
      otherDepth: 0.05 + 0.9 * rng.float(),
      seed: seed + i,
      template,
    });
    if (sample.needles.length !== 2) throw new HeadwiseError(`conflicting needle sample ${seed + i} has ${sample.needles.length} needles`);
    const valueIds = sample.needles.map((n) => answerValueIds(model, sample, n.value)) as [number[], number[]];
    return { sample, highlight: i % 2, valueIds };
  });
}

/** The tokens of " {value}" (the answer template up to the value) as they follow the prompt. */
function answerValueIds(model: Model, sample: NeedleSample, value: string): number[] {
  const answer = fillTemplate(sample.template.answer, sample.key ?? '', value);
  const text = answer.slice(0, answer.indexOf(value) + value.length);
  const ids = model.tokenize(sample.prompt + text);
  if (ids.length <= sample.inputIds.length || sample.inputIds.some((id, i) => ids[i] !== id)) {
    throw new HeadwiseError(`needle sample ${sample.seed}: the answer ${JSON.stringify(text)} merges with the end of the prompt`);
  }
  return ids.slice(sample.inputIds.length);
}

/** PASTA on `heads`, highlighting the task's needle sentence (as token spans). */
export function highlightSpec(model: Model, heads: readonly HeadId[], task: SteerTask, alpha: number = DEFAULTS.pastaAlpha): InterventionSpec {
  const { start, end } = task.sample.needles[task.highlight].span;
  return parseInterventionSpec(
    [{ op: 'pasta', heads: heads.map((h) => ({ layer: h.layer, head: h.head })), params: { alpha, spans: [{ tokens: [start, end] }] } }],
    modelShape(model),
  );
}

/** Log-prob margin of the highlighted value over the other, per task, with `spec(task)` applied (null = none). */
export async function highlightMargins(model: Model, tasks: readonly SteerTask[], spec: ((task: SteerTask) => InterventionSpec) | null, onTask?: () => void): Promise<number[]> {
  const out: number[] = [];
  for (const task of tasks) {
    let hookOptions: HookOptions = NO_HOOKS;
    let hooks: HookProvider | undefined;
    if (spec) {
      const bound = await bindIntervention(model, spec(task), task.sample.inputIds);
      ({ hookOptions, hooks } = bound);
    }
    const lp = await valueLogProbs(model, task, hookOptions, hooks);
    out.push(lp[task.highlight] - lp[1 - task.highlight]);
    onTask?.();
  }
  return out;
}

/** log P(value | prompt) of both needles' values: one prefill, then each value teacher-forced on top. */
async function valueLogProbs(model: Model, task: SteerTask, hookOptions: HookOptions, hooks?: HookProvider): Promise<[number, number]> {
  const setup = fullCache(model);
  const gs = await model.session(setup.layout, hookOptions);
  const cache = newCache(model, gs, setup.policies);
  const ids = task.sample.inputIds;
  cache.reserve(ids.length + 16);
  let last: Float32Array = new Float32Array(0);
  for (let i = 0; i < ids.length; i += 512) last = (await forward(model, gs, cache, ids.slice(i, i + 512), { hooks })).logits;
  const V = model.config.vocabSize;
  const result: number[] = [];
  for (const value of task.valueIds) {
    let lp = logSoftmaxAt(last, 0, V, value[0]);
    if (value.length > 1) {
      const rest = value.slice(0, -1);
      const r = await forward(model, gs, cache, rest, { hooks, logitsAt: rest.map((_, i) => i), commit: false });
      for (let i = 1; i < value.length; i++) lp += logSoftmaxAt(r.logits, (i - 1) * V, V, value[i]);
    }
    result.push(lp);
  }
  return result as [number, number];
}

function logSoftmaxAt(logits: Float32Array, offset: number, V: number, token: number): number {
  let max = -Infinity;
  for (let i = 0; i < V; i++) max = Math.max(max, logits[offset + i]);
  let sum = 0;
  for (let i = 0; i < V; i++) sum += Math.exp(logits[offset + i] - max);
  return logits[offset + token] - max - Math.log(sum);
}

export interface HeadSteerScore extends HeadId {
  /** Mean margin (nats) of the highlighted value over the other with this head steered alone. */
  margin: number;
  /** `margin` minus the unsteered mean margin: what steering this head buys. */
  gain: number;
  /** Share of tasks where the highlighted value is the more likely one. */
  prefer: number;
}

export interface SteerProfile {
  settings: { samples: number; contextTokens: number; seed: number; alpha: number; template: string; candidates: number };
  /** Without steering. */
  baseline: { margin: number; prefer: number };
  /** Candidates, best first (by gain). */
  heads: HeadSteerScore[];
}

export interface SteerProfileOptions extends SteerTaskOptions {
  alpha?: number;
  /** Heads to try (default every head). */
  heads?: readonly HeadId[];
  /** Called after each (head, task) run with (done, total, what). */
  onProgress?: (done: number, total: number, what: string) => void;
}

/**
 * Steer each candidate head alone with PASTA on the conflicting-needle tasks and rank them by the mean
 * gain in the highlighted value's log-prob margin.
 *
 * @example
 * const profile = await steerProfile(model, { samples: 16 });
 * const spec = steerProfileSpec(model, profile, 4); // PASTA on the top 4 heads
 */
export async function steerProfile(model: Model, options: SteerProfileOptions = {}): Promise<SteerProfile> {
  const c = model.config;
  const alpha = options.alpha ?? STEER_PROFILE_DEFAULTS.alpha;
  const tasks = conflictingTasks(model, options);
  const candidates = options.heads ?? Array.from({ length: c.numLayers * c.numHeads }, (_, i) => ({ layer: Math.floor(i / c.numHeads), head: i % c.numHeads }));
  if (candidates.length === 0) throw new HeadwiseError('steer-profile: no candidate heads');
  const total = tasks.length * (candidates.length + 1);
  let done = 0;
  const tick = (what: string) => () => options.onProgress?.(++done, total, what);
  const base = await highlightMargins(model, tasks, null, tick('baseline'));
  const baseMargin = mean(base);
  const heads: HeadSteerScore[] = [];
  for (const h of candidates) {
    const m = await highlightMargins(model, tasks, (task) => highlightSpec(model, [h], task, alpha), tick(`${h.layer}:${h.head}`));
    heads.push({ layer: h.layer, head: h.head, margin: mean(m), gain: mean(m) - baseMargin, prefer: share(m) });
  }
  heads.sort((a, b) => b.gain - a.gain || a.layer - b.layer || a.head - b.head);
  return {
    settings: {
      samples: tasks.length,
      contextTokens: options.contextTokens ?? STEER_PROFILE_DEFAULTS.contextTokens,
      seed: options.seed ?? STEER_PROFILE_DEFAULTS.seed,
      alpha,
      template: (options.template ?? MAGIC_NUMBER_TEMPLATE).name,
      candidates: candidates.length,
    },
    baseline: { margin: baseMargin, prefer: share(base) },
    heads,
  };
}

/**
 * The spec a profile recommends: PASTA with α on its `top` best heads. Its span is a placeholder
 * (`HIGHLIGHT_PLACEHOLDER`): replace it with the text to highlight, or pass the file to `--steer-heads`.
 */
export function steerProfileSpec(model: Model, profile: SteerProfile, top: number = STEER_PROFILE_DEFAULTS.top): InterventionSpec {
  if (!(Number.isInteger(top) && top >= 1)) throw new HeadwiseError(`top must be an integer ≥ 1 (got ${top})`);
  const heads = profile.heads.slice(0, top);
  const s = profile.settings;
  return parseInterventionSpec(
    {
      version: 1,
      note:
        `steer-profile of ${model.name}: top ${heads.length} of ${s.candidates} heads by PASTA gain on ${s.samples} conflicting-needle prompts ` +
        `(${s.contextTokens} tokens, seed ${s.seed}, α=${s.alpha}); replace the span text, or use the file with --steer-heads and --highlight`,
      interventions: [{ op: 'pasta', heads: heads.map((h) => `${h.layer}:${h.head}`), params: { alpha: s.alpha, spans: [{ text: HIGHLIGHT_PLACEHOLDER }] } }],
    },
    modelShape(model),
  );
}

export interface FollowRate {
  samples: number;
  /** Share of greedy answers whose value is the highlighted needle's. */
  highlighted: number;
  /** Share that give the other needle's value. */
  other: number;
  /** Share that give neither. */
  neither: number;
  /** `highlighted` among tasks highlighting the earlier needle / the later one. */
  byPosition: { earlier: number; later: number };
}

/**
 * Greedy answers on the tasks with `spec(task)` applied (null = none): the share that follow the
 * highlighted needle.
 */
export async function followRate(model: Model, tasks: readonly SteerTask[], spec: ((task: SteerTask) => InterventionSpec) | null, onTask?: () => void): Promise<FollowRate> {
  let hl = 0;
  let other = 0;
  const pos = { earlier: [0, 0], later: [0, 0] };
  for (const task of tasks) {
    let hookOptions: HookOptions = NO_HOOKS;
    let hooks: HookProvider | undefined;
    if (spec) ({ hookOptions, hooks } = await bindIntervention(model, spec(task), task.sample.inputIds));
    const maxNewTokens = Math.max(...task.valueIds.map((v) => v.length)) + 2;
    const r = await generate(model, task.sample.inputIds, { maxNewTokens, hookOptions, hooks, stopAtEos: false });
    const m = matchedNeedle(r.text, task.sample);
    const bucket = task.highlight === 0 ? pos.earlier : pos.later;
    bucket[1]++;
    if (m === task.highlight) {
      hl++;
      bucket[0]++;
    } else if (m >= 0) other++;
    onTask?.();
  }
  const n = tasks.length;
  return {
    samples: n,
    highlighted: hl / n,
    other: other / n,
    neither: (n - hl - other) / n,
    byPosition: { earlier: pos.earlier[0] / Math.max(1, pos.earlier[1]), later: pos.later[0] / Math.max(1, pos.later[1]) },
  };
}

function mean(xs: number[]): number {
  return xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);
}

function share(margins: number[]): number {
  return margins.filter((m) => m > 0).length / Math.max(1, margins.length);
}
