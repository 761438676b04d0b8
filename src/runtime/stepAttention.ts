/**
 * One-token steps on `step` cache classes (LongHeads per step, `kv/classPolicy.ts`): the cache holds
 * every token, and at each one-token step each KV head attends only to the rows its class policy
 * picks (`ClassPolicy.stepRows`). This file owns the mechanics around that rule, used by `forward.ts`:
 * - the picked rows of each group are gathered into one dense [heads, slots, headDim] past input (so
 *   the step's attention reads only them; the class mask shows every gathered row, all earlier than
 *   the query, and hides the unused slots), kept per group between steps so that only the rows that
 *   joined the selection are copied (`gatherRows`);
 * - the rows are scored with the *previous* token's queries (the step's own are computed inside the
 *   graph, layer by layer, after the past inputs are fed): the graph of a setup with step classes
 *   captures `blocks.{l}.attn.hook_q` on every layer (`stepQueryHooks`), and after each committed call
 *   the last row is kept in `cache.lastQuery`. Until a query is kept (the first call), and in
 *   multi-token calls (prefill), every held row is attended.
 */
import { HeadwiseError } from '../errors.js';
import type { HookOptions } from '../graph/hooks.js';
import { groupQueryHeads, type KvLayout } from '../graph/layout.js';
import type { ModelConfig } from '../hf/config.js';
import type { ClassPolicy, KvBuffer, KvCache } from './kvCache.js';

/** The capture point of layer l's queries after RoPE ([q, heads, headDim], `graph/hooks.ts`). */
export const queryHook = (l: number) => `blocks.${l}.attn.hook_q`;

export function hasStepClasses(policies: Map<string, ClassPolicy>): boolean {
  return [...policies.values()].some((p) => p.kind === 'step');
}

/** `hooks` plus the query captures a setup with step classes needs (unchanged otherwise). */
export function stepQueryHooks(policies: Map<string, ClassPolicy>, hooks: HookOptions, numLayers: number): HookOptions {
  if (!hasStepClasses(policies)) return hooks;
  const capture = new Set(hooks.capture ?? []);
  for (let l = 0; l < numLayers; l++) capture.add(queryHook(l));
  return { ...hooks, capture: [...capture] };
}

/**
 * A group's gathered rows: head j's slots are `[j·stride, j·stride + k)` rows of `key`/`value`, slot s
 * holding buffer row `slotRow[j][s]`. Attention does not depend on the order of its keys (positions
 * are in the keys already), so from step to step only the rows that joined are copied, into the slots
 * of those that left; `stride` grows in bands, the rows past `k` fed as masked slack.
 */
interface Gathered {
  key: Float32Array;
  value: Float32Array;
  stride: number;
  k: number;
  slotRow: Int32Array[];
  /** Per buffer row: the stamp of the head pass that wants it / has placed it. */
  wanted: Int32Array;
  placed: Int32Array;
  stamp: number;
}

/** A step's gathered groups by `layer:group`; per class, the rows attended and the fed stride. */
export interface StepPlan {
  groups: Map<string, { key: Float32Array; value: Float32Array; k: number; stride: number }>;
  count: Map<string, { k: number; stride: number }>;
}

/**
 * The rows each group of a step class attends to in a call of `q` tokens, gathered, or null when
 * every held row is (no step class, a multi-token call, no query kept yet, or the rule keeps everything).
 */
export function planStep(c: ModelConfig, layout: KvLayout, cache: KvCache, captures: readonly string[] | undefined, q: number): StepPlan | null {
  if (!hasStepClasses(cache.policies)) return null;
  for (let l = 0; l < c.numLayers; l++) {
    if (!captures?.includes(queryHook(l))) throw new HeadwiseError(`a step KV policy (longheads) needs a graph capturing ${queryHook(l)}: compile it with stepQueryHooks`);
  }
  if (q !== 1 || !cache.lastQuery) return null;
  const plan: StepPlan = { groups: new Map(), count: new Map() };
  const D = c.headDim;
  const counts = new Map<string, number>();
  layout.forEach((groups, l) => groups.forEach((group, g) => {
    const policy = cache.policies.get(group.cacheClass)!;
    if (policy.kind !== 'step' || !policy.stepRows) return;
    const heads = groupQueryHeads(group, c.numHeads, c.numKvHeads);
    const last = cache.lastQuery![l];
    const query = new Float32Array(heads.length * D);
    heads.forEach((h, i) => query.set(last.subarray(h * D, (h + 1) * D), i * D));
    const rows = policy.stepRows(cache, l, g, query);
    const k = rows ? rows[0].length : -1;
    const had = counts.get(group.cacheClass);
    if (had !== undefined && had !== k) throw new Error(`step class ${group.cacheClass}: groups attend to different row counts (${had}, ${k})`);
    counts.set(group.cacheClass, k);
    if (!rows) return;
    const gathered = gatherRows(cache, `${l}:${g}`, cache.buffers[l][g], rows);
    const cls = plan.count.get(group.cacheClass);
    if (cls && cls.stride !== gathered.stride) throw new Error(`step class ${group.cacheClass}: groups gathered with different strides`);
    plan.count.set(group.cacheClass, { k, stride: gathered.stride });
    plan.groups.set(`${l}:${g}`, gathered);
  }));
  return plan.count.size ? plan : null;
}

/** Slots are added in bands of this many rows. */
const GATHER_BAND = 64;

/**
 * Head j's rows `rows[j]` of `buf` (as many for every head), gathered into the group's slots
 * (`Gathered`, kept in `cache.stepState` under `gather:` + group): rows already in a slot stay.
 */
export function gatherRows(cache: KvCache, group: string, buf: KvBuffer, rows: number[][]): { key: Float32Array; value: Float32Array; k: number; stride: number } {
  const D = buf.headDim;
  const H = buf.heads;
  const k = rows[0].length;
  const id = `gather:${group}`;
  let s = cache.stepState.get(id) as Gathered | undefined;
  const stride = Math.ceil(k / GATHER_BAND) * GATHER_BAND;
  if (!s || s.stride < stride) {
    // New or wider slots: existing slots move to the new stride.
    const key = new Float32Array(H * stride * D);
    const value = new Float32Array(H * stride * D);
    const slotRow = Array.from({ length: H }, () => new Int32Array(stride).fill(-1));
    if (s) {
      for (let j = 0; j < H; j++) {
        key.set(s.key.subarray(j * s.stride * D, (j * s.stride + s.k) * D), j * stride * D);
        value.set(s.value.subarray(j * s.stride * D, (j * s.stride + s.k) * D), j * stride * D);
        slotRow[j].set(s.slotRow[j].subarray(0, s.k));
      }
    }
    s = { key, value, stride, k: s?.k ?? 0, slotRow, wanted: s?.wanted ?? new Int32Array(0), placed: s?.placed ?? new Int32Array(0), stamp: s?.stamp ?? 0 };
    cache.stepState.set(id, s);
  }
  if (s.wanted.length < buf.length) {
    const grow = (a: Int32Array) => {
      const b = new Int32Array(Math.max(buf.length, Math.ceil(a.length * 1.5)));
      b.set(a);
      return b;
    };
    s.wanted = grow(s.wanted);
    s.placed = grow(s.placed);
  }
  const { key, value, wanted, placed } = s;
  const free: number[] = [];
  for (let j = 0; j < H; j++) {
    const headRows = rows[j];
    if (headRows.length !== k) throw new Error('step rows: every head of a group attends to as many rows');
    const stamp = ++s.stamp;
    for (const r of headRows) wanted[r] = stamp;
    const slots = s.slotRow[j];
    free.length = 0;
    for (let slot = 0; slot < k; slot++) {
      const r = slots[slot];
      if (r >= 0 && wanted[r] === stamp && placed[r] !== stamp) placed[r] = stamp;
      else free.push(slot);
    }
    slots.fill(-1, k, Math.max(k, s.k));
    const src = j * buf.capacity * D;
    const dst = j * s.stride * D;
    // Rows that joined go to the free slots in order; runs of consecutive rows into consecutive slots
    // (a chunk into a departed chunk's slots) are one copy each.
    let f = 0;
    let runRow = -1;
    let runSlot = -1;
    let runLen = 0;
    const flush = () => {
      if (!runLen) return;
      key.set(buf.key.subarray(src + runRow * D, src + (runRow + runLen) * D), dst + runSlot * D);
      value.set(buf.value.subarray(src + runRow * D, src + (runRow + runLen) * D), dst + runSlot * D);
      runLen = 0;
    };
    for (const r of headRows) {
      if (placed[r] === stamp) continue;
      const slot = free[f++];
      slots[slot] = r;
      placed[r] = stamp;
      if (runLen && r === runRow + runLen && slot === runSlot + runLen) runLen++;
      else {
        flush();
        runRow = r;
        runSlot = slot;
        runLen = 1;
      }
    }
    flush();
  }
  s.k = k;
  return { key: key.subarray(0, H * s.stride * D), value: value.subarray(0, H * s.stride * D), k, stride: s.stride };
}

/** After a committed call: each layer's last query row ([q, heads, headDim] captures) is kept for the next step. */
export function keepLastQueries(c: ModelConfig, cache: KvCache, out: Record<string, { data: unknown }>, q: number): void {
  const row = c.numHeads * c.headDim;
  cache.lastQuery = Array.from({ length: c.numLayers }, (_, l) => (out[queryHook(l)].data as Float32Array).slice((q - 1) * row, q * row));
}
