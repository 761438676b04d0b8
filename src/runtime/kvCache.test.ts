import { describe, expect, it } from 'vitest';
import { splitLayout, uniformLayout, type KvLayout } from '../graph/layout.js';
import { COMPENSATION_POSITION, KV_BAND, KvBuffer, KvCache, type ClassPolicy } from './kvCache.js';
import { FULL_HISTORY, windowClass } from '../kv/classPolicy.js';

const D = 4;

/** Head-major new keys/values whose every element encodes (position, head, layer, group): row checks are exact. */
function rows(layout: KvLayout, positions: number[]): { key: Float32Array; value: Float32Array }[][] {
  return layout.map((groups, l) => groups.map((g, gi) => {
    const heads = g.kvHeads.length;
    const key = new Float32Array(heads * positions.length * D);
    const value = new Float32Array(heads * positions.length * D);
    for (let j = 0; j < heads; j++) {
      positions.forEach((p, t) => {
        for (let d = 0; d < D; d++) {
          key[(j * positions.length + t) * D + d] = p * 1000 + g.kvHeads[j] * 10 + d + l * 1e6 + gi * 1e7;
          value[(j * positions.length + t) * D + d] = -(p * 1000 + g.kvHeads[j] * 10 + d + l * 1e6 + gi * 1e7);
        }
      });
    }
    return { key, value };
  }));
}

/** Feeds the next n positions in the given chunk sizes (cycled). */
function feed(cache: KvCache, n: number, chunks: number[]): void {
  let at = 0;
  for (let i = 0; at < n; i++) {
    const q = Math.min(chunks[i % chunks.length], n - at);
    const pos = Array.from({ length: q }, (_, k) => cache.seen + k);
    cache.update(rows(cache.layout, pos), pos);
    at += q;
  }
}

/** Checks every buffer row holds the keys/values of the position the cache says it holds. */
function expectRowsMatchPositions(cache: KvCache): void {
  cache.layout.forEach((groups, l) => groups.forEach((g, gi) => {
    const buf = cache.buffers[l][gi];
    const pos = cache.positions.get(g.cacheClass)!;
    expect(buf.length).toBe(pos.length);
    g.kvHeads.forEach((h, j) => {
      const keys = buf.headKeys(j);
      const values = buf.headValues(j);
      pos.forEach((p, t) => {
        if (p === COMPENSATION_POSITION) return;
        for (let d = 0; d < D; d++) {
          const want = p * 1000 + h * 10 + d + l * 1e6 + gi * 1e7;
          expect(keys[t * D + d]).toBe(want);
          expect(values[t * D + d]).toBe(-want);
        }
      });
    });
  }));
}

const range = (a: number, b: number) => Array.from({ length: Math.max(0, b - a) }, (_, i) => a + i);

describe('KvBuffer', () => {
  it('appends, compacts and grows head by head', () => {
    // A bounded (window) buffer: capacity follows reserve.
    const b = new KvBuffer(2, 2, 1000);
    // new rows head-major [2 heads, 3 tokens, 2]
    b.update(Float32Array.from([1, 1, 2, 2, 3, 3, 10, 10, 20, 20, 30, 30]), new Float32Array(12), null, null);
    expect([...b.headKeys(0)]).toEqual([1, 1, 2, 2, 3, 3]);
    expect([...b.headKeys(1)]).toEqual([10, 10, 20, 20, 30, 30]);
    // keep old rows 0 and 2, add new row 1 of two
    b.update(Float32Array.from([4, 4, 5, 5, 40, 40, 50, 50]), new Float32Array(8), [0, 2], [1]);
    expect([...b.headKeys(0)]).toEqual([1, 1, 3, 3, 5, 5]);
    expect([...b.headKeys(1)]).toEqual([10, 10, 30, 30, 50, 50]);
    const cap = b.capacity;
    b.reserve(cap + 10);
    expect(b.capacity).toBe(cap + 10);
    expect([...b.headKeys(1)]).toEqual([10, 10, 30, 30, 50, 50]);
    expect(b.key.length).toBe(2 * (cap + 10) * 2);
  });

  it('a full-history buffer is banded: blocks widen by KV_BAND rows in place, reserve only allocates', () => {
    const D2 = 2;
    const b = new KvBuffer(3, D2);
    expect(b.banded).toBe(true);
    const rows = (h: number, from: number, n: number) => Array.from({ length: n * D2 }, (_, i) => 1000 * (h + 1) + from + Math.floor(i / D2));
    const feedRows = (from: number, n: number) => {
      const k = Float32Array.from([0, 1, 2].flatMap((h) => rows(h, from, n)));
      b.update(k, k.map((x) => -x), null, null);
    };
    feedRows(0, 5);
    expect(b.capacity).toBe(KV_BAND);
    feedRows(5, KV_BAND);
    expect(b.length).toBe(KV_BAND + 5);
    expect(b.capacity).toBe(2 * KV_BAND);
    for (let h = 0; h < 3; h++) expect([...b.headKeys(h)]).toEqual(rows(h, 0, KV_BAND + 5));
    // The banded view is [heads, capacity, D]: head h's rows start at h · capacity.
    const view = b.blockKeys();
    expect(view.length).toBe(3 * b.capacity * D2);
    expect([...view.subarray(2 * b.capacity * D2, (2 * b.capacity + 3) * D2)]).toEqual(rows(2, 0, 3));
    expect([...b.blockValues().subarray(b.capacity * D2, (b.capacity + 1) * D2)]).toEqual(rows(1, 0, 1).map((x) => -x));
    // reserve allocates room without widening; filling the reservation exactly never re-allocates.
    b.reserve(300);
    expect(b.capacity).toBe(2 * KV_BAND);
    const allocation = b.key;
    expect(allocation.length).toBe(3 * 300 * D2);
    feedRows(KV_BAND + 5, 300 - KV_BAND - 5);
    expect(b.key).toBe(allocation);
    expect(b.capacity).toBe(300);
    for (let h = 0; h < 3; h++) expect([...b.headKeys(h)]).toEqual(rows(h, 0, 300));
    // clear keeps the allocation and starts the bands again
    b.clear();
    expect([b.length, b.capacity, b.key.length]).toEqual([0, 0, 3 * 300 * D2]);
    feedRows(0, 2);
    expect(b.capacity).toBe(KV_BAND);
    expect([...b.headKeys(1)]).toEqual(rows(1, 0, 2));
  });

  it('never grows past maxTokens', () => {
    const b = new KvBuffer(1, 1, 5);
    b.reserve(100);
    expect(b.capacity).toBe(5);
    b.update(new Float32Array(5), new Float32Array(5), null, null);
    expect(() => b.update(new Float32Array(1), new Float32Array(1), null, null)).toThrow(/exceed its limit/);
  });
});

describe('KvCache eviction', () => {
  const stream: ClassPolicy = windowClass(4, 16);

  for (const chunks of [[1], [3], [16], [17], [50], [512], [7, 1, 33, 1, 1, 64]]) {
    it(`keeps exactly the sink and the last window positions (chunks ${chunks.join(',')})`, () => {
      const layout = splitLayout(2, 4, (l, g) => (l + g) % 4 === 0);
      const cache = new KvCache(layout, new Map<string, ClassPolicy>([['full', FULL_HISTORY], ['stream', stream]]), D);
      for (const n of [3, 20, 21, 100, 250]) {
        feed(cache, n - cache.seen, chunks);
        expect(cache.seen).toBe(n);
        expect(cache.positions.get('stream')).toEqual(n <= 20 ? range(0, n) : [...range(0, 4), ...range(Math.max(4, n - 16), n)]);
        expect(cache.positions.get('full')).toEqual(range(0, n));
        expectRowsMatchPositions(cache);
      }
    });
  }

  it('window buffers never allocate more than sink + window, whatever is reserved or fed', () => {
    const layout = splitLayout(3, 2, (_l, g) => g === 0);
    const cache = new KvCache(layout, new Map<string, ClassPolicy>([['full', FULL_HISTORY], ['stream', stream]]), D);
    cache.reserve(10_000);
    feed(cache, 700, [512]);
    cache.layout.forEach((groups, l) => groups.forEach((g, gi) => {
      const b = cache.buffers[l][gi];
      if (g.cacheClass === 'stream') expect(b.capacity).toBe(20);
      else {
        // full: banded blocks inside the reserved allocation
        expect(b.key.length).toBe(b.heads * 10_000 * D);
        expect(b.capacity).toBe(Math.ceil(700 / KV_BAND) * KV_BAND);
      }
    }));
    // grows by itself when not reserved
    const lazy = new KvCache(layout, new Map<string, ClassPolicy>([['full', FULL_HISTORY], ['stream', stream]]), D);
    feed(lazy, 333, [1, 40]);
    lazy.layout.forEach((groups, l) => groups.forEach((g, gi) => {
      const b = lazy.buffers[l][gi];
      expect(b.capacity).toBeLessThanOrEqual(g.cacheClass === 'stream' ? 20 : Math.ceil(333 * 1.5));
      expect(b.capacity).toBeGreaterThanOrEqual(b.length);
    }));
    expectRowsMatchPositions(lazy);
  });

  it('kvBytes is what the buffers allocate and, reserved exactly, equals r + (1 − r)(S + W)/N of full attention', () => {
    const L = 4;
    const Hkv = 4;
    const full = new Set(['0:1', '2:3', '3:0', '3:2']); // r = 4 / 16
    const layout = splitLayout(L, Hkv, (l, g) => full.has(`${l}:${g}`));
    const N = 300;
    const cache = new KvCache(layout, new Map<string, ClassPolicy>([['full', FULL_HISTORY], ['stream', stream]]), D);
    cache.reserve(N);
    feed(cache, N, [128]);
    let allocated = 0;
    for (const groups of cache.buffers) for (const b of groups) allocated += b.key.byteLength + b.value.byteLength;
    expect(cache.kvBytes).toBe(allocated);
    expect(cache.kvBytesUsed).toBe(allocated);
    const fullBytes = 2 * L * Hkv * N * D * 4;
    const r = full.size / (L * Hkv);
    expect(cache.kvBytes / fullBytes).toBeCloseTo(r + (1 - r) * (4 + 16) / N, 12);
  });

  it('maxRows follows the policy', () => {
    expect(FULL_HISTORY.maxRows).toBe(Infinity);
    expect(stream.maxRows).toBe(20);
    expect(windowClass(4, 16, true).maxRows).toBe(21);
  });
});

describe('KvCache compensation token (RazorAttention)', () => {
  const policy: ClassPolicy = windowClass(2, 5, true);

  for (const chunks of [[1], [4], [9, 1, 30]]) {
    it(`holds the mean key and value of every evicted token (chunks ${chunks.join(',')})`, () => {
      const layout = uniformLayout(2, 3, 'stream');
      const cache = new KvCache(layout, new Map([['stream', policy]]), D);
      expect(cache.positions.get('stream')).toEqual([COMPENSATION_POSITION]);
      feed(cache, 6, chunks);
      expect(cache.compensated.get('stream')).toBe(0);
      feed(cache, 60 - cache.seen, chunks);
      const n = 60;
      expect(cache.positions.get('stream')).toEqual([COMPENSATION_POSITION, 0, 1, ...range(n - 5, n)]);
      const evicted = range(2, n - 5);
      expect(cache.compensated.get('stream')).toBe(evicted.length);
      expectRowsMatchPositions(cache);
      cache.layout.forEach((groups, l) => groups.forEach((g, gi) => {
        const buf = cache.buffers[l][gi];
        expect(buf.capacity).toBe(8);
        g.kvHeads.forEach((h, j) => {
          for (let d = 0; d < D; d++) {
            const mean = evicted.reduce((s, p) => s + p * 1000 + h * 10 + d + l * 1e6 + gi * 1e7, 0) / evicted.length;
            expect(buf.headKeys(j)[d]).toBeCloseTo(mean, 1);
            expect(buf.headValues(j)[d]).toBeCloseTo(-mean, 1);
          }
        });
      }));
    });
  }
});
