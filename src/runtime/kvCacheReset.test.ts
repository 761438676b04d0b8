/**
 * `KvCache.reset`: a reused cache gives the same logits as a fresh one, without reallocating.
 * `KvCache.truncate`: a cache cut back to a prefix continues as a cache that only ever held the prefix.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { forward, newCache } from './forward.js';
import { Model } from './model.js';

process.env.HEADWISE_CACHE ??= fs.mkdtempSync(path.join(os.tmpdir(), 'headwise-test-'));

describe('KvCache.reset', () => {
  let model: Model;
  beforeAll(async () => {
    model = await Model.load(path.resolve('test/fixtures/models/tiny-llama'));
  });
  afterAll(async () => model?.dispose());

  it('starts a new sequence in the same buffers', async () => {
    const gs = await model.session();
    const policies = new Map([['full', { kind: 'full' as const }]]);
    const fresh = newCache(model, gs, policies);
    const a = await forward(model, gs, fresh, [3, 1, 4, 1, 5]);
    const reused = newCache(model, gs, policies);
    reused.reserve(16);
    await forward(model, gs, reused, [9, 2, 6, 5, 3, 5, 8, 9]);
    const bytes = reused.kvBytes;
    reused.reset();
    expect(reused.seen).toBe(0);
    expect(reused.kvBytesUsed).toBe(0);
    const b = await forward(model, gs, reused, [3, 1, 4, 1, 5]);
    expect(reused.kvBytes).toBe(bytes);
    expect(reused.positions.get('full')).toEqual([0, 1, 2, 3, 4]);
    let worst = 0;
    for (let i = 0; i < a.logits.length; i++) worst = Math.max(worst, Math.abs(a.logits[i] - b.logits[i]));
    expect(worst).toBe(0);
  });

  it('truncate continues from the prefix, across a band boundary', async () => {
    const gs = await model.session();
    const policies = new Map([['full', { kind: 'full' as const }]]);
    const ids = Array.from({ length: 80 }, (_, i) => (i * 7 + 3) % 50);
    const other = Array.from({ length: 70 }, (_, i) => (i * 11 + 5) % 50);
    const fresh = newCache(model, gs, policies);
    await forward(model, gs, fresh, ids.slice(0, 10));
    const a = await forward(model, gs, fresh, ids.slice(10), { logitsAt: [0, 69] });
    const cut = newCache(model, gs, policies);
    await forward(model, gs, cut, [...ids.slice(0, 10), ...other]);
    cut.truncate(10);
    expect(cut.seen).toBe(10);
    expect(cut.positions.get('full')).toEqual([...Array(10).keys()]);
    const b = await forward(model, gs, cut, ids.slice(10), { logitsAt: [0, 69] });
    let worst = 0;
    for (let i = 0; i < a.logits.length; i++) worst = Math.max(worst, Math.abs(a.logits[i] - b.logits[i]));
    expect(worst).toBeLessThan(1e-5);
    expect(() => cut.truncate(81)).toThrow(/81 is not in 0\.\.80/);
    const windowed = newCache(model, gs, new Map([['full', { kind: 'window' as const, sink: 1, window: 4 }]]));
    expect(() => windowed.truncate(0)).toThrow(/full-history/);
  });

  it('refuses caches with compensation rows', () => {
    const cache = newCache(model, { layout: model.fullLayout() } as never, new Map([['full', { kind: 'window' as const, sink: 1, window: 2, compensate: true }]]));
    expect(() => cache.reset()).toThrow(/caches with compensation rows cannot be reset/);
  });
});
