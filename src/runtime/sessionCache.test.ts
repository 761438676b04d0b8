/**
 * The session LRU on plain values (counting releases), and `Model.withSessions` on real ONNX Runtime
 * sessions of the bundled model: evicted sessions are released, held ones never are.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_MODEL } from '../cli/common.js';
import { NO_HOOKS } from '../graph/hooks.js';
import { Model } from './model.js';
import { SessionCache } from './sessionCache.js';

function cache(maxEntries: number, maxBytes = Infinity, minEntries = 0) {
  const released: string[] = [];
  const created: string[] = [];
  const c = new SessionCache<string>({ maxEntries, maxBytes, minEntries }, (v) => void released.push(v));
  const get = (key: string, bytes = 1) =>
    c.acquire(key, async () => {
      created.push(key);
      return { value: key, bytes };
    });
  return { c, get, released, created };
}

describe('SessionCache', () => {
  it('evicts the least recently used unpinned entry and releases it once', async () => {
    const { c, get, released, created } = cache(2);
    for (const k of ['a', 'b']) {
      await get(k);
      c.unpin(k);
    }
    await get('a'); // a is now the most recent
    c.unpin('a');
    await get('c');
    c.unpin('c');
    expect(released).toEqual(['b']);
    await get('b'); // created afresh
    c.unpin('b');
    expect(created).toEqual(['a', 'b', 'c', 'b']);
    expect(released).toEqual(['b', 'a']);
    expect(c.stats()).toMatchObject({ entries: 2, evictions: 2, pinned: 0 });
  });

  it('never evicts a pinned entry: it overshoots while held and shrinks back on unpin', async () => {
    const { c, get, released } = cache(1);
    await get('a');
    await get('b');
    await get('c');
    expect(released).toEqual([]);
    expect(c.stats()).toMatchObject({ entries: 3, pinned: 3 });
    c.unpin('b');
    expect(released).toEqual(['b']);
    c.unpin('a');
    expect(released).toEqual(['b', 'a']);
    c.unpin('c');
    expect(c.stats()).toMatchObject({ entries: 1, pinned: 0 });
    // Two holders: one letting go does not free it.
    await get('c');
    await get('d');
    c.unpin('d');
    expect(released).toEqual(['b', 'a', 'd']);
  });

  it('bounds the bytes as well as the count', async () => {
    const { c, get, released } = cache(100, 10);
    for (const [k, bytes] of [['a', 4], ['b', 4], ['c', 4]] as const) {
      await get(k, bytes);
      c.unpin(k);
    }
    expect(released).toEqual(['a']);
    expect(c.stats()).toMatchObject({ entries: 2, bytes: 8 });
  });

  it('the byte bound leaves the minEntries most recent entries, however large', async () => {
    const { c, get, released } = cache(100, 10, 2);
    for (const k of ['a', 'b', 'c']) {
      await get(k, 50);
      c.unpin(k);
    }
    expect(released).toEqual(['a']);
    expect(c.stats()).toMatchObject({ entries: 2, bytes: 100 });
  });

  it('a failed create leaves nothing behind, and the next acquire tries again', async () => {
    const c = new SessionCache<string>({ maxEntries: 2, maxBytes: Infinity, minEntries: 0 }, () => undefined);
    await expect(c.acquire('x', async () => Promise.reject(new Error('no')))).rejects.toThrow('no');
    expect(c.stats().entries).toBe(0);
    await expect(c.acquire('x', async () => ({ value: 'ok', bytes: 1 }))).resolves.toBe('ok');
  });

  it('clear releases everything, pinned or not', async () => {
    const { c, get, released } = cache(5);
    await get('a');
    await get('b');
    c.unpin('b');
    await c.clear();
    expect(released.sort()).toEqual(['a', 'b']);
    expect(c.stats().entries).toBe(0);
  });
});

describe('issue 11 item 9: Model sessions on the bundled model stay within the LRU bound', () => {
  let model: Model;
  beforeAll(async () => {
    model = await Model.load(DEFAULT_MODEL, { threads: 1, sessionLimits: { maxEntries: 2 } });
  });
  afterAll(async () => {
    await model?.dispose();
  });
  const hooks = (layer: number) => ({ ...NO_HOOKS, capturePattern: [layer] });

  it('withSessions holds its sessions until the task ends; then the LRU releases the oldest', async () => {
    const sessions = await model.withSessions(async () => {
      const s = [];
      for (let l = 0; l < 4; l++) s.push(await model.session(undefined, hooks(l)));
      // Four held by one task: none released, all still run.
      expect(model.sessionStats()).toMatchObject({ entries: 4, pinned: 4 });
      return s;
    });
    expect(model.sessionStats()).toMatchObject({ entries: 2, pinned: 0, evictions: 2 });
    // The kept ones are the two most recent; a released one is created afresh.
    const again = await model.withSessions(() => model.session(undefined, hooks(3)));
    expect(again).toBe(sessions[3]);
    const fresh = await model.withSessions(() => model.session(undefined, hooks(0)));
    expect(fresh).not.toBe(sessions[0]);
  });

  it('a session asked for outside withSessions is held for the model’s lifetime', async () => {
    const held = await model.session(undefined, hooks(5));
    for (let l = 0; l < 3; l++) await model.withSessions(() => model.session(undefined, hooks(l)));
    expect(await model.withSessions(() => model.session(undefined, hooks(5)))).toBe(held);
  });
});
