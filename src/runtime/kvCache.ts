/**
 * The KV cache of one sequence, held as one token-major buffer ([tokens, groupKvHeads, headDim]) per
 * (layer, KV-head group), so groups keep different numbers of tokens and memory is really freed.
 * The graph reads a buffer's filled prefix in place and returns only the new tokens' keys and values,
 * which are appended here; nothing copies the whole cache per step.
 *
 * Each cache class has a policy: `full` keeps every token; `window` keeps the `sink` first tokens
 * and the `window` most recent (StreamingLLM), evicting the rest after every forward pass.
 * `kvBytes` counts the bytes allocated by the buffers.
 */
import type { KvLayout } from '../graph/layout.js';

export type ClassPolicy = { kind: 'full' } | { kind: 'window'; sink: number; window: number };

/** A growable token-major buffer pair. */
export class KvBuffer {
  key = new Float32Array(0);
  value = new Float32Array(0);
  /** Tokens held. */
  length = 0;

  constructor(readonly rowSize: number) {}

  get capacity(): number {
    return this.key.length / this.rowSize;
  }

  /** Filled prefix, as the graph reads it. */
  keys(): Float32Array {
    return this.key.subarray(0, this.length * this.rowSize);
  }

  values(): Float32Array {
    return this.value.subarray(0, this.length * this.rowSize);
  }

  reserve(tokens: number): void {
    if (tokens <= this.capacity) return;
    const key = new Float32Array(tokens * this.rowSize);
    const value = new Float32Array(tokens * this.rowSize);
    key.set(this.keys());
    value.set(this.values());
    this.key = key;
    this.value = value;
  }

  /** Keeps buffer rows `keepOld` (ascending) then appends rows `keepNew` of the new tokens. */
  update(newKey: Float32Array, newValue: Float32Array, keepOld: number[] | null, keepNew: number[] | null): void {
    const r = this.rowSize;
    const newRows = newKey.length / r;
    const old = keepOld ?? null;
    let n = this.length;
    if (old) {
      // Compact in place: rows only move towards the front.
      copyRows(this.key, this.key, old, r);
      copyRows(this.value, this.value, old, r);
      n = old.length;
    }
    const add = keepNew ? keepNew.length : newRows;
    if (n + add > this.capacity) {
      const grow = Math.max(n + add, Math.ceil(this.capacity * 1.5));
      this.length = n;
      this.reserve(grow);
    }
    if (keepNew) {
      keepNew.forEach((row, i) => {
        this.key.set(newKey.subarray(row * r, (row + 1) * r), (n + i) * r);
        this.value.set(newValue.subarray(row * r, (row + 1) * r), (n + i) * r);
      });
    } else {
      this.key.set(newKey, n * r);
      this.value.set(newValue, n * r);
    }
    this.length = n + add;
  }
}

function copyRows(dst: Float32Array, src: Float32Array, rows: number[], r: number): void {
  rows.forEach((row, i) => {
    if (row !== i) dst.copyWithin(i * r, row * r, (row + 1) * r);
  });
}

export class KvCache {
  /** Absolute positions held by each cache class, in buffer order. */
  readonly positions = new Map<string, number[]>();
  /** [layer][group] */
  readonly buffers: KvBuffer[][];
  /** Tokens seen so far (the next token's position). */
  seen = 0;
  /** null: keys/values are in `buffers`; a number: they are device tensors of this size (KV mode `present`, `deviceKv.ts`). */
  deviceBytes: number | null = null;

  constructor(
    readonly layout: KvLayout,
    readonly policies: Map<string, ClassPolicy>,
    readonly headDim: number,
  ) {
    for (const groups of layout) for (const g of groups) if (!policies.has(g.cacheClass)) throw new Error(`no policy for cache class ${g.cacheClass}`);
    for (const cls of policies.keys()) this.positions.set(cls, []);
    this.buffers = layout.map((groups) => groups.map((g) => new KvBuffer(g.kvHeads.length * headDim)));
  }

  /** Whether key position s is visible to query position t under a class policy. */
  static visible(policy: ClassPolicy, t: number, s: number): boolean {
    if (s > t) return false;
    if (policy.kind === 'full') return true;
    return s < policy.sink || t - s < policy.window;
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

  /** Pre-allocates room for `tokens` more tokens in full-history buffers (avoids regrowth). */
  reserve(tokens: number): void {
    if (this.deviceBytes !== null) return;
    this.layout.forEach((groups, l) => groups.forEach((g, i) => {
      const p = this.policies.get(g.cacheClass)!;
      const b = this.buffers[l][i];
      b.reserve(p.kind === 'full' ? b.length + tokens : Math.min(b.length + tokens, p.sink + p.window));
    }));
  }

  /** Appends the new tokens' keys/values ([layer][group]) and evicts what the policies drop. */
  update(news: { key: Float32Array; value: Float32Array }[][], newPositions: number[]): void {
    const keep = new Map<string, { old: number[] | null; add: number[] | null }>();
    for (const [cls, policy] of this.policies) {
      const before = this.positions.get(cls)!;
      if (policy.kind === 'full') {
        keep.set(cls, { old: null, add: null });
        this.positions.set(cls, [...before, ...newPositions]);
        continue;
      }
      const last = newPositions[newPositions.length - 1];
      const kept = (p: number) => p < policy.sink || last - p < policy.window;
      const old = before.flatMap((p, i) => (kept(p) ? [i] : []));
      const add = newPositions.flatMap((p, i) => (kept(p) ? [i] : []));
      keep.set(cls, { old: old.length === before.length ? null : old, add: add.length === newPositions.length ? null : add });
      this.positions.set(cls, [...old.map((i) => before[i]), ...add.map((i) => newPositions[i])]);
    }
    this.layout.forEach((groups, l) => {
      groups.forEach((group, g) => {
        const k = keep.get(group.cacheClass)!;
        this.buffers[l][g].update(news[l][g].key, news[l][g].value, k.old, k.add);
      });
    });
    this.seen += newPositions.length;
  }
}
