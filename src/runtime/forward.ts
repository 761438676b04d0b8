/**
 * One forward pass of new tokens on top of a KV cache: builds masks for each cache class (causal,
 * plus sink/window visibility), feeds the past buffers and hook inputs, runs the graph, hands the
 * present buffers back to the cache (which evicts per policy), and returns logits and captures.
 * Prefill and decode are the same call; prefill just passes many tokens.
 */
import type * as ortTypes from 'onnxruntime-node';
import { HeadwiseError } from '../errors.js';
import { hookNames as N, INPUT_IDS, LOGITS, LOGITS_AT, logitLensName, POINT_IN, POINT_OUT, POSITION_IDS, RESID_IN, RESID_OUT, scoresOutput } from '../graph/hooks.js';
import { groupQueryHeads, layoutClasses } from '../graph/layout.js';
import { presentPastFeeds, takePresent } from './deviceKv.js';
import { COMPENSATION_POSITION, KvCache, SELECTED_POSITION } from './kvCache.js';
import { checkModelWindows } from './modelWindow.js';
import { hasStepClasses, keepLastQueries, planStep } from './stepAttention.js';
import type { GraphSession, Model } from './model.js';
import { ort } from './ort.js';

const NEG = -1e30;

/** Supplies hook inputs for one forward pass; any method may be absent or return null (= no-op). */
export interface HookProvider {
  /** [numHeads] output scale of each head. */
  headScale?(layer: number): Float32Array | null;
  /** [numHeads, rows] (head-major) output scale of each head on each row of this call, times `headScale`. */
  rowScale?(layer: number): Float32Array | null;
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
  /**
   * Append this call's tokens to the cache (default true). With false the cache is left as it was,
   * so several variants (e.g. one per ablated head) can be run on top of one shared prefix.
   */
  commit?: boolean;
  /**
   * Runs `ids` as this many equal-length continuations of the cache side by side (default 1): branch b
   * is `ids[b·n, (b+1)·n)`, at positions `seen .. seen+n−1`, and sees the cache and its own earlier
   * tokens only. Variants that differ only in per-row hook inputs (a score bias on different heads)
   * then share one graph run. `logitsAt` and `captureRows` index the concatenation; captured
   * `keyPositions` list the cache's positions, then every branch's. Needs `commit: false`.
   */
  branches?: number;
  /** Segment graphs (`HookOptions.segment` with `residIn`): the residual stream [q, hidden] entering the segment. */
  residIn?: Float32Array;
  /** Segment graphs starting inside a block (`segment.fromPoint`): the value at that point. */
  pointIn?: Float32Array;
  /**
   * Return the logits as the session's output tensor (`ForwardResult.logitsTensor`, which the caller
   * must dispose) instead of a host array: on a session made with `deviceLogits` (webgpu) it stays a
   * GPU buffer, to be fed to another session (the atlas's KL) without a download.
   */
  logitsOnDevice?: boolean;
}

export interface ForwardResult {
  /** [logitsAt.length, vocab]; empty with `logitsOnDevice`. */
  logits: Float32Array;
  /** With `logitsOnDevice`: the logits [logitsAt.length, vocab] as ONNX Runtime returned them (the caller disposes it). */
  logitsTensor?: ortTypes.Tensor;
  vocab: number;
  patterns: GroupPattern[];
  /** [layer] -> [queries, heads, headDim] where compiled. */
  z: Map<number, Float32Array>;
  /**
   * Read-only hook points compiled in (`HookOptions.capture`, `logitLens`), by graph output name
   * (`graph/hooks.ts`); scores keep their group suffix, with pad and slack columns dropped.
   */
  captured: Map<string, Float32Array>;
}

export function newCache(model: Model, gs: GraphSession, policies: KvCache['policies']): KvCache {
  checkModelWindows(model.config, gs.layout, policies);
  const cache = new KvCache(gs.layout, policies, model.config.headDim);
  // Present mode keeps K/V as device tensors: no CPU buffers to reserve.
  if (gs.kvMode === 'present') cache.deviceBytes = 0;
  return cache;
}

export async function forward(model: Model, gs: GraphSession, cache: KvCache, ids: number[], opts: ForwardOptions = {}): Promise<ForwardResult> {
  const c = model.config;
  const q = ids.length;
  if (q === 0) throw new HeadwiseError('forward: no tokens to process');
  const branches = opts.branches ?? 1;
  if (!Number.isInteger(branches) || branches < 1 || q % branches !== 0) throw new HeadwiseError(`forward: ${q} tokens do not split into ${branches} branches`);
  if (branches > 1 && (opts.commit ?? true)) throw new HeadwiseError('forward: branches need commit: false');
  const n = q / branches;
  const start = cache.seen;
  if (start + n > c.maxPositions) {
    throw new HeadwiseError(`prompt of ${start + n} tokens is longer than the model's context of ${c.maxPositions} tokens`);
  }
  for (const id of ids) if (!Number.isInteger(id) || id < 0 || id >= c.vocabSize) throw new HeadwiseError(`token id ${id} is outside the vocabulary (0..${c.vocabSize - 1})`);
  const newPositions = Array.from({ length: q }, (_, i) => start + (i % n));
  const queryPos = Int32Array.from(newPositions);
  const logitsAt = opts.logitsAt ?? [q - 1];
  const feeds: Record<string, ortTypes.Tensor> = {
    [INPUT_IDS]: i64(ids, [q]),
    [POSITION_IDS]: i64(newPositions, [q]),
    [LOGITS_AT]: i64(logitsAt, [logitsAt.length]),
  };
  const keyPos = new Map<string, Int32Array>();
  // KV mode `present` (webgpu): the cache is device tensors fed back as they came out (`deviceKv.ts`).
  const present = gs.kvMode === 'present';
  if (present && cache.compensated.size) throw new HeadwiseError('the RazorAttention compensation token is not supported in KV mode present (webgpu) yet');
  if (present && [...cache.policies.values()].some((p) => p.kind === 'select' || p.kind === 'step')) throw new HeadwiseError('selection KV policies (snapkv, headkv, longheads, longheads-static) are not supported in KV mode present (webgpu) yet');
  // Step classes (LongHeads per step): the rows each KV head attends to in this call (`stepAttention.ts`).
  const step = present ? null : planStep(c, gs.layout, cache, gs.hooks.capture, q);
  // How each class's past reaches the graph: `pad` — ONNX Runtime's matmul does not take an empty past,
  // so a class with nothing cached is fed one zero row; then the held rows; then `slack` unfilled rows
  // of banded buffers read in place (kvCache.ts); then the new tokens. Pad and slack columns are masked,
  // dropped from captures and given zeros in hook inputs. (Present mode concatenates first: no pad.)
  const shape = new Map<string, { past: number; pad: number; slack: number }>();
  for (const cls of gs.causalClasses) checkCausal(gs, cache, cls, branches);
  for (const cls of layoutClasses(gs.layout)) {
    const picked = step?.count.get(cls);
    // Rows gathered for a step: all earlier than the query, so all visible; unused slots are slack.
    const held = picked === undefined ? cache.positions.get(cls)! : new Array<number>(picked.k).fill(SELECTED_POSITION);
    const past = held.length;
    const keys = new Int32Array(past + q);
    keys.set(held);
    keys.set(newPositions, past);
    keyPos.set(cls, keys);
    const pad = past === 0 && !present ? 1 : 0;
    const slack = picked !== undefined ? stepSlack(gs, cls, picked) : present || past === 0 ? 0 : bandSlack(gs, cache, cls, past);
    shape.set(cls, { past, pad, slack });
    const policy = cache.policies.get(cls)!;
    const K = pad + past + slack + q;
    const newAt = pad + past + slack;
    const mask = new Float32Array(q * K);
    for (let t = 0; t < q; t++) {
      const row = t * K;
      if (pad) mask[row] = NEG;
      // Full history: every cached key precedes every query, so only the new tokens need checking.
      if (policy.kind !== 'full') {
        for (let s = 0; s < past; s++) {
          const p = keys[s];
          const visible = p === COMPENSATION_POSITION ? cache.compensated.get(cls)! > 0 : p === SELECTED_POSITION || policy.sees(queryPos[t], p);
          if (!visible) mask[row + pad + s] = NEG;
        }
      }
      mask.fill(NEG, row + pad + past, row + newAt);
      for (let s = past; s < keys.length; s++) if (!policy.sees(queryPos[t], keys[s])) mask[row + newAt + s - past] = NEG;
      if (branches > 1) {
        // Other branches' tokens are invisible.
        const b = Math.floor(t / n);
        for (let s = past; s < keys.length; s++) if (Math.floor((s - past) / n) !== b) mask[row + newAt + s - past] = NEG;
      }
    }
    // A causal class (`Model.session`'s causalClasses) has a mask input only if a hooked layer reads it.
    if (!gs.causalClasses.includes(cls) || gs.session.inputNames.includes(N.mask(cls))) feeds[N.mask(cls)] = new ort.Tensor('float32', mask, [q, K]);
    // Fused attention layers (graph/fusedAttention.ts) take the key count as int32.
    if (present && gs.session.inputNames.includes(N.attnTotalLength(cls))) {
      feeds[N.attnSeqlensK(cls)] = new ort.Tensor('int32', Int32Array.of(K - 1), [1]);
      feeds[N.attnTotalLength(cls)] = new ort.Tensor('int32', Int32Array.of(K), []);
    }
  }
  const H = c.numHeads;
  const D = c.headDim;
  const hooks = gs.hooks;
  const captureRows = opts.captureRows ?? [];
  cache.kvBytesAttended = 0;
  if (present) Object.assign(feeds, presentPastFeeds(cache, D, gs.kvType));
  gs.layout.forEach((groups, l) => {
    groups.forEach((group, g) => {
      const buf = cache.buffers[l][g];
      const nkv = group.kvHeads.length;
      const sh = shape.get(group.cacheClass)!;
      const gathered = step?.groups.get(`${l}:${g}`);
      cache.kvBytesAttended += 2 * nkv * (sh.past + q) * D * (gs.kvType === 'float16' ? 2 : 4);
      if (gathered) {
        const { key, value, k, stride } = gathered;
        if (group.pastInput !== 'head' && sh.slack === stride - k) {
          feeds[N.pastKey(l, g)] = new ort.Tensor('float32', key, [nkv, stride, D]);
          feeds[N.pastValue(l, g)] = new ort.Tensor('float32', value, [nkv, stride, D]);
        } else if (group.pastInput !== 'head') {
          // A class that also has per-head inputs is fed without slack: compact copies.
          const ck = new Float32Array(nkv * k * D);
          const cv = new Float32Array(nkv * k * D);
          for (let j = 0; j < nkv; j++) {
            ck.set(key.subarray(j * stride * D, (j * stride + k) * D), j * k * D);
            cv.set(value.subarray(j * stride * D, (j * stride + k) * D), j * k * D);
          }
          feeds[N.pastKey(l, g)] = new ort.Tensor('float32', ck, [nkv, k, D]);
          feeds[N.pastValue(l, g)] = new ort.Tensor('float32', cv, [nkv, k, D]);
        } else {
          for (let j = 0; j < nkv; j++) {
            feeds[N.pastKeyHead(l, g, j)] = new ort.Tensor('float32', key.subarray(j * stride * D, (j * stride + k) * D), [k, D]);
            feeds[N.pastValueHead(l, g, j)] = new ort.Tensor('float32', value.subarray(j * stride * D, (j * stride + k) * D), [k, D]);
          }
        }
      } else if (!present && group.pastInput !== 'head') {
        const rows = sh.past + sh.slack;
        // In place where the blocks are exactly the rows fed (banded, or a full window buffer), else a compact copy.
        const inPlace = buf.capacity === rows;
        const k = sh.pad ? new Float32Array(nkv * D) : inPlace ? buf.blockKeys() : buf.groupKeys();
        const v = sh.pad ? new Float32Array(nkv * D) : inPlace ? buf.blockValues() : buf.groupValues();
        feeds[N.pastKey(l, g)] = new ort.Tensor('float32', k, [nkv, sh.pad || rows, D]);
        feeds[N.pastValue(l, g)] = new ort.Tensor('float32', v, [nkv, sh.pad || rows, D]);
      } else if (!present) {
        const zeros = sh.pad ? new Float32Array(D) : null;
        for (let j = 0; j < nkv; j++) {
          feeds[N.pastKeyHead(l, g, j)] = new ort.Tensor('float32', zeros ?? buf.headKeys(j), [sh.pad || buf.length, D]);
          feeds[N.pastValueHead(l, g, j)] = new ort.Tensor('float32', zeros ?? buf.headValues(j), [sh.pad || buf.length, D]);
        }
      }
      const heads = groupQueryHeads(group, H, c.numKvHeads);
      const keys = keyPos.get(group.cacheClass)!;
      const K = keys.length + sh.pad + sh.slack;
      if (hooks.scoreBias.includes(l)) {
        const bias = opts.hooks?.scoreBias?.(l, heads, queryPos, keys) ?? null;
        // No bias on this layer: one zero per head, broadcast by the graph's Add (not [heads, q, keys] zeros to upload).
        feeds[N.scoreBias(l, g)] = bias
          ? new ort.Tensor('float32', widenColumns(bias, heads.length * q, sh, keys.length), [heads.length, q, K])
          : new ort.Tensor('float32', new Float32Array(heads.length), [heads.length, 1, 1]);
      }
      if (hooks.act.includes(l)) {
        const act = opts.hooks?.act?.(l, heads, keys) ?? { mask: null, beta: new Float32Array(heads.length).fill(1) };
        feeds[N.actMask(l, g)] = new ort.Tensor('float32', widenColumns(act.mask, heads.length, sh, keys.length), [heads.length, 1, K]);
        feeds[N.actBeta(l, g)] = new ort.Tensor('float32', act.beta, [heads.length, 1, 1]);
      }
    });
    // No rows asked: row 0 is computed and dropped (WebGPU cannot dispatch a softmax over zero rows).
    if (hooks.capturePattern.includes(l)) feeds[N.captureRows(l)] = captureRows.length ? i64(captureRows, [captureRows.length]) : i64([0], [1]);
    if (hooks.headHooks) {
      const perHead = opts.hooks?.headScale?.(l) ?? null;
      const perRow = opts.hooks?.rowScale?.(l) ?? null;
      if (perRow && perRow.length !== H * q) throw new HeadwiseError(`forward: row scale of layer ${l} has ${perRow.length} values, expected ${H} heads × ${q} rows`);
      const scale = perRow ? (perHead ? perRow.map((x, i) => x * perHead[Math.floor(i / q)]) : perRow) : (perHead ?? new Float32Array(H).fill(1));
      feeds[N.headScale(l)] = new ort.Tensor('float32', scale, [scale.length]);
      feeds[N.headAdd(l)] = new ort.Tensor('float32', opts.hooks?.headAdd?.(l) ?? new Float32Array(H * D), [H, D]);
    }
  });

  const segment = hooks.segment;
  if (segment) {
    // A segment graph reads only its own layers' inputs; it cannot update a cache it does not hold all of.
    if (opts.commit ?? true) throw new HeadwiseError('forward: a segment graph runs with commit: false');
    if (segment.residIn) {
      if (!opts.residIn || opts.residIn.length !== q * c.hiddenSize) throw new HeadwiseError(`forward: a segment from block ${segment.from} needs residIn [${q}, ${c.hiddenSize}]`);
      feeds[RESID_IN] = new ort.Tensor('float32', opts.residIn, [q, c.hiddenSize]);
    }
    if (segment.fromPoint) {
      const dims = segment.fromPoint === 'attn.hook_z' ? [q, H, D] : [q, c.hiddenSize];
      if (!opts.pointIn || opts.pointIn.length !== dims.reduce((a, n) => a * n, 1)) throw new HeadwiseError(`forward: a segment from blocks.${segment.from}.${segment.fromPoint} needs pointIn [${dims.join(', ')}]`);
      feeds[POINT_IN] = new ort.Tensor('float32', opts.pointIn, dims);
    }
    const wanted = new Set(gs.session.inputNames);
    for (const name of Object.keys(feeds)) if (!wanted.has(name)) delete feeds[name];
  }
  const out = await gs.session.run(feeds);
  const news = present || segment ? [] : gs.layout.map((groups, l) =>
    groups.map((_, g) => ({ key: out[N.newKey(l, g)].data as Float32Array, value: out[N.newValue(l, g)].data as Float32Array })),
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
          data: captureRows.length ? narrowColumns(out[N.pattern(l, g)].data as Float32Array, shape.get(group.cacheClass)!, keyPos.get(group.cacheClass)!.length) : new Float32Array(0),
        });
      });
    }
    if (hooks.captureZ.includes(l)) z.set(l, out[N.z(l)].data as Float32Array);
  });
  const captured = new Map<string, Float32Array>();
  if (segment && segment.to <= c.numLayers) captured.set(RESID_OUT, out[RESID_OUT].data as Float32Array);
  if (segment?.toPoint) captured.set(POINT_OUT, out[POINT_OUT].data as Float32Array);
  for (const name of hooks.capture ?? []) {
    if (name.endsWith('.attn.hook_attn_scores')) {
      const l = Number(name.split('.')[1]);
      gs.layout[l].forEach((group, g) => {
        const keys = keyPos.get(group.cacheClass)!.length;
        captured.set(scoresOutput(l, g), narrowColumns(out[scoresOutput(l, g)].data as Float32Array, shape.get(group.cacheClass)!, keys));
      });
    } else captured.set(name, out[name].data as Float32Array);
  }
  if (hooks.logitLens) for (let l = 0; l < c.numLayers; l++) captured.set(logitLensName(l), out[logitLensName(l)].data as Float32Array);
  if (present) await takePresent(model, gs, cache, out, newPositions, opts.commit ?? true);
  else if (opts.commit ?? true) {
    cache.update(news, newPositions);
    if (hasStepClasses(cache.policies) && !segment) keepLastQueries(c, cache, out, q);
  }
  const logits = out[LOGITS];
  if (opts.logitsOnDevice) return { logits: new Float32Array(0), logitsTensor: logits, vocab: c.vocabSize, patterns, z, captured };
  if (logits && logits.location !== 'cpu') {
    // A session made with `deviceLogits`: its GPU logits cannot be read here (never download them).
    logits.dispose();
    throw new HeadwiseError('forward: this session leaves its logits on the device; pass logitsOnDevice');
  }
  return { logits: logits ? (logits.data as Float32Array) : new Float32Array(0), vocab: c.vocabSize, patterns, z, captured };
}

/**
 * A class compiled without its mask (`GraphSession.causalClasses`) is attended by GroupQueryAttention's
 * own causal rule and RoPE at positions past + i: right only while the class holds every earlier
 * token in order and the call is one sequence.
 */
function checkCausal(gs: GraphSession, cache: KvCache, cls: string, branches: number): void {
  const policy = cache.policies.get(cls);
  const why = branches > 1 ? `${branches} branches`
    : policy?.kind !== 'full' ? `a ${policy?.kind ?? 'missing'} KV policy`
      : cache.positions.get(cls)!.length !== cache.seen || cache.compensated.size ? 'a cache that does not hold every earlier token'
        : null;
  if (why) throw new HeadwiseError(`forward: this graph was compiled without the mask of cache class "${cls}" (causalClasses: full history, one sequence) and cannot run ${why}; ask model.session() for it without causalClasses`);
}

interface PastShape {
  past: number;
  pad: number;
  slack: number;
}

/** A step class's gathered slots past its `k` rows, fed as slack when no group of the class reads per-head inputs. */
function stepSlack(gs: GraphSession, cls: string, picked: { k: number; stride: number }): number {
  const perHead = gs.layout.some((groups) => groups.some((g) => g.cacheClass === cls && g.pastInput === 'head'));
  return perHead ? 0 : picked.stride - picked.k;
}

/**
 * Unfilled rows after the `past` held ones when every group of the class is a banded buffer read in
 * place with the same capacity (kvCache.ts); 0 otherwise (the groups are then fed compact copies).
 */
function bandSlack(gs: GraphSession, cache: KvCache, cls: string, past: number): number {
  let capacity = -1;
  for (const [l, groups] of gs.layout.entries()) {
    for (const [g, group] of groups.entries()) {
      if (group.cacheClass !== cls) continue;
      const buf = cache.buffers[l][g];
      if (group.pastInput === 'head' || !buf.banded || (capacity >= 0 && buf.capacity !== capacity)) return 0;
      capacity = buf.capacity;
    }
  }
  return Math.max(0, capacity - past);
}

/** Hook input [rows, keys] -> [rows, pad + past + slack + q] with zeros in the pad and slack columns (null = all zeros). */
function widenColumns(x: Float32Array | null, rows: number, sh: PastShape, keys: number): Float32Array {
  if (!sh.pad && !sh.slack) return x ?? new Float32Array(rows * keys);
  const K = keys + sh.pad + sh.slack;
  const out = new Float32Array(rows * K);
  if (x) {
    for (let r = 0; r < rows; r++) {
      out.set(x.subarray(r * keys, r * keys + sh.past), r * K + sh.pad);
      out.set(x.subarray(r * keys + sh.past, (r + 1) * keys), r * K + sh.pad + sh.past + sh.slack);
    }
  }
  return out;
}

/** Captured [rows, pad + past + slack + q] -> [rows, keys]: the pad and slack columns dropped. */
function narrowColumns(x: Float32Array, sh: PastShape, keys: number): Float32Array {
  if (!sh.pad && !sh.slack) return x;
  const K = keys + sh.pad + sh.slack;
  const rows = x.length / K;
  const out = new Float32Array(rows * keys);
  for (let r = 0; r < rows; r++) {
    out.set(x.subarray(r * K + sh.pad, r * K + sh.pad + sh.past), r * keys);
    out.set(x.subarray(r * K + sh.pad + sh.past + sh.slack, (r + 1) * K), r * keys + sh.past);
  }
  return out;
}

function i64(values: ArrayLike<number>, dims: number[]): ortTypes.Tensor {
  return new ort.Tensor('int64', BigInt64Array.from(Array.from(values, (v) => BigInt(v))), dims);
}
