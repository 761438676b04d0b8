/**
 * The KV cache of one sequence, held as one buffer pair per (layer, KV-head group), so groups keep
 * different numbers of tokens and memory is really freed. A buffer is head-major: each KV head's rows
 * ([tokens, headDim]) are one contiguous block of the head's capacity, so the graph reads every head's
 * filled prefix in place as its own dense input and returns only the new tokens' keys and values,
 * which are appended here; nothing copies the whole cache per step.
 *
 * Each cache class has a policy: `full` keeps every token; `window` keeps the `sink` first tokens
 * and the `window` most recent (StreamingLLM), evicting the rest after every forward pass, and never
 * allocates more than that. With `compensate` (RazorAttention) a window class also keeps one
 * compensation row per head, the mean key and value of every token it has evicted; it sits first in
 * the buffer at position `COMPENSATION_POSITION` and is visible to every query once it holds a token.
 * In a multi-token call (prefill chunk) it holds the tokens evicted before the call.
 * `kvBytes` counts the bytes allocated by the buffers.
 */
import type { KvLayout } from '../graph/layout.js';

/**
 * What the cache asks of a cache class's policy. The rules themselves live in one copy each, used by
 * this cache, the device cache (`deviceKv.ts`) and the masks (`forward.ts`): full history's is
 * `FULL_HISTORY` here, the window rule (sinks + recent, compensation, a model window's `limit`) is
 * `windowPolicy.ts` (the runtime builds window classes itself, `modelWindow.ts`), the selection rule
 * is `kv/classPolicy.ts`.
 */
export interface ClassPolicy {
  /**
   * `full`: every token; `window`: sinks + recent; `select`: rows picked per head by a selection
   * (`KvCache.keepRows`); `step`: every token held, each one-token step attending to the rows
   * `stepRows` picks per head (`stepAttention.ts`).
   */
  readonly kind: 'full' | 'window' | 'select' | 'step';
  /** Most rows a head of the class ever holds (Infinity: grows with the history). */
  readonly maxRows: number;
  /** Whether the class keeps a RazorAttention compensation row. */
  readonly compensate: boolean;
  /**
   * Keys `limit` or more positions back are neither kept nor seen, sinks included (a model's own
   * sliding window, `modelWindow.ts`; a window without sinks reaches no further than its window);
   * Infinity: no such bound.
   */
  readonly limit: number;
  /** Whether a token at position `p` is still held once the newest token (at `last`) is in. */
  keeps(p: number, last: number): boolean;
  /** Whether a query at position `t` sees a held key at position `s` (compensation rows aside). */
  sees(t: number, s: number): boolean;
  /**
   * `step` classes: the buffer rows (ascending, as many for every head) each KV head of group `g` of
   * layer `l` attends to at a one-token step, given `query` ([groupHeads, headDim], the previous
   * token's queries after RoPE, KV-head major); null: every row. State the rule keeps between steps
   * lives in `cache.stepState` (cleared by `reset`).
   */
  stepRows?(cache: KvCache, l: number, g: number, query: Float32Array): number[][] | null;
}

/** Full history: keeps every token, a query sees every earlier one. */
export const FULL_HISTORY: ClassPolicy = Object.freeze({
  kind: 'full' as const,
  maxRows: Infinity,
  compensate: false,
  limit: Infinity,
  keeps: () => true,
  sees: (t: number, s: number) => s <= t,
});

/** Position reported for a class's compensation row (RazorAttention). */
export const COMPENSATION_POSITION = -1;
/**
 * Position reported for a row of a `select` class after a selection: heads of one class then hold
 * different positions (`KvCache.headPositions`), all earlier than any new query, so all visible.
 */
export const SELECTED_POSITION = -2;

/** Ascending row indices as runs [from, to, count]: consecutive sources go to consecutive destinations. */
function runs(rows: number[]): [number, number, number][] {
  const out: [number, number, number][] = [];
  rows.forEach((row, i) => {
    const last = out[out.length - 1];
    if (last && last[0] + last[2] === row) last[2]++;
    else out.push([row, i, 1]);
  });
  return out;
}

/** Rows a banded buffer's head blocks grow by. */
export const KV_BAND = 64;

/**
 * A growable head-major buffer pair: `heads` blocks of [capacity, headDim] at the start of the
 * allocation. A full-history buffer is *banded*: its blocks grow in steps of `KV_BAND` rows (moved
 * in place, within an allocation that `reserve` can make larger up front), so all heads are one dense
 * [heads, capacity, headDim] view with fewer than `KV_BAND` unfilled rows: the graph reads it as one
 * input and attends with one batched matmul, the unfilled rows masked.
 */
export class KvBuffer {
  key = new Float32Array(0);
  value = new Float32Array(0);
  /** Tokens held. */
  length = 0;
  /** Tokens each head's block has room for (the blocks' stride). */
  capacity = 0;
  readonly banded: boolean;

  constructor(
    readonly heads: number,
    readonly headDim: number,
    /** Capacity is never grown past this. */
    readonly maxTokens = Infinity,
  ) {
    this.banded = maxTokens === Infinity;
  }

  /** Forgets the rows, keeping the allocation. */
  clear(): void {
    this.length = 0;
    if (this.banded) this.capacity = 0;
  }

  /** The head blocks as one head-major [heads, capacity, headDim] view (rows past `length` unfilled). */
  blockKeys(): Float32Array {
    return this.key.subarray(0, this.heads * this.capacity * this.headDim);
  }

  blockValues(): Float32Array {
    return this.value.subarray(0, this.heads * this.capacity * this.headDim);
  }

  /** Makes the allocation hold `rows` rows per head at least, keeping the current layout. */
  private allocate(rows: number): void {
    const n = this.heads * rows * this.headDim;
    if (n <= this.key.length) return;
    const used = this.heads * this.capacity * this.headDim;
    const key = new Float32Array(n);
    const value = new Float32Array(n);
    key.set(this.key.subarray(0, used));
    value.set(this.value.subarray(0, used));
    this.key = key;
    this.value = value;
  }

  /** Banded: widens the blocks to hold `rows` (rounded up to the band), moving each head's rows in place. */
  private widen(rows: number): void {
    if (rows <= this.capacity) return;
    const D = this.headDim;
    const allocatedRows = this.key.length / (this.heads * D);
    // The next band, but never past a reservation that holds the rows (a reserved buffer fills exactly).
    let stride = Math.ceil(rows / KV_BAND) * KV_BAND;
    if (rows <= allocatedRows) stride = Math.min(stride, allocatedRows);
    else this.allocate(Math.max(stride, Math.ceil(allocatedRows * 1.5)));
    // Last head first: each block moves to a higher offset, over rows already moved or unused.
    for (let j = this.heads - 1; j > 0; j--) {
      this.key.copyWithin(j * stride * D, j * this.capacity * D, (j * this.capacity + this.length) * D);
      this.value.copyWithin(j * stride * D, j * this.capacity * D, (j * this.capacity + this.length) * D);
    }
    this.capacity = stride;
  }

  /** Floats per token (all heads). */
  get rowSize(): number {
    return this.heads * this.headDim;
  }

  /** Filled rows of KV head j, [length, headDim], as the graph reads them. */
  headKeys(j: number): Float32Array {
    const at = j * this.capacity * this.headDim;
    return this.key.subarray(at, at + this.length * this.headDim);
  }

  headValues(j: number): Float32Array {
    const at = j * this.capacity * this.headDim;
    return this.value.subarray(at, at + this.length * this.headDim);
  }

  /**
   * All heads' filled rows as one head-major [heads, length, headDim] array: a view when the buffer is
   * full (length = capacity, as a window buffer is once it has slid), else a compact copy.
   */
  groupKeys(): Float32Array {
    return this.compact(this.key);
  }

  groupValues(): Float32Array {
    return this.compact(this.value);
  }

  private compact(data: Float32Array): Float32Array {
    const D = this.headDim;
    if (this.length === this.capacity || this.heads === 1) return data.subarray(0, this.heads * this.length * D); // a view
    const out = new Float32Array(this.heads * this.length * D);
    for (let j = 0; j < this.heads; j++) out.set(data.subarray(j * this.capacity * D, (j * this.capacity + this.length) * D), j * this.length * D);
    return out;
  }

  /**
   * Grows capacity to at least `tokens` (capped at `maxTokens`), keeping the filled rows. A banded
   * buffer only allocates the room: its blocks still widen band by band.
   */
  reserve(tokens: number): void {
    const want = Math.min(tokens, this.maxTokens);
    if (this.banded) return this.allocate(want);
    if (want <= this.capacity) return;
    const D = this.headDim;
    const key = new Float32Array(this.heads * want * D);
    const value = new Float32Array(this.heads * want * D);
    for (let j = 0; j < this.heads; j++) {
      key.set(this.headKeys(j), j * want * D);
      value.set(this.headValues(j), j * want * D);
    }
    this.key = key;
    this.value = value;
    this.capacity = want;
  }

  /**
   * A selection: head j keeps its rows `rows[j]` (ascending; as many for every head), then the buffer
   * is reallocated to hold exactly those plus `room` more per head, so what was dropped is freed.
   */
  keepPerHead(rows: number[][], room: number): void {
    if (rows.length !== this.heads) throw new Error(`KV buffer: a selection for ${rows.length} heads, the buffer has ${this.heads}`);
    const k = rows[0]?.length ?? 0;
    if (rows.some((r) => r.length !== k)) throw new Error('KV buffer: every head of a buffer keeps as many rows');
    const D = this.headDim;
    const stride = k + room;
    const key = new Float32Array(this.heads * stride * D);
    const value = new Float32Array(this.heads * stride * D);
    rows.forEach((headRows, j) => {
      for (const r of headRows) if (!(r >= 0 && r < this.length)) throw new Error(`KV buffer: row ${r} is not held (0..${this.length - 1})`);
      for (const [from, to, count] of runs(headRows)) {
        const src = (j * this.capacity + from) * D;
        key.set(this.key.subarray(src, src + count * D), (j * stride + to) * D);
        value.set(this.value.subarray(src, src + count * D), (j * stride + to) * D);
      }
    });
    this.key = key;
    this.value = value;
    this.capacity = stride;
    this.length = k;
  }

  /**
   * Keeps buffer rows `keepOld` (ascending; null = all) then appends rows `keepNew` (null = all) of
   * the new tokens' keys/values, head-major [heads, newTokens, headDim].
   */
  update(newKey: Float32Array, newValue: Float32Array, keepOld: number[] | null, keepNew: number[] | null): void {
    const D = this.headDim;
    const q = newKey.length / (this.heads * D);
    let n = this.length;
    if (keepOld) {
      // Compact in place: rows only move towards the front.
      const moves = runs(keepOld);
      for (let j = 0; j < this.heads; j++) {
        const base = j * this.capacity * D;
        for (const [from, to, count] of moves) {
          if (from === to) continue;
          this.key.copyWithin(base + to * D, base + from * D, base + (from + count) * D);
          this.value.copyWithin(base + to * D, base + from * D, base + (from + count) * D);
        }
      }
      n = keepOld.length;
    }
    const add = keepNew ? keepNew.length : q;
    if (n + add > this.capacity) {
      if (n + add > this.maxTokens) throw new Error(`KV buffer: ${n + add} tokens exceed its limit of ${this.maxTokens}`);
      this.length = n;
      if (this.banded) this.widen(n + add);
      else this.reserve(Math.max(n + add, Math.ceil(this.capacity * 1.5)));
    }
    const adds = keepNew ? runs(keepNew) : [[0, 0, q] as [number, number, number]];
    for (let j = 0; j < this.heads; j++) {
      const dst = j * this.capacity * D + n * D;
      const src = j * q * D;
      for (const [from, to, count] of adds) {
        this.key.set(newKey.subarray(src + from * D, src + (from + count) * D), dst + to * D);
        this.value.set(newValue.subarray(src + from * D, src + (from + count) * D), dst + to * D);
      }
    }
    this.length = n + add;
  }
}

export class KvCache {
  /** Absolute positions held by each cache class, in buffer order (`COMPENSATION_POSITION` first where a class compensates). */
  readonly positions = new Map<string, number[]>();
  /** [layer][group] */
  readonly buffers: KvBuffer[][];
  /** Tokens seen so far (the next token's position). */
  seen = 0;
  /** null: keys/values are in `buffers`; a number: they are device tensors of this size (KV mode `present`, `deviceKv.ts`). */
  deviceBytes: number | null = null;
  /** Compensating classes: tokens folded into the compensation row so far. */
  readonly compensated = new Map<string, number>();
  /**
   * Groups of `select` classes after a selection, by `layer:group`: each head's held positions in
   * buffer order (the class's `positions` then read `SELECTED_POSITION`).
   */
  readonly headPositions = new Map<string, number[][]>();
  /**
   * `step` classes: per-group state of their rule by `layer:group` (e.g. LongHeads' chunk means),
   * owned by the class policy (`ClassPolicy.stepRows`).
   */
  readonly stepState = new Map<string, unknown>();
  /**
   * `step` classes: each layer's queries [heads, headDim] of the last token committed, read from the
   * graph's `attn.hook_q` (`stepAttention.ts`); the next one-token step scores rows with them.
   */
  lastQuery: Float32Array[] | null = null;
  /** Bytes of the key and value rows the last forward call attended to (held rows fed + new tokens). */
  kvBytesAttended = 0;
  /** Compensating classes, [layer][group]: running sums of evicted keys and values, [heads, headDim]. */
  private readonly sums: ({ key: Float64Array; value: Float64Array } | null)[][];

  constructor(
    readonly layout: KvLayout,
    readonly policies: Map<string, ClassPolicy>,
    readonly headDim: number,
  ) {
    for (const groups of layout) for (const g of groups) if (!policies.has(g.cacheClass)) throw new Error(`no policy for cache class ${g.cacheClass}`);
    for (const [cls, p] of policies) {
      const comp = p.compensate;
      this.positions.set(cls, comp ? [COMPENSATION_POSITION] : []);
      if (comp) this.compensated.set(cls, 0);
    }
    this.buffers = layout.map((groups) => groups.map((g) => {
      const b = new KvBuffer(g.kvHeads.length, headDim, policies.get(g.cacheClass)!.maxRows);
      // The compensation row: zeros (masked) until a token is evicted.
      if (this.compensated.has(g.cacheClass)) b.update(new Float32Array(b.rowSize), new Float32Array(b.rowSize), null, null);
      return b;
    }));
    this.sums = layout.map((groups) => groups.map((g) => {
      const n = g.kvHeads.length * headDim;
      return this.compensated.has(g.cacheClass) ? { key: new Float64Array(n), value: new Float64Array(n) } : null;
    }));
  }

  /** Bytes allocated by all key and value buffers. */
  get kvBytes(): number {
    if (this.deviceBytes !== null) return this.deviceBytes;
    let n = 0;
    for (const groups of this.buffers) for (const b of groups) n += b.key.byteLength + b.value.byteLength;
    return n;
  }

  /** Bytes of the tokens actually held (allocated capacity aside). */
  get kvBytesUsed(): number {
    if (this.deviceBytes !== null) return this.deviceBytes;
    let n = 0;
    for (const groups of this.buffers) for (const b of groups) n += 2 * b.length * b.rowSize * 4;
    return n;
  }

  /** Pre-allocates room for `tokens` more tokens (window classes: up to what their policy keeps). */
  reserve(tokens: number): void {
    if (this.deviceBytes !== null) return;
    for (const groups of this.buffers) for (const b of groups) b.reserve(b.length + tokens);
  }

  /**
   * Forgets every token but keeps the allocated buffers, so the next sequence (e.g. the next prompt of
   * an evaluation) reuses their memory instead of allocating and zeroing new buffers. A present-mode
   * (device) cache drops its tensors at its next forward pass (`deviceKv.ts` sees `seen` back at 0).
   * Not for caches with compensation rows.
   */
  reset(): void {
    if (this.compensated.size > 0) throw new Error('KvCache.reset: caches with compensation rows cannot be reset');
    this.seen = 0;
    this.headPositions.clear();
    this.stepState.clear();
    this.lastQuery = null;
    if (this.deviceBytes !== null) this.deviceBytes = 0;
    for (const cls of this.positions.keys()) this.positions.set(cls, []);
    for (const groups of this.buffers) for (const b of groups) b.clear();
  }

  /**
   * Drops every token at position ≥ `tokens`, so runs that differ from one position on (activation
   * patching: one patched token, then the rest of the prompt) share the prefix before it. Host caches
   * whose classes all keep the full history only: their rows are positions 0, 1, …, so the first
   * `tokens` rows are exactly that prefix, and the rows past it become unfilled (masked) band rows.
   */
  truncate(tokens: number): void {
    if (this.deviceBytes !== null || [...this.policies.values()].some((p) => p.kind !== 'full')) {
      throw new Error('KvCache.truncate: only host caches with full-history classes can be truncated');
    }
    if (!Number.isInteger(tokens) || tokens < 0 || tokens > this.seen) throw new Error(`KvCache.truncate: ${tokens} is not in 0..${this.seen}`);
    this.seen = tokens;
    for (const cls of this.positions.keys()) this.positions.set(cls, this.positions.get(cls)!.slice(0, tokens));
    for (const groups of this.buffers) for (const b of groups) b.length = tokens;
  }

  /**
   * Appends the new tokens' keys/values ([layer][group], head-major [groupKvHeads, tokens, headDim])
   * and evicts what the policies drop.
   */
  update(news: { key: Float32Array; value: Float32Array }[][], newPositions: number[]): void {
    const keep = new Map<string, { old: number[] | null; add: number[] | null }>();
    for (const [cls, policy] of this.policies) {
      const before = this.positions.get(cls)!;
      if (policy.kind === 'full' || policy.kind === 'step') {
        keep.set(cls, { old: null, add: null });
        for (const p of newPositions) before.push(p);
        continue;
      }
      const last = newPositions[newPositions.length - 1];
      const kept = (p: number) => p === COMPENSATION_POSITION || p === SELECTED_POSITION || policy.keeps(p, last);
      const old = before.flatMap((p, i) => (kept(p) ? [i] : []));
      const add = newPositions.flatMap((p, i) => (kept(p) ? [i] : []));
      keep.set(cls, { old: old.length === before.length ? null : old, add: add.length === newPositions.length ? null : add });
      this.positions.set(cls, [...old.map((i) => before[i]), ...add.map((i) => newPositions[i])]);
      if (this.compensated.has(cls)) this.compensated.set(cls, this.compensated.get(cls)! + before.length - old.length + newPositions.length - add.length);
    }
    this.layout.forEach((groups, l) => {
      groups.forEach((group, g) => {
        const k = keep.get(group.cacheClass)!;
        const buf = this.buffers[l][g];
        const sums = this.sums[l][g];
        if (sums) this.fold(buf, sums, news[l][g], k.old, k.add, newPositions.length, this.compensated.get(group.cacheClass)!);
        buf.update(news[l][g].key, news[l][g].value, k.old, k.add);
        // Select classes evict only at a selection: new tokens join every head.
        const heads = this.headPositions.get(`${l}:${g}`);
        if (heads) for (const h of heads) h.push(...newPositions);
      });
    });
    this.seen += newPositions.length;
  }

  /**
   * Applies a selection (`kv/selection.ts`): `rows[l][g]` lists, per KV head of group g of layer l,
   * the buffer rows it keeps (ascending; null keeps the group as it is). Every head of a class keeps
   * as many rows, so one mask still serves the class; buffers are reallocated to the kept rows plus
   * `room` per head (the tokens still to come), freeing the rest.
   */
  keepRows(rows: (number[][] | null)[][], room: number): void {
    if (this.deviceBytes !== null) throw new Error('KvCache.keepRows: selection runs on host caches only');
    const counts = new Map<string, number>();
    this.layout.forEach((groups, l) => groups.forEach((group, g) => {
      const r = rows[l]?.[g];
      if (!r) return;
      const cls = group.cacheClass;
      if (this.policies.get(cls)!.kind !== 'select') throw new Error(`KvCache.keepRows: class ${cls} is not a select class`);
      const k = r[0]?.length ?? 0;
      if (counts.has(cls) && counts.get(cls) !== k) throw new Error(`KvCache.keepRows: groups of class ${cls} keep different row counts`);
      counts.set(cls, k);
    }));
    this.layout.forEach((groups, l) => groups.forEach((group, g) => {
      const r = rows[l]?.[g];
      if (counts.has(group.cacheClass) && !r) throw new Error(`KvCache.keepRows: group ${l}:${g} of class ${group.cacheClass} has no selection`);
      if (!r) return;
      const key = `${l}:${g}`;
      const before = this.headPositions.get(key) ?? group.kvHeads.map(() => this.positions.get(group.cacheClass)!);
      this.headPositions.set(key, r.map((headRows, j) => headRows.map((i) => before[j][i])));
      this.buffers[l][g].keepPerHead(r, room);
    }));
    for (const [cls, k] of counts) this.positions.set(cls, new Array<number>(k).fill(SELECTED_POSITION));
  }

  /** Adds the rows about to be evicted to the running sums and writes their mean into row 0. */
  private fold(
    buf: KvBuffer,
    sums: { key: Float64Array; value: Float64Array },
    fresh: { key: Float32Array; value: Float32Array },
    keepOld: number[] | null,
    keepNew: number[] | null,
    q: number,
    count: number,
  ): void {
    const D = this.headDim;
    const droppedOld = keepOld ? complement(keepOld, buf.length) : [];
    const droppedNew = keepNew ? complement(keepNew, q) : [];
    if (!droppedOld.length && !droppedNew.length) return;
    for (let j = 0; j < buf.heads; j++) {
      const oldBase = j * buf.capacity * D;
      const newBase = j * q * D;
      const sk = sums.key.subarray(j * D, (j + 1) * D);
      const sv = sums.value.subarray(j * D, (j + 1) * D);
      for (const r of droppedOld) for (let d = 0; d < D; d++) {
        sk[d] += buf.key[oldBase + r * D + d];
        sv[d] += buf.value[oldBase + r * D + d];
      }
      for (const r of droppedNew) for (let d = 0; d < D; d++) {
        sk[d] += fresh.key[newBase + r * D + d];
        sv[d] += fresh.value[newBase + r * D + d];
      }
      for (let d = 0; d < D; d++) {
        buf.key[oldBase + d] = sk[d] / count;
        buf.value[oldBase + d] = sv[d] / count;
      }
    }
  }
}

/** Indices in [0, n) not in the ascending list `kept`. */
function complement(kept: number[], n: number): number[] {
  const out: number[] = [];
  let k = 0;
  for (let i = 0; i < n; i++) {
    if (kept[k] === i) k++;
    else out.push(i);
  }
  return out;
}
