/**
 * A bounded cache of things that are expensive to create and must be released by hand (ONNX Runtime
 * sessions, one per KV layout + hook set): least recently used first out, by count and by bytes.
 * An entry is evicted only when nothing holds it: `pin`/`unpin` count its holders, and a pinned entry
 * stays whatever the limits say, so the cache can overshoot them while its holders run and shrinks back
 * as they let go. Evicted entries are handed to `release` once; a `get` for an evicted key creates
 * the value afresh. What a key means and what an entry weighs is the caller's (`model.ts`).
 */

export interface SessionCacheLimits {
  /** Most entries kept (pinned ones can push the count over while held). */
  maxEntries: number;
  /** Most bytes kept, as the sizes given by `create` add up. */
  maxBytes: number;
  /**
   * Entries the byte bound leaves, the most recent ones: a model whose one session is over `maxBytes`
   * keeps its last sessions warm instead of reloading them for every request.
   */
  minEntries: number;
}

export const UNBOUNDED: SessionCacheLimits = { maxEntries: Infinity, maxBytes: Infinity, minEntries: 0 };

interface Entry<V> {
  value: Promise<V>;
  /** Known once `create` resolved; 0 until then (an entry being created is always pinned by its creator). */
  bytes: number;
  pins: number;
  /** Set once `create` resolved; only ready entries are evicted. */
  ready: { value: V } | null;
}

export class SessionCache<V> {
  /** Map order is recency order: the first key is the least recently used. */
  private readonly entries = new Map<string, Entry<V>>();
  private bytesHeld = 0;
  private evictions = 0;

  constructor(
    private readonly limits: SessionCacheLimits,
    private readonly release: (value: V) => Promise<void> | void,
  ) {}

  /**
   * The value for `key`, created by `create` on a miss, pinned once for the caller (who must
   * `unpin(key)` when done with it). A failed `create` leaves nothing behind.
   */
  acquire(key: string, create: () => Promise<{ value: V; bytes: number }>): Promise<V> {
    const hit = this.entries.get(key);
    if (hit) {
      this.entries.delete(key);
      this.entries.set(key, hit);
      hit.pins++;
      return hit.value;
    }
    const entry: Entry<V> = { value: null as unknown as Promise<V>, bytes: 0, pins: 1, ready: null };
    entry.value = create().then(
      ({ value, bytes }) => {
        entry.bytes = bytes;
        entry.ready = { value };
        if (this.entries.get(key) === entry) this.bytesHeld += bytes;
        this.trim();
        return value;
      },
      (e) => {
        if (this.entries.get(key) === entry) this.entries.delete(key);
        throw e;
      },
    );
    this.entries.set(key, entry);
    return entry.value;
  }

  /** One holder of `key` is done with it; an unpinned entry may be evicted from now on. */
  unpin(key: string): void {
    const entry = this.entries.get(key);
    if (!entry || entry.pins === 0) return;
    entry.pins--;
    if (entry.pins === 0) this.trim();
  }

  /** Evicts least recently used, unpinned, ready entries until the limits hold (or only pinned ones are left). */
  trim(): void {
    for (const [key, entry] of this.entries) {
      const overCount = this.entries.size > this.limits.maxEntries;
      const overBytes = this.bytesHeld > this.limits.maxBytes && this.entries.size > this.limits.minEntries;
      if (!overCount && !overBytes) return;
      if (entry.pins > 0 || !entry.ready) continue;
      this.entries.delete(key);
      this.bytesHeld -= entry.bytes;
      this.evictions++;
      try {
        void Promise.resolve(this.release(entry.ready.value)).catch(() => undefined);
      } catch {
        // releasing is best effort: the entry is out of the cache either way
      }
    }
  }

  /** Entries held now, their bytes, and how many were evicted so far (for tests and benchmarks). */
  stats(): { entries: number; bytes: number; evictions: number; pinned: number } {
    let pinned = 0;
    for (const e of this.entries.values()) if (e.pins > 0) pinned++;
    return { entries: this.entries.size, bytes: this.bytesHeld, evictions: this.evictions, pinned };
  }

  /** Releases every entry, pinned or not (the owner is closing). */
  async clear(): Promise<void> {
    const all = [...this.entries.values()];
    this.entries.clear();
    this.bytesHeld = 0;
    for (const e of all) {
      try {
        await this.release(await e.value);
      } catch {
        // a value that failed to be created has nothing to release
      }
    }
  }
}
