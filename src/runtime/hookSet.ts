/**
 * Combining hooks: a runner that adds its own hook inputs (the atlas's streaming mask and ablations,
 * the NIAH validation's zeroed heads) on top of the caller's (an intervention from `interventions/`)
 * needs a graph with the hook points of both and a provider that feeds both. This file owns those two
 * unions; what each hook means is `graph/hooks.ts` and `runtime/forward.ts`.
 */
import { HeadwiseError } from '../errors.js';
import type { HookOptions } from '../graph/hooks.js';
import type { HookProvider } from './forward.js';

/** Hook points of every option set (layers merged, sorted). */
export function unionHookOptions(...sets: (HookOptions | undefined)[]): HookOptions {
  const layers = (pick: (h: HookOptions) => number[]) => [...new Set(sets.flatMap((h) => (h ? pick(h) : [])))].sort((a, b) => a - b);
  return {
    capturePattern: layers((h) => h.capturePattern),
    captureZ: layers((h) => h.captureZ),
    headHooks: sets.some((h) => h?.headHooks),
    scoreBias: layers((h) => h.scoreBias),
    act: layers((h) => h.act),
    capture: [...new Set(sets.flatMap((h) => h?.capture ?? []))].sort(),
    logitLens: sets.some((h) => h?.logitLens),
  };
}

/** All layers 0..n−1, for hook options that cover the whole model. */
export function allLayers(numLayers: number): number[] {
  return Array.from({ length: numLayers }, (_, l) => l);
}

/**
 * One provider that applies `first`, then `second`. Head outputs compose as affine maps z ↦ s·z + a:
 * (s₁, a₁) then (s₂, a₂) is (s₁s₂, s₂a₁ + a₂), so a head zeroed by `second` stays zero whatever `first`
 * did. Score biases add. ACT inputs come from at most one of them (two is an error).
 */
export function combineHookProviders(first: HookProvider | undefined, second: HookProvider | undefined): HookProvider | undefined {
  if (!first) return second;
  if (!second) return first;
  return {
    headScale(layer) {
      const a = first.headScale?.(layer) ?? null;
      const b = second.headScale?.(layer) ?? null;
      if (!a || !b) return a ?? b;
      return a.map((x, h) => x * b[h]);
    },
    rowScale(layer) {
      const a = first.rowScale?.(layer) ?? null;
      const b = second.rowScale?.(layer) ?? null;
      if (!a || !b) return a ?? b;
      if (a.length !== b.length) throw new HeadwiseError(`row scales of layer ${layer} cover different rows (${a.length} and ${b.length} values)`);
      return a.map((x, i) => x * b[i]);
    },
    headAdd(layer) {
      const a = first.headAdd?.(layer) ?? null;
      const b = second.headAdd?.(layer) ?? null;
      if (!a) return b;
      // s₂·a₁ would differ per row: not an [heads, headDim] addition.
      if (second.rowScale?.(layer)) throw new HeadwiseError(`layer ${layer}: an addition to head outputs cannot be followed by a per-row head scale`);
      const s = second.headScale?.(layer) ?? null;
      const headDim = a.length / (s?.length ?? 1);
      const out = a.map((x, i) => (s ? s[Math.floor(i / headDim)] : 1) * x);
      if (b) for (let i = 0; i < out.length; i++) out[i] += b[i];
      return out;
    },
    scoreBias(layer, heads, queryPositions, keyPositions) {
      const a = first.scoreBias?.(layer, heads, queryPositions, keyPositions) ?? null;
      const b = second.scoreBias?.(layer, heads, queryPositions, keyPositions) ?? null;
      if (!a || !b) return a ?? b;
      return a.map((x, i) => x + b[i]);
    },
    act(layer, heads, keyPositions) {
      const a = first.act?.(layer, heads, keyPositions) ?? null;
      const b = second.act?.(layer, heads, keyPositions) ?? null;
      if (a && b) throw new HeadwiseError(`two ACT calibrations on layer ${layer}: combine them into one intervention`);
      return a ?? b;
    },
  };
}

/** A provider that zeroes the output of the listed heads (scale 0 before o_proj). Needs `headHooks`. */
export function zeroHeads(heads: readonly { layer: number; head: number }[], numHeads: number): HookProvider {
  const byLayer = new Map<number, Float32Array>();
  for (const { layer, head } of heads) {
    let s = byLayer.get(layer);
    if (!s) byLayer.set(layer, (s = new Float32Array(numHeads).fill(1)));
    s[head] = 0;
  }
  return { headScale: (layer) => byLayer.get(layer) ?? null };
}

/**
 * Branch b of a `forward` call with `branches` (rows b·n .. b·n+n−1) zeroes head `heads[b]` of
 * `layer`: one graph run ablates many heads, each on its own copy of the rows. Needs `headHooks`.
 */
export function zeroHeadPerBranch(layer: number, heads: readonly number[], n: number, numHeads: number): HookProvider {
  const q = heads.length * n;
  const scale = new Float32Array(numHeads * q).fill(1);
  heads.forEach((h, b) => scale.fill(0, h * q + b * n, h * q + (b + 1) * n));
  return { rowScale: (l) => (l === layer ? scale : null) };
}

/** Hook points and the provider that feeds them, for one prompt. */
export interface PromptHooks {
  hookOptions: HookOptions;
  hooks: HookProvider;
}

/**
 * Binds hooks to one prompt, for interventions that depend on it (PASTA's highlighted spans, ACT's
 * sink masks): runners over many prompts (NIAH, the atlas) call it once per prompt.
 */
export type HookBinder = (ids: number[], prompt: string) => Promise<PromptHooks>;

/** `bound` (a prompt's intervention) then the runner's own hooks, as one set. */
export function withBound(bound: PromptHooks | null, hookOptions: HookOptions | undefined, hooks: HookProvider | undefined): { hookOptions: HookOptions | undefined; hooks: HookProvider | undefined } {
  if (!bound) return { hookOptions, hooks };
  return { hookOptions: unionHookOptions(bound.hookOptions, hookOptions), hooks: combineHookProviders(bound.hooks, hooks) };
}
