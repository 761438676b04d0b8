/**
 * One forward pass of new tokens on top of a KV cache: builds masks for each cache class (causal,
 * plus sink/window visibility), feeds the past buffers and hook inputs, runs the graph, hands the
 * present buffers back to the cache (which evicts per policy), and returns logits and captures.
 * Prefill and decode are the same call; prefill just passes many tokens.
 */
import type * as ortTypes from 'onnxruntime-node';
import { HeadwiseError } from '../errors.js';
import { hookNames as N, INPUT_IDS, LOGITS, LOGITS_AT, POSITION_IDS } from '../graph/hooks.js';
import { groupQueryHeads, layoutClasses } from '../graph/layout.js';
import { KvCache } from './kvCache.js';
import type { GraphSession, Model } from './model.js';
import { ort } from './ort.js';

const NEG = -1e30;

/** Supplies hook inputs for one forward pass; any method may be absent or return null (= no-op). */
export interface HookProvider {
  /** [numHeads] output scale of each head. */
  headScale?(layer: number): Float32Array | null;
  /** [numHeads * headDim] added to each head's output. */
  headAdd?(layer: number): Float32Array | null;
  /** [heads.length * queries * keys] additive pre-softmax bias for the listed query heads. */
  scoreBias?(layer: number, heads: number[], queryPositions: Int32Array, keyPositions: Int32Array): Float32Array | null;
  /** ACT: mask over keys [heads.length * keys] and β per head. */
  act?(layer: number, heads: number[], keyPositions: Int32Array): { mask: Float32Array; beta: Float32Array } | null;
}

/** Captured attention of one KV-head group of one layer. */
export interface GroupPattern {
  layer: number;
  /** Query heads, in the order of `data`'s first axis. */
  heads: number[];
  /** Absolute positions of the captured query rows. */
  queryPositions: Int32Array;
  /** Absolute positions of the keys (columns). */
  keyPositions: Int32Array;
  /** [heads, rows, keys] */
  data: Float32Array;
}

export interface ForwardOptions {
  /** Indices within `ids` whose next-token logits are returned (default: the last). */
  logitsAt?: number[];
  /** Indices within `ids` whose attention rows are captured, on layers compiled with capture. */
  captureRows?: number[];
  hooks?: HookProvider;
}

export interface ForwardResult {
  /** [logitsAt.length, vocab] */
  logits: Float32Array;
  vocab: number;
  patterns: GroupPattern[];
  /** [layer] -> [queries, heads, headDim] where compiled. */
  z: Map<number, Float32Array>;
}

export function newCache(model: Model, gs: GraphSession, policies: KvCache['policies']): KvCache {
  return new KvCache(gs.layout, policies, model.config.headDim);
}

export async function forward(model: Model, gs: GraphSession, cache: KvCache, ids: number[], opts: ForwardOptions = {}): Promise<ForwardResult> {
  const c = model.config;
  const q = ids.length;
  if (q === 0) throw new HeadwiseError('forward: no tokens to process');
  const start = cache.seen;
  if (start + q > c.maxPositions) {
    throw new HeadwiseError(`prompt of ${start + q} tokens is longer than the model's context of ${c.maxPositions} tokens`);
  }
  for (const id of ids) if (!Number.isInteger(id) || id < 0 || id >= c.vocabSize) throw new HeadwiseError(`token id ${id} is outside the vocabulary (0..${c.vocabSize - 1})`);
  const newPositions = Array.from({ length: q }, (_, i) => start + i);
  const queryPos = Int32Array.from(newPositions);
  const logitsAt = opts.logitsAt ?? [q - 1];
  const feeds: Record<string, ortTypes.Tensor> = {
    [INPUT_IDS]: i64(ids, [q]),
    [POSITION_IDS]: i64(newPositions, [q]),
    [LOGITS_AT]: i64(logitsAt, [logitsAt.length]),
  };
  const keyPos = new Map<string, Int32Array>();
  for (const cls of layoutClasses(gs.layout)) {
    const keys = Int32Array.from([...cache.positions.get(cls)!, ...newPositions]);
    keyPos.set(cls, keys);
    const policy = cache.policies.get(cls)!;
    const mask = new Float32Array(q * keys.length);
    for (let t = 0; t < q; t++) {
      for (let s = 0; s < keys.length; s++) if (!KvCache.visible(policy, queryPos[t], keys[s])) mask[t * keys.length + s] = NEG;
    }
    feeds[N.mask(cls)] = new ort.Tensor('float32', mask, [q, keys.length]);
  }
  const H = c.numHeads;
  const D = c.headDim;
  const hooks = gs.hooks;
  const captureRows = opts.captureRows ?? [];
  gs.layout.forEach((groups, l) => {
    groups.forEach((group, g) => {
      const buf = cache.buffers[l][g];
      const nkv = group.kvHeads.length;
      feeds[N.pastKey(l, g)] = new ort.Tensor('float32', buf.key, [nkv, buf.length, D]);
      feeds[N.pastValue(l, g)] = new ort.Tensor('float32', buf.value, [nkv, buf.length, D]);
      const heads = groupQueryHeads(group, H, c.numKvHeads);
      const keys = keyPos.get(group.cacheClass)!;
      if (hooks.scoreBias.includes(l)) {
        const bias = opts.hooks?.scoreBias?.(l, heads, queryPos, keys) ?? new Float32Array(heads.length * q * keys.length);
        feeds[N.scoreBias(l, g)] = new ort.Tensor('float32', bias, [heads.length, q, keys.length]);
      }
      if (hooks.act.includes(l)) {
        const act = opts.hooks?.act?.(l, heads, keys) ?? { mask: new Float32Array(heads.length * keys.length), beta: new Float32Array(heads.length).fill(1) };
        feeds[N.actMask(l, g)] = new ort.Tensor('float32', act.mask, [heads.length, 1, keys.length]);
        feeds[N.actBeta(l, g)] = new ort.Tensor('float32', act.beta, [heads.length, 1, 1]);
      }
    });
    if (hooks.capturePattern.includes(l)) feeds[N.captureRows(l)] = i64(captureRows, [captureRows.length]);
    if (hooks.headHooks) {
      feeds[N.headScale(l)] = new ort.Tensor('float32', opts.hooks?.headScale?.(l) ?? new Float32Array(H).fill(1), [H]);
      feeds[N.headAdd(l)] = new ort.Tensor('float32', opts.hooks?.headAdd?.(l) ?? new Float32Array(H * D), [H, D]);
    }
  });

  const out = await gs.session.run(feeds);
  const presents = gs.layout.map((groups, l) =>
    groups.map((_, g) => ({ key: out[N.presentKey(l, g)].data as Float32Array, value: out[N.presentValue(l, g)].data as Float32Array })),
  );
  const patterns: GroupPattern[] = [];
  const z = new Map<number, Float32Array>();
  gs.layout.forEach((groups, l) => {
    if (hooks.capturePattern.includes(l)) {
      groups.forEach((group, g) => {
        patterns.push({
          layer: l,
          heads: groupQueryHeads(group, H, c.numKvHeads),
          queryPositions: Int32Array.from(captureRows, (r) => start + r),
          keyPositions: keyPos.get(group.cacheClass)!,
          data: out[N.pattern(l, g)].data as Float32Array,
        });
      });
    }
    if (hooks.captureZ.includes(l)) z.set(l, out[N.z(l)].data as Float32Array);
  });
  cache.update(presents, newPositions);
  return { logits: out[LOGITS].data as Float32Array, vocab: c.vocabSize, patterns, z };
}

function i64(values: ArrayLike<number>, dims: number[]): ortTypes.Tensor {
  return new ort.Tensor('int64', BigInt64Array.from(Array.from(values, (v) => BigInt(v))), dims);
}
