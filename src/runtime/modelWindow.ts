/**
 * A model's own sliding windows (Mistral, Qwen2, Gemma 2/3, StarCoder2, ...) as cache classes: each
 * window layer's groups move to a class whose policy keeps at most the window's rows — a query at t
 * sees keys s with t − s < window, as transformers masks it — composed with whatever the KV policy
 * keeps (a query sees the intersection). So the window is a memory bound too: a window layer's
 * buffers never hold more than its window, evicted like the streaming policy's.
 * Applied once to every cache setup (`kv/policy.ts` cacheSetup, `runtime/generate.ts` fullCache);
 * `newCache` refuses a setup that leaves a window layer unbounded.
 */
import { HeadwiseError } from '../errors.js';
import type { ModelConfig } from '../hf/config.js';
import type { KvLayout } from '../graph/layout.js';
import type { ClassPolicy } from './kvCache.js';

export interface WindowedSetup {
  layout: KvLayout;
  policies: Map<string, ClassPolicy>;
}

/** Cache class of class `cls` on a layer with sliding window `window`. */
export const windowClass = (cls: string, window: number): string => `${cls}@w${window}`;

/** `policy` restricted to keys within `window` of the query. */
export function withinWindow(policy: ClassPolicy, window: number): ClassPolicy {
  if (policy.kind === 'full') return { kind: 'window', sink: 0, window };
  // Sinks farther back than the window are invisible too: `limit` bounds them (kvCache.ts).
  if (policy.sink === 0 || policy.window >= window) return { ...policy, sink: 0, window: Math.min(policy.window, window) };
  return { ...policy, limit: window };
}

export function applyModelWindows<S extends WindowedSetup>(setup: S, config: ModelConfig): S {
  if (config.layerWindows.every((w) => w === null)) return setup;
  const policies = new Map(setup.policies);
  const layout = setup.layout.map((groups, l) => {
    const window = config.layerWindows[l];
    if (window === null) return groups;
    return groups.map((g) => {
      const cls = windowClass(g.cacheClass, window);
      if (!policies.has(cls)) policies.set(cls, withinWindow(setup.policies.get(g.cacheClass)!, window));
      return { ...g, cacheClass: cls, pastInput: 'group' as const };
    });
  });
  // Classes no layer uses any more (e.g. "full" when every layer has a window) are dropped.
  const used = new Set(layout.flatMap((groups) => groups.map((g) => g.cacheClass)));
  for (const cls of [...policies.keys()]) if (!used.has(cls)) policies.delete(cls);
  return { ...setup, layout, policies };
}

/** Refuses a cache setup in which a sliding-window layer's cache would see past its window. */
export function checkModelWindows(config: ModelConfig, layout: KvLayout, policies: Map<string, ClassPolicy>): void {
  layout.forEach((groups, l) => {
    const window = config.layerWindows[l];
    if (window === null) return;
    for (const g of groups) {
      const p = policies.get(g.cacheClass);
      const bounded = p && p.kind === 'window' && (p.limit ?? (p.sink === 0 ? p.window : Infinity)) <= window;
      if (!bounded) throw new HeadwiseError(`layer ${l} has a sliding window of ${window} tokens but its cache class "${g.cacheClass}" sees further: build the cache setup with applyModelWindows (runtime/modelWindow.ts)`);
    }
  });
}

/** The KV policy's class a (possibly window-restricted) class came from: `full@w8` -> `full`. */
export const baseClass = (cls: string): string => cls.split('@')[0];
