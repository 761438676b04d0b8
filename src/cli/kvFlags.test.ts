import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeAtlas } from '../atlas/file.js';
import { testAtlas } from '../atlas/testAtlas.js';
import { loadHaystack } from '../eval/haystack.js';
import { niahSamples } from '../eval/niahSet.js';
import { runNiah } from '../eval/niahRun.js';
import { kvBytesFull } from '../runtime/generate.js';
import { Model } from '../runtime/model.js';
import { UsageError } from '../errors.js';
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
    expect(r.setup.policies.get('stream')).toMatchObject({ kind: 'window', sink: 4, window: 64, compensate: true, maxRows: 69 });
    expect(r.describe).toMatchObject({ policy: 'streaming', razor: true });
    await expect(resolveCacheSetup(model, { ...base, kv: 'full', razor: true })).rejects.toThrow(/--razor applies to --kv streaming or duo/);
  });

  it('selection policies: flags reach the setup, errors name the flag, misplaced format flags are refused', async () => {
    const snap = await resolveCacheSetup(model, { ...base, kv: 'snapkv', kvBudget: 0.4 });
    expect(snap.setup.selection).toBeDefined();
    expect(snap.describe).toMatchObject({ policy: 'snapkv', budget: 0.4 });
    const lh = await resolveCacheSetup(model, { ...base, kv: 'longheads', kvChunk: 8 });
    expect(lh.describe).toMatchObject({ policy: 'longheads', chunk: 8 });
    const hk = await resolveCacheSetup(model, { ...base, kv: 'headkv', atlas: atlasFile, kvMetric: 'mix', kvBudget: 0.3 });
    expect(hk.setup.layout.flat().length).toBeLessThanOrEqual(4); // one group per size class and layer
    expect(hk.describe).toMatchObject({ policy: 'headkv', metric: 'mix', source: atlasFile, sizeClasses: 4 });
    const two = await resolveCacheSetup(model, { ...base, kv: 'headkv', atlas: atlasFile, kvMetric: 'mix', kvBudget: 0.3, kvSizeClasses: 2 });
    expect(new Set(two.setup.layout.flat().map((g) => g.cacheClass)).size).toBeLessThanOrEqual(2);
    await expect(resolveCacheSetup(model, { ...base, kv: 'headkv', atlas: atlasFile, kvSizeClasses: 0.5 })).rejects.toThrow(/^--kv-size-classes must be a positive integer/);
    await expect(resolveCacheSetup(model, { ...base, kv: 'snapkv', kvBudget: 0 })).rejects.toThrow(/^--kv-budget must be in \(0, 1\]/);
    await expect(resolveCacheSetup(model, { ...base, kv: 'streaming', pattern: tmp })).rejects.toThrow(/--pattern applies to --kv duo/);
    await expect(resolveCacheSetup(model, { ...base, kv: 'snapkv', headScores: 'x.json' })).rejects.toThrow(/--head-scores applies to --kv duo or headkv/);
    await expect(resolveCacheSetup(model, { ...base, kv: 'duo', atlas: atlasFile, headScores: 'x.json' })).rejects.toThrow(/one of --atlas, --pattern and --head-scores/);
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

describe('KV flags on a sliding-window model (tiny-mistral-swa: window 8 on both layers)', () => {
  let model: Model;
  beforeAll(async () => (model = await Model.load(path.resolve('test/fixtures/models/tiny-mistral-swa'))));
  afterAll(async () => model?.dispose());

  it('selection policies are refused before any work, naming --kv; streaming and duo compose with the window', async () => {
    for (const kv of ['snapkv', 'headkv', 'longheads'] as const) {
      const err = await resolveCacheSetup(model, { ...base, kv }).catch((e: Error) => e);
      expect(err).toBeInstanceOf(UsageError);
      expect((err as Error).message).toBe(`--kv ${kv} applies to models without sliding-window layers (layer 0 has a window of 8 tokens): use full, streaming or duo`);
    }
    const streaming = await resolveCacheSetup(model, { ...base, kv: 'streaming', sink: 2, window: 4 });
    expect([...streaming.setup.policies.keys()]).toEqual(['stream@w8']);
    expect(streaming.setup.policies.get('stream@w8')).toMatchObject({ kind: 'window', sink: 2, window: 4, limit: 8, maxRows: 6 });
    const scores = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'headwise-kvflags-swa-')), 'scores.json');
    fs.writeFileSync(scores, JSON.stringify(Object.fromEntries(Array.from({ length: 8 }, (_, i) => [`${i >> 2}-${i & 3}`, [i / 10]]))));
    const duo = await resolveCacheSetup(model, { ...base, kv: 'duo', headScores: scores, fullHeads: 0.5 });
    expect(duo.setup.policies.get('full@w8')).toMatchObject({ kind: 'window', sink: 0, window: 8, limit: 8 });
    expect((duo.describe.fullKvHeads as number[][]).flat()).toHaveLength(Math.round(0.5 * model.config.numLayers * model.config.numKvHeads));
    fs.rmSync(path.dirname(scores), { recursive: true, force: true });
  });
});

describe('DuoAttention export → import round trip (ref-llama-7m)', () => {
  let model: Model;
  let tmp: string;
  beforeAll(async () => {
    model = await Model.load(path.resolve('models/ref-llama-7m'));
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'headwise-duo-trip-'));
  });
  afterAll(async () => {
    await model?.dispose();
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  it('--export-duo then --pattern: identical head sets, sink/recent sizes and needle outcomes', async () => {
    const c = model.config;
    // Retrieval_Head-style scores, most heads tied at 0 (as real retrieval scores are)
    const scores: Record<string, number[]> = {};
    for (let l = 0; l < c.numLayers; l++) for (let h = 0; h < c.numHeads; h++) scores[`${l}-${h}`] = (l * 7 + h * 3) % 5 === 0 ? [0.2 + l / 10, h / 10] : [0];
    const file = path.join(tmp, 'scores.json');
    fs.writeFileSync(file, JSON.stringify(scores));
    const dir = path.join(tmp, 'duo-7m');
    const flags: KvFlags = { kv: 'duo', sink: 2, window: 24, fullHeads: 0.25, kvMetric: 'retrieval' };
    const exported = await resolveCacheSetup(model, { ...flags, headScores: file, exportDuo: dir });
    const imported = await resolveCacheSetup(model, { ...flags, sink: 9, window: 99, fullHeads: 0.9, pattern: dir });
    expect(fullOf(imported.setup.layout)).toEqual(fullOf(exported.setup.layout));
    expect(fullOf(exported.setup.layout)).toHaveLength(Math.round(0.25 * c.numLayers * c.numKvHeads));
    expect(imported.describe).toMatchObject({ sink: 2, window: 24, metric: 'pattern', source: dir });
    const items = niahSamples(model.tokenizer!, loadHaystack(), { contextTokens: [256], depths: [0, 0.5, 1], samples: 6, seed: 5 });
    const a = await runNiah(model, items, { cache: exported.setup });
    const b = await runNiah(model, items, { cache: imported.setup });
    expect(b.outcomes.map((o) => o.text)).toEqual(a.outcomes.map((o) => o.text));
    expect(b.accuracy).toBe(a.accuracy);
    expect(b.kvBytes).toBe(a.kvBytes);
  });
});
