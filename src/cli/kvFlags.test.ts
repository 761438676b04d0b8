import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeAtlas } from '../atlas/file.js';
import { testAtlas } from '../atlas/testAtlas.js';
import { kvBytesFull } from '../runtime/generate.js';
import { Model } from '../runtime/model.js';
import { kvReport, resolveCacheSetup, type KvFlags } from './kvFlags.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'headwise-kvflags-'));
process.env.HEADWISE_CACHE ??= path.join(tmp, 'cache');

const base: KvFlags = { kv: 'duo', sink: 4, window: 64, fullHeads: 0.5, kvMetric: 'retrieval' };
const fullOf = (layout: { kvHeads: number[]; cacheClass: string }[][]) =>
  layout.flatMap((groups, l) => groups.filter((g) => g.cacheClass === 'full').flatMap((g) => g.kvHeads.map((h) => `${l}:${h}`))).sort();

describe('KV flags (tiny-llama: 2 layers × 2 KV heads)', () => {
  let model: Model;
  let atlasFile: string;
  beforeAll(async () => {
    model = await Model.load(path.resolve('test/fixtures/models/tiny-llama'));
    // retrieval is 0 everywhere but layer 1 KV head 0: the second full head is a tie, broken by streaming harm
    const a = testAtlas();
    a.metrics.retrieval = [[0, 0, 0, 0], [0.9, 0, 0, 0]];
    atlasFile = path.join(tmp, 'atlas.json');
    writeAtlas(atlasFile, a);
  });
  afterAll(async () => {
    await model?.dispose();
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  it('duo --atlas ranks by the chosen metric and breaks its ties with the other one', async () => {
    const byRetrieval = await resolveCacheSetup(model, { ...base, atlas: atlasFile });
    expect(fullOf(byRetrieval.setup.layout)).toEqual(['0:1', '1:0']); // 0:1 has the higher streaming harm (0.5)
    expect(byRetrieval.describe).toMatchObject({ policy: 'duo', fullHeads: 0.5, metric: 'retrieval', source: atlasFile, razor: false });
    const byHarm = await resolveCacheSetup(model, { ...base, atlas: atlasFile, kvMetric: 'streamingHarm', fullHeads: 0.25 });
    expect(fullOf(byHarm.setup.layout)).toEqual(['1:0']);
  });

  it('--razor adds the compensation token to streaming heads, and is refused with --kv full', async () => {
    const r = await resolveCacheSetup(model, { ...base, kv: 'streaming', razor: true });
    expect(r.setup.policies.get('stream')).toEqual({ kind: 'window', sink: 4, window: 64, compensate: true });
    expect(r.describe).toMatchObject({ policy: 'streaming', razor: true });
    await expect(resolveCacheSetup(model, { ...base, kv: 'full', razor: true })).rejects.toThrow(/--razor applies to --kv streaming or duo/);
  });

  it('kvReport gives measured bytes, full attention bytes, their ratio and r + (1 − r)(S + W)/N', async () => {
    const { setup } = await resolveCacheSetup(model, { ...base, atlas: atlasFile });
    const full = kvBytesFull(model, 1000);
    const r = kvReport(model, base, setup, 0.3 * full, 1000);
    expect(r.kvBytesFull).toBe(full);
    expect(r.kvRatio).toBeCloseTo(0.3, 12);
    expect(r.kvRatioTheoretical).toBeCloseTo(0.5 + 0.5 * 68 / 1000, 12);
    expect(kvReport(model, { ...base, razor: true }, setup, 1, 1000).kvRatioTheoretical).toBeCloseTo(0.5 + 0.5 * 69 / 1000, 12);
  });
});
