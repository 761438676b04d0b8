/**
 * Runs one token sequence many times with head outputs (`blocks.{l}.attn.hook_z`) replaced at chosen
 * positions — the engine under activation patching (`patch.ts`) and head importance (`importance.ts`).
 *
 * The graph's head hooks are per layer and per call: z ↦ s·z + a with s [heads] and a [heads, headDim]
 * for every row of the call (`graph/hooks.ts`). A replacement that differs between positions is
 * therefore run as segments: the sequence is cut wherever some replacement starts, stops or changes
 * value, each segment is one forward call with its own (s, a), and the KV cache carries the patched
 * rows into the later segments — so every later position sees the patched head exactly as in a model
 * with the hook applied at those positions only. The unpatched prefix before the first patched
 * position is shared between runs: the cache is cut back to it after each run (`KvCache.truncate`).
 * Full-history caches only.
 */
import { HeadwiseError } from '../errors.js';
import { NO_HOOKS, type HookOptions } from '../graph/hooks.js';
import { forward, newCache, type HookProvider } from '../runtime/forward.js';
import type { KvCache } from '../runtime/kvCache.js';
import type { GraphSession, Model } from '../runtime/model.js';
import { allLayers } from '../runtime/hookSet.js';

/** A head's output replaced on positions [from, to): by zero, one constant [headDim] vector, or a vector per position. */
export interface HeadPatch {
  layer: number;
  head: number;
  from: number;
  to: number;
  value: 'zero' | Float32Array | ((position: number) => Float32Array);
}

/** Per-head outputs of one run: z(layer) is [positions, heads, headDim]. */
export interface HeadOutputs {
  z: Map<number, Float32Array>;
  logits: Float32Array;
}

export class PatchedRunner {
  private constructor(
    private readonly model: Model,
    private readonly gs: GraphSession,
    private readonly capture: GraphSession,
    private readonly cache: KvCache,
    readonly ids: readonly number[],
  ) {}

  /** A runner over `ids` (BOS included). Compiles (once per model) a graph with head hooks on every layer. */
  static async create(model: Model, ids: readonly number[]): Promise<PatchedRunner> {
    const layout = model.fullLayout();
    const hooks: HookOptions = { ...NO_HOOKS, headHooks: true };
    const gs = await model.session(layout, hooks);
    const capture = await model.session(layout, { ...hooks, captureZ: allLayers(model.config.numLayers) });
    const cache = newCache(model, gs, new Map([['full', { kind: 'full' as const }]]));
    cache.reserve(ids.length);
    return new PatchedRunner(model, gs, capture, cache, ids);
  }

  /** The unpatched run: every layer's hook_z at every position and the logits at `logitsAt`. */
  async outputs(logitsAt: number[]): Promise<HeadOutputs> {
    const cache = newCache(this.model, this.capture, new Map([['full', { kind: 'full' as const }]]));
    const r = await forward(this.model, this.capture, cache, [...this.ids], { logitsAt, commit: false });
    return { z: r.z, logits: r.logits };
  }

  /** Logits [logitsAt.length, vocab] of the sequence with the patches applied. */
  async run(patches: readonly HeadPatch[], logitsAt: number[]): Promise<Float32Array> {
    const T = this.ids.length;
    const { numLayers, numHeads } = this.model.config;
    for (const p of patches) {
      if (!(p.layer >= 0 && p.layer < numLayers && p.head >= 0 && p.head < numHeads)) throw new HeadwiseError(`patch: head ${p.layer}:${p.head} is not in the model`);
      if (!(Number.isInteger(p.from) && Number.isInteger(p.to) && 0 <= p.from && p.from < p.to && p.to <= T)) throw new HeadwiseError(`patch: positions [${p.from}, ${p.to}) are not within the ${T} tokens`);
    }
    for (const r of logitsAt) if (!(Number.isInteger(r) && r >= 0 && r < T)) throw new HeadwiseError(`patch: logits row ${r} is not within the ${T} tokens`);
    const start = Math.min(T - 1, ...patches.map((p) => p.from), ...logitsAt);
    const cuts = new Set<number>([start, T]);
    for (const p of patches) {
      if (typeof p.value === 'function') for (let t = p.from; t <= p.to; t++) cuts.add(t);
      else cuts.add(p.from).add(p.to);
    }
    const bounds = [...cuts].filter((t) => t >= start).sort((a, b) => a - b);
    await this.prefix(start);
    const V = this.model.config.vocabSize;
    const out = new Float32Array(logitsAt.length * V);
    try {
      for (let i = 0; i + 1 < bounds.length; i++) {
        const [a, b] = [bounds[i], bounds[i + 1]];
        const rows = logitsAt.flatMap((r, j) => (r >= a && r < b ? [[r - a, j]] : []));
        const last = b === T;
        // ONNX needs at least one logits row; an unwanted one is computed and dropped.
        const at = rows.length ? rows.map(([r]) => r) : [b - a - 1];
        const res = await forward(this.model, this.gs, this.cache, this.ids.slice(a, b) as number[], { logitsAt: at, hooks: this.hooksFor(patches, a, b), commit: !last });
        if (rows.length) rows.forEach(([, j], k) => out.set(res.logits.subarray(k * V, (k + 1) * V), j * V));
      }
    } finally {
      this.cache.truncate(start);
    }
    return out;
  }

  /** Brings the cache to exactly the unpatched tokens [0, start). */
  private async prefix(start: number): Promise<void> {
    if (this.cache.seen > start) this.cache.truncate(start);
    if (this.cache.seen < start) await forward(this.model, this.gs, this.cache, this.ids.slice(this.cache.seen, start) as number[], { logitsAt: [start - this.cache.seen - 1] });
  }

  /** (s, a) of every layer for the segment [a, b): one value per patch, constant over the segment by construction. */
  private hooksFor(patches: readonly HeadPatch[], a: number, b: number): HookProvider | undefined {
    const { numHeads: H, headDim: D } = this.model.config;
    const scale = new Map<number, Float32Array>();
    const add = new Map<number, Float32Array>();
    for (const p of patches) {
      if (p.to <= a || p.from >= b) continue;
      if (!scale.has(p.layer)) {
        scale.set(p.layer, new Float32Array(H).fill(1));
        add.set(p.layer, new Float32Array(H * D));
      }
      scale.get(p.layer)![p.head] = 0;
      const v = p.value === 'zero' ? null : typeof p.value === 'function' ? p.value(a) : p.value;
      if (v && v.length !== D) throw new HeadwiseError(`patch: value for head ${p.layer}:${p.head} has ${v.length} entries, expected headDim ${D}`);
      if (v) add.get(p.layer)!.set(v, p.head * D);
    }
    if (scale.size === 0) return undefined;
    return { headScale: (l) => scale.get(l) ?? null, headAdd: (l) => add.get(l) ?? null };
  }
}

/** Head `head`'s hook_z at `position` from a [positions, heads, headDim] capture. */
export function headZ(z: Float32Array, position: number, head: number, numHeads: number, headDim: number): Float32Array {
  const at = (position * numHeads + head) * headDim;
  return z.subarray(at, at + headDim);
}
