/**
 * One-token steps on `step` cache classes (LongHeads per step, `kv/classPolicy.ts`): the cache holds
 * every token, and at each one-token step each KV head attends only to the rows its class policy
 * picks (`ClassPolicy.stepRows`). This file owns the mechanics around that rule, used by `forward.ts`:
 * - the picked rows of each group are gathered into one dense [heads, rows, headDim] past input (so
 *   the step's attention reads only them; the class mask shows every gathered row, all earlier than
 *   the query), through a scratch buffer kept per group;
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

/** A step's picked rows: per `layer:group`, each KV head's buffer rows; per class, the row count. */
export interface StepPlan {
  rows: Map<string, number[][]>;
  count: Map<string, number>;
}

/**
 * The rows each group of a step class attends to in a call of `q` tokens, or null when every held
 * row is (no step class, a multi-token call, no query kept yet, or the rule keeps everything).
 */
export function planStep(c: ModelConfig, layout: KvLayout, cache: KvCache, captures: readonly string[] | undefined, q: number): StepPlan | null {
  if (!hasStepClasses(cache.policies)) return null;
  for (let l = 0; l < c.numLayers; l++) {
    if (!captures?.includes(queryHook(l))) throw new HeadwiseError(`a step KV policy (longheads) needs a graph capturing ${queryHook(l)}: compile it with stepQueryHooks`);
  }
  if (q !== 1 || !cache.lastQuery) return null;
  const plan: StepPlan = { rows: new Map(), count: new Map() };
  const D = c.headDim;
  layout.forEach((groups, l) => groups.forEach((group, g) => {
    const policy = cache.policies.get(group.cacheClass)!;
    if (policy.kind !== 'step' || !policy.stepRows) return;
    const heads = groupQueryHeads(group, c.numHeads, c.numKvHeads);
    const last = cache.lastQuery![l];
    const query = new Float32Array(heads.length * D);
    heads.forEach((h, i) => query.set(last.subarray(h * D, (h + 1) * D), i * D));
    const rows = policy.stepRows(cache, l, g, query);
    const k = rows ? rows[0].length : -1;
    const had = plan.count.get(group.cacheClass);
    if (had !== undefined && had !== k) throw new Error(`step class ${group.cacheClass}: groups attend to different row counts (${had}, ${k})`);
    plan.count.set(group.cacheClass, k);
    if (rows) plan.rows.set(`${l}:${g}`, rows);
  }));
  for (const [cls, k] of plan.count) if (k < 0) plan.count.delete(cls);
  return plan.count.size ? plan : null;
}

const scratch = new WeakMap<KvBuffer, { key: Float32Array; value: Float32Array }>();

/** Head j's rows `rows[j]` of `buf`, gathered head-major [heads, rows, headDim] (a per-buffer scratch, valid until the next call). */
export function gatherRows(buf: KvBuffer, rows: number[][]): { key: Float32Array; value: Float32Array } {
  const D = buf.headDim;
  const k = rows[0].length;
  const n = buf.heads * k * D;
  let s = scratch.get(buf);
  if (!s || s.key.length < n) {
    s = { key: new Float32Array(Math.ceil(n * 1.25)), value: new Float32Array(Math.ceil(n * 1.25)) };
    scratch.set(buf, s);
  }
  rows.forEach((headRows, j) => {
    if (headRows.length !== k) throw new Error('step rows: every head of a group attends to as many rows');
    const base = j * buf.capacity * D;
    let to = j * k * D;
    let i = 0;
    while (i < k) {
      // Runs of consecutive rows are one copy each.
      let e = i + 1;
      while (e < k && headRows[e] === headRows[e - 1] + 1) e++;
      const from = base + headRows[i] * D;
      const len = (e - i) * D;
      s!.key.set(buf.key.subarray(from, from + len), to);
      s!.value.set(buf.value.subarray(from, from + len), to);
      to += len;
      i = e;
    }
  });
  return { key: s.key.subarray(0, n), value: s.value.subarray(0, n) };
}

/** After a committed call: each layer's last query row ([q, heads, headDim] captures) is kept for the next step. */
export function keepLastQueries(c: ModelConfig, cache: KvCache, out: Record<string, { data: unknown }>, q: number): void {
  const row = c.numHeads * c.headDim;
  cache.lastQuery = Array.from({ length: c.numLayers }, (_, l) => (out[queryHook(l)].data as Float32Array).slice((q - 1) * row, q * row));
}
