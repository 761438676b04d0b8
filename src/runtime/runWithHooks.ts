/**
 * `runWithHooks`: a prompt run with the caller's JavaScript functions at hook points, each reading the
 * value and optionally replacing it. The graph is compiled into segments at the requested points
 * (`HookOptions.segment`: blocks [from, to) per segment, starting or ending inside a block at
 * `fromPoint` / `toPoint`; the residual stream crosses between segments as an output and an input, with
 * the point's value beside it for a cut inside a block), so the model runs once, segment after segment,
 * and the value crosses into JS at each cut — nothing is re-run per hook. An identity hook gives logits
 * bit-identical to the plain run (`runWithHooks.test.ts`); a replaced head z equals patching and a
 * zeroed one `ablate` (`patching/hookZ.test.ts`).
 *
 * Cut points: `blocks.{l}.hook_resid_pre` (before block l), `blocks.{l}.attn.hook_z` ([q, heads, headDim],
 * each head's output before o_proj — block l's K/V are computed in the segment before it),
 * `blocks.{l}.hook_attn_out` and `blocks.{l}.hook_mlp_out` ([q, hidden], before any post-norm), and
 * `blocks.{l}.hook_resid_post` (after block l; the last block's is the input of the final norm). Other
 * hook points are read with `runWithCache`.
 *
 * @example
 * const r = await runWithHooks(model, prompt, { hooks: {
 *   'blocks.3.hook_resid_pre': (x) => { x.data.fill(0, 12 * x.shape[1], 13 * x.shape[1]); return x; }, // zero position 12
 *   'blocks.5.attn.hook_z': (z) => { z.data.set(cached, (12 * z.shape[1] + 3) * z.shape[2]); },     // head 5:3 at position 12
 * } });
 */
import { HeadwiseError } from '../errors.js';
import { NO_HOOKS, POINT_OUT, RESID_OUT, SEGMENT_POINTS, type SegmentPoint } from '../graph/hooks.js';
import type { Tensor } from './activationCache.js';
import { forward, newCache } from './forward.js';
import { fullCache } from './generate.js';
import type { Model } from './model.js';

/** Reads the value at a cut ([q, hidden]; [q, heads, headDim] at hook_z); returns a replacement of the same shape, or nothing to keep it. */
export type ResidualHook = (value: Tensor, at: { name: string; layer: number }) => Tensor | Float32Array | void;

export interface RunWithHooksOptions {
  hooks: Readonly<Record<string, ResidualHook>>;
  /** Prompt positions whose logits are returned: `'last'` (default), `'all'`, or a list. */
  logitsAt?: 'last' | 'all' | number[];
}

export interface HookedRunResult {
  ids: number[];
  /** [logitsAt.length, vocab] */
  logits: Float32Array;
  logitsAt: number[];
  vocab: number;
  /** Graph segments run (cut points + 1). */
  segments: number;
}

/**
 * Position of a cut point in the run: 4 per block, a block's input at 4l, then its hook_z, hook_attn_out
 * and hook_mlp_out, its output at 4(l + 1) (the next block's input).
 */
function positionOf(name: string, numLayers: number): number {
  const m = /^blocks\.(\d+)\.(hook_resid_pre|hook_resid_post|attn\.hook_z|hook_attn_out|hook_mlp_out)$/.exec(name);
  if (!m) throw new HeadwiseError(`runWithHooks: ${name} is not a cut point (supported: blocks.{l}.hook_resid_pre, attn.hook_z, hook_attn_out, hook_mlp_out, hook_resid_post; read other points with runWithCache, change head outputs with interventions)`);
  const l = Number(m[1]);
  if (l >= numLayers) throw new HeadwiseError(`runWithHooks: ${name}: layer ${l} is out of range (model has ${numLayers} layers)`);
  if (m[2] === 'hook_resid_pre') return 4 * l;
  if (m[2] === 'hook_resid_post') return 4 * (l + 1);
  return 4 * l + 1 + SEGMENT_POINTS.indexOf(m[2] as SegmentPoint);
}

const pointAt = (pos: number): SegmentPoint | undefined => (pos % 4 === 0 ? undefined : SEGMENT_POINTS[(pos % 4) - 1]);

export async function runWithHooks(model: Model, prompt: string | readonly number[], options: RunWithHooksOptions): Promise<HookedRunResult> {
  const c = model.config;
  const L = c.numLayers;
  const d = c.hiddenSize;
  const ids = typeof prompt === 'string' ? model.tokenize(prompt) : [...prompt];
  if (ids.length === 0) throw new HeadwiseError('runWithHooks: no tokens');
  const T = ids.length;
  const logitsAt = options.logitsAt === undefined || options.logitsAt === 'last' ? [T - 1] : options.logitsAt === 'all' ? [...Array(T).keys()] : [...options.logitsAt];
  for (const p of logitsAt) if (!(Number.isInteger(p) && p >= 0 && p < T)) throw new HeadwiseError(`logitsAt: ${p} is not a prompt position (0..${T - 1})`);
  // At one boundary, a block's resid_post runs before the next block's resid_pre.
  const cuts = new Map<number, [string, ResidualHook][]>();
  for (const [name, fn] of Object.entries(options.hooks)) {
    if (typeof fn !== 'function') throw new HeadwiseError(`runWithHooks: hooks["${name}"] is not a function`);
    const at = positionOf(name, L);
    if (!cuts.has(at)) cuts.set(at, []);
    cuts.get(at)!.push([name, fn]);
  }
  for (const list of cuts.values()) list.sort(([a], [b]) => (a.endsWith('post') ? 0 : 1) - (b.endsWith('post') ? 0 : 1));
  const bounds = [...cuts.keys()].sort((a, b) => a - b);
  const setup = fullCache(model);
  // The final norm and LM head are the segment graphs' block L.
  const edges = [0, ...bounds, 4 * (L + 1)];
  let resid: Float32Array | undefined;
  let point: Float32Array | undefined;
  let logits: Float32Array = new Float32Array(0);
  for (let i = 0; i + 1 < edges.length; i++) {
    const [from, to] = [edges[i], edges[i + 1]];
    const last = i + 2 === edges.length;
    const [fromPoint, toPoint] = [pointAt(from), pointAt(to)];
    const segment = bounds.length === 0 ? undefined : {
      from: Math.floor(from / 4), to: toPoint ? Math.floor(to / 4) : to / 4, residIn: i > 0,
      ...(fromPoint ? { fromPoint } : {}), ...(toPoint ? { toPoint } : {}),
    };
    const gs = await model.session(setup.layout, segment ? { ...NO_HOOKS, segment } : NO_HOOKS);
    const cache = newCache(model, gs, setup.policies);
    const r = await forward(model, gs, cache, ids, { logitsAt, commit: false, residIn: i > 0 ? resid : undefined, pointIn: fromPoint ? point : undefined });
    if (last) {
      logits = r.logits;
      break;
    }
    resid = r.captured.get(RESID_OUT)!;
    point = toPoint ? r.captured.get(POINT_OUT)! : undefined;
    const shape = toPoint === 'attn.hook_z' ? [T, c.numHeads, c.headDim] : [T, d];
    const size = shape.reduce((a, n) => a * n, 1);
    for (const [name, fn] of cuts.get(to) ?? []) {
      const layer = Number(name.split('.')[1]);
      const got = fn({ shape, data: toPoint ? point! : resid }, { name, layer });
      if (got === undefined) continue;
      const data = got instanceof Float32Array ? got : got.data;
      if (!(data instanceof Float32Array) || data.length !== size) throw new HeadwiseError(`runWithHooks: hook ${name} returned ${data?.length ?? 'no'} values, expected [${shape.join(', ')}] = ${size} float32`);
      if (toPoint) point = data;
      else resid = data;
    }
  }
  return { ids, logits, logitsAt, vocab: c.vocabSize, segments: bounds.length + 1 };
}
