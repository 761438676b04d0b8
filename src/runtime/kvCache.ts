/**
 * The KV cache of one sequence, held as one dense buffer per (layer, KV-head group) so that groups
 * can keep different numbers of tokens and memory is really freed. Each cache class has a policy:
 * `full` keeps every token; `window` keeps `sink` first tokens and the `window` most recent
 * (StreamingLLM), evicting the rest after every forward pass. `kvBytes` counts the bytes actually
 * held by the buffers.
 */
import type { KvLayout } from '../graph/layout.js';

export type ClassPolicy = { kind: 'full' } | { kind: 'window'; sink: number; window: number };

export interface KvBuffer {
  key: Float32Array;
  value: Float32Array;
  /** Tokens held. */
  length: number;
}

export class KvCache {
  /** Absolute positions held by each cache class, in buffer order. */
  readonly positions = new Map<string, number[]>();
  /** [layer][group] */
  readonly buffers: KvBuffer[][];
  /** Tokens seen so far (the next token's position). */
  seen = 0;

  constructor(
    readonly layout: KvLayout,
    readonly policies: Map<string, ClassPolicy>,
    readonly headDim: number,
  ) {
    for (const groups of layout) for (const g of groups) if (!policies.has(g.cacheClass)) throw new Error(`no policy for cache class ${g.cacheClass}`);
    for (const cls of policies.keys()) this.positions.set(cls, []);
    this.buffers = layout.map((groups) => groups.map(() => ({ key: new Float32Array(0), value: new Float32Array(0), length: 0 })));
  }

  /** Whether key position s is visible to query position t under a class policy. */
  static visible(policy: ClassPolicy, t: number, s: number): boolean {
    if (s > t) return false;
    if (policy.kind === 'full') return true;
    return s < policy.sink || t - s < policy.window;
  }

  /** Bytes held by all key and value buffers. */
  get kvBytes(): number {
    let n = 0;
    for (const groups of this.buffers) for (const b of groups) n += b.key.byteLength + b.value.byteLength;
    return n;
  }

  /**
   * Takes the graph's present buffers for `newPositions` appended to each class, then evicts what the
   * class policies drop.
   */
  update(presents: { key: Float32Array; value: Float32Array }[][], newPositions: number[]): void {
    const keep = new Map<string, number[] | null>();
    for (const [cls, policy] of this.policies) {
      const all = [...this.positions.get(cls)!, ...newPositions];
      if (policy.kind === 'full') {
        keep.set(cls, null);
        this.positions.set(cls, all);
        continue;
      }
      const last = all[all.length - 1];
      const idx: number[] = [];
      all.forEach((p, i) => {
        if (p < policy.sink || last - p < policy.window) idx.push(i);
      });
      keep.set(cls, idx.length === all.length ? null : idx);
      this.positions.set(cls, idx.map((i) => all[i]));
    }
    this.layout.forEach((groups, l) => {
      groups.forEach((group, g) => {
        const { key, value } = presents[l][g];
        const total = this.positions.get(group.cacheClass)!.length;
        const idx = keep.get(group.cacheClass);
        const nkv = group.kvHeads.length;
        if (!idx) {
          this.buffers[l][g] = { key, value, length: total };
          return;
        }
        const before = key.length / (nkv * this.headDim);
        this.buffers[l][g] = { key: gatherRows(key, nkv, before, idx, this.headDim), value: gatherRows(value, nkv, before, idx, this.headDim), length: idx.length };
      });
    });
    this.seen += newPositions.length;
  }
}

/** Keeps rows `idx` of a [heads, rows, dim] buffer. */
function gatherRows(src: Float32Array, heads: number, rows: number, idx: number[], dim: number): Float32Array {
  const out = new Float32Array(heads * idx.length * dim);
  for (let h = 0; h < heads; h++) {
    for (let j = 0; j < idx.length; j++) {
      const from = (h * rows + idx[j]) * dim;
      out.set(src.subarray(from, from + dim), (h * idx.length + j) * dim);
    }
  }
  return out;
}
