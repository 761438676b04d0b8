/**
 * KV mode `present` (the webgpu path): a cache's keys and values live as ONNX Runtime tensors,
 * [1, groupKvHeads, tokens, headDim] (GroupQueryAttention's layout), one pair per (layer, KV-head group). On webgpu they are
 * the GPU buffers the graph returned as `present_key/value.{l}.{g}`, fed straight back as the next
 * step's `past_key/value.{l}.{g}`: never downloaded. Window policies evict on the device too: one run
 * of a tiny Gather session per cache class picks the kept positions of all that class's groups.
 *
 * They are float32, or float16 where the graph computes in half precision (`GraphSession.kvType`,
 * `graph/half.ts`): half the bytes, fed back as they came out.
 *
 * The tensors hang off a plain `KvCache` (which keeps positions, `seen` and policies), so code that
 * makes a KvCache and calls `forward()` works the same on either device. `cache.deviceBytes` holds
 * their size for `kvBytes`. Old tensors are disposed as soon as they are replaced; a cache's last
 * tensors are disposed by `disposeDeviceKv` or, failing that, when the cache is garbage-collected.
 */
import type * as ortTypes from 'onnxruntime-node';
import { GraphBuilder } from '../graph/builder.js';
import { hookNames as N } from '../graph/hooks.js';
import { DataType } from '../graph/onnxProto.js';
import { KvCache } from './kvCache.js';
import type { GraphSession, Model } from './model.js';
import { ort } from './ort.js';

type Pair = { key: ortTypes.Tensor; value: ortTypes.Tensor };
type KvType = GraphSession['kvType'];

interface DeviceKv {
  /** [layer][group] */
  pairs: Pair[][];
  /** `cache.seen` when `pairs` were taken: a cache reset since (`KvCache.reset`) drops them. */
  seen: number;
}

const states = new WeakMap<KvCache, DeviceKv>();
const finalizer = new FinalizationRegistry<DeviceKv>((s) => disposeState(s));

function disposeState(s: DeviceKv): void {
  for (const groups of s.pairs) for (const p of groups) {
    p.key.dispose();
    p.value.dispose();
  }
  s.pairs = [];
}

function bytesOf(t: ortTypes.Tensor): number {
  return t.dims.reduce((a, b) => a * b, 1) * (t.type === 'float16' ? 2 : 4);
}

/** An empty past per (layer, group): [1, nkv, 0, D] CPU tensors (Concat and GQA take them on every execution provider). */
function emptyPairs(cache: KvCache, headDim: number, type: KvType): Pair[][] {
  const empty = (nkv: number) => (type === 'float16' ? new ort.Tensor('float16', new Uint16Array(0), [1, nkv, 0, headDim]) : new ort.Tensor('float32', new Float32Array(0), [1, nkv, 0, headDim]));
  return cache.layout.map((groups) => groups.map((g) => ({ key: empty(g.kvHeads.length), value: empty(g.kvHeads.length) })));
}

function stateOf(cache: KvCache, headDim: number, type: KvType): DeviceKv {
  let s = states.get(cache);
  if (!s) {
    if (cache.seen > 0 && cache.deviceBytes === null) throw new Error('a KV cache filled in append mode cannot continue in present mode');
    s = { pairs: emptyPairs(cache, headDim, type), seen: 0 };
    states.set(cache, s);
    finalizer.register(cache, s, s);
    cache.deviceBytes = 0;
  } else if (s.seen !== cache.seen) {
    if (cache.seen !== 0) throw new Error(`KV cache at ${cache.seen} tokens but its device tensors hold ${s.seen}`);
    // Reset (the next prompt of an evaluation): free the old tensors now, start from an empty past.
    disposeState(s);
    s.pairs = emptyPairs(cache, headDim, type);
    s.seen = 0;
  }
  return s;
}

/** The `past_key/value` feeds of a present-mode graph for this cache. */
export function presentPastFeeds(cache: KvCache, headDim: number, type: KvType = 'float32'): Record<string, ortTypes.Tensor> {
  const s = stateOf(cache, headDim, type);
  const feeds: Record<string, ortTypes.Tensor> = {};
  s.pairs.forEach((groups, l) => groups.forEach((p, g) => {
    feeds[N.pastKey(l, g)] = p.key;
    feeds[N.pastValue(l, g)] = p.value;
  }));
  return feeds;
}

/**
 * Takes a present-mode run's `present_*` outputs as the cache's new contents (or disposes them when
 * `commit` is false), evicting what window policies drop, on the device.
 */
export async function takePresent(model: Model, gs: GraphSession, cache: KvCache, out: ortTypes.InferenceSession.OnnxValueMapType, newPositions: number[], commit: boolean): Promise<void> {
  const s = stateOf(cache, model.config.headDim, gs.kvType);
  const fresh: Pair[][] = gs.layout.map((groups, l) => groups.map((_, g) => ({ key: out[N.presentKey(l, g)], value: out[N.presentValue(l, g)] })));
  if (!commit) {
    for (const groups of fresh) for (const p of groups) {
      p.key.dispose();
      p.value.dispose();
    }
    return;
  }
  // Which of [old positions..., new positions...] each class keeps (the class policy's rule, as in KvCache.update).
  const keep = new Map<string, number[] | null>();
  for (const [cls, policy] of cache.policies) {
    const all = [...cache.positions.get(cls)!, ...newPositions];
    if (policy.kind === 'full') {
      keep.set(cls, null);
      cache.positions.set(cls, all);
      continue;
    }
    const last = newPositions[newPositions.length - 1];
    const kept = all.flatMap((p, i) => (policy.keeps(p, last) ? [i] : []));
    keep.set(cls, kept.length === all.length ? null : kept);
    cache.positions.set(cls, kept.map((i) => all[i]));
  }
  for (const [cls, idx] of keep) {
    if (!idx) continue;
    const slots: [number, number][] = [];
    gs.layout.forEach((groups, l) => groups.forEach((group, g) => {
      if (group.cacheClass === cls) slots.push([l, g]);
    }));
    if (!slots.length) continue;
    const evict = await evictor(model, 2 * slots.length, gs.kvType);
    const feeds: Record<string, ortTypes.Tensor> = { keep: new ort.Tensor('int64', BigInt64Array.from(idx, BigInt), [idx.length]) };
    slots.forEach(([l, g], i) => {
      feeds[`x${2 * i}`] = fresh[l][g].key;
      feeds[`x${2 * i + 1}`] = fresh[l][g].value;
    });
    const kept = await evict.run(feeds);
    slots.forEach(([l, g], i) => {
      fresh[l][g].key.dispose();
      fresh[l][g].value.dispose();
      fresh[l][g] = { key: kept[`y${2 * i}`], value: kept[`y${2 * i + 1}`] };
    });
  }
  disposeState(s);
  s.pairs = fresh;
  let bytes = 0;
  for (const groups of fresh) for (const p of groups) bytes += bytesOf(p.key) + bytesOf(p.value);
  cache.deviceBytes = bytes;
  cache.seen += newPositions.length;
  s.seen = cache.seen;
}

/** Where each of a present-mode cache's tensors lives ('gpu-buffer' on webgpu, 'cpu' before the first step or on cpu). */
export function deviceKvLocations(cache: KvCache): string[] {
  return (states.get(cache)?.pairs ?? []).flatMap((groups) => groups.flatMap((p) => [p.key.location, p.value.location]));
}

/** Frees a present-mode cache's tensors now (the cache must not be used afterwards). */
export function disposeDeviceKv(cache: KvCache): void {
  const s = states.get(cache);
  if (!s) return;
  finalizer.unregister(s);
  disposeState(s);
  states.delete(cache);
  cache.deviceBytes = 0;
}

/** Session: y{i} = Gather(x{i}, keep, axis 2: tokens) for n [1, nkv, tokens, D] tensors of the KV type; outputs stay on the device. */
function evictor(model: Model, n: number, type: KvType): Promise<ortTypes.InferenceSession> {
  const elem = type === 'float16' ? DataType.FLOAT16 : DataType.FLOAT;
  return model.auxSession(`evict4-${n}${type === 'float16' ? '-f16' : ''}`, () => {
    const b = new GraphBuilder('headwise-kv-evict');
    const keep = b.input('keep', DataType.INT64, ['k']);
    for (let i = 0; i < n; i++) {
      const x = b.input(`x${i}`, elem, [1, `h${i}`, 'n', 'd']);
      b.output(b.gather(x, keep, 2), `y${i}`, elem, [1, `h${i}`, 'k', 'd']);
    }
    return b;
  }, Array.from({ length: n }, (_, i) => `y${i}`));
}
