/**
 * The KV policies on real graphs: streaming and duo against a reference computed with full attention
 * and the sink/window rule written as an explicit score mask (the `scoreBias` hook), chunked prefill
 * with chunks longer than the window against one token at a time, identity with `full` when every
 * head keeps everything, and the bytes the buffers hold against r + (1 − r)(S + W)/N.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { groupQueryHeads } from '../graph/layout.js';
import { forward, type HookProvider } from '../runtime/forward.js';
import { fullCache, generate, kvBytesFull, type CacheSetup } from '../runtime/generate.js';
import { COMPENSATION_POSITION, KvCache } from '../runtime/kvCache.js';
import { Model } from '../runtime/model.js';
import { cacheSetup, chooseFullHeads, theoreticalKvRatio } from './policy.js';
import { FULL_HISTORY } from './classPolicy.js';

process.env.HEADWISE_CACHE ??= fs.mkdtempSync(path.join(os.tmpdir(), 'headwise-test-'));

const NEG = -1e30;

/** Deterministic pseudo-random token ids (BOS first when the model has one). */
function tokens(model: Model, n: number, seed = 1): number[] {
  let a = seed;
  const V = model.config.vocabSize;
  return Array.from({ length: n }, (_, i) => {
    if (i === 0 && model.config.bosTokenId !== null) return model.config.bosTokenId;
    a = (a * 1103515245 + 12345) % 2 ** 31;
    return 1 + (a % (V - 1));
  });
}

/** Logits of every position [T, V], running the prompt in chunks of `chunk` under `setup`. */
async function allLogits(model: Model, setup: CacheSetup, ids: number[], chunk: number): Promise<{ logits: Float32Array; cache: KvCache }> {
  const gs = await model.session(setup.layout);
  const cache = new KvCache(setup.layout, setup.policies, model.config.headDim);
  const V = model.config.vocabSize;
  const logits = new Float32Array(ids.length * V);
  for (let i = 0; i < ids.length; i += chunk) {
    const part = ids.slice(i, i + chunk);
    const r = await forward(model, gs, cache, part, { logitsAt: part.map((_, k) => k) });
    logits.set(r.logits, i * V);
  }
  return { logits, cache };
}

/**
 * Reference: full attention in one pass, with the keys a streaming head would not see (neither among
 * the first `sink` nor the last `window` up to the query) masked out through the score-bias hook.
 */
async function referenceLogits(model: Model, setup: CacheSetup, ids: number[], sink: number, window: number): Promise<Float32Array> {
  const c = model.config;
  const layers = Array.from({ length: c.numLayers }, (_, l) => l);
  const gs = await model.session(model.fullLayout(), { capturePattern: [], captureZ: [], headHooks: false, scoreBias: layers, act: [] });
  const streamingHead = setup.layout.map((groups) => {
    const s = new Set<number>();
    for (const g of groups) if (g.cacheClass !== 'full') for (const h of groupQueryHeads(g, c.numHeads, c.numKvHeads)) s.add(h);
    return s;
  });
  const hooks: HookProvider = {
    scoreBias(layer, heads, queryPositions, keyPositions) {
      const q = queryPositions.length;
      const K = keyPositions.length;
      const bias = new Float32Array(heads.length * q * K);
      heads.forEach((h, i) => {
        if (!streamingHead[layer].has(h)) return;
        for (let t = 0; t < q; t++) {
          for (let k = 0; k < K; k++) {
            const s = keyPositions[k];
            const tq = queryPositions[t];
            if (s <= tq && !(s < sink || tq - s < window)) bias[(i * q + t) * K + k] = NEG;
          }
        }
      });
      return bias;
    },
  };
  const cache = new KvCache(gs.layout, new Map([['full', FULL_HISTORY]]), c.headDim);
  const r = await forward(model, gs, cache, ids, { logitsAt: ids.map((_, i) => i), hooks });
  return r.logits;
}

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

/** Per-KV-head scores that make `chooseFullHeads` pick a fixed, spread-out set. */
function spreadScores(layers: number, kvHeads: number): number[][] {
  return Array.from({ length: layers }, (_, l) => Array.from({ length: kvHeads }, (_, g) => ((l * 5 + g * 3) % 7) / 7 + l * 1e-3 + g * 1e-4));
}

interface Case {
  name: string;
  dir: string;
  tokens: number;
  sink: number;
  window: number;
  chunk: number;
  fullHeads: number;
}

const CASES: Case[] = [
  { name: 'tiny-llama (GQA)', dir: 'test/fixtures/models/tiny-llama', tokens: 100, sink: 2, window: 8, chunk: 32, fullHeads: 0.5 },
  { name: 'tiny-qwen3 (q/k norms)', dir: 'test/fixtures/models/tiny-qwen3', tokens: 90, sink: 3, window: 10, chunk: 25, fullHeads: 0.25 },
  { name: 'tiny-gpt2 (MHA)', dir: 'test/fixtures/models/tiny-gpt2', tokens: 60, sink: 1, window: 7, chunk: 20, fullHeads: 0.5 },
  { name: 'ref-llama-7m', dir: 'models/ref-llama-7m', tokens: 300, sink: 4, window: 32, chunk: 100, fullHeads: 0.25 },
];

describe.each(CASES.map((c) => [c.name, c] as const))('KV policies on %s', (_name, tc) => {
  let model: Model;
  let ids: number[];
  let full: Float32Array;
  beforeAll(async () => {
    model = await Model.load(path.resolve(tc.dir));
    ids = tokens(model, tc.tokens);
    full = (await allLogits(model, fullCache(model), ids, tc.chunk)).logits;
  });
  afterAll(async () => model?.dispose());

  const setupOf = (policy: 'streaming' | 'duo', extra: { window?: number; fullHeads?: number; compensate?: boolean } = {}) =>
    cacheSetup(model.config, {
      policy,
      sink: tc.sink,
      window: extra.window ?? tc.window,
      fullHeads: extra.fullHeads ?? tc.fullHeads,
      kvHeadScores: spreadScores(model.config.numLayers, model.config.numKvHeads),
      compensate: extra.compensate,
    });

  for (const policy of ['streaming', 'duo'] as const) {
    it(`${policy}: a prompt longer than the window, prefilled in chunks longer than the window, matches full attention under an explicit sink/window mask`, async () => {
      const setup = setupOf(policy);
      expect(tc.chunk).toBeGreaterThan(tc.window);
      const ref = await referenceLogits(model, setup, ids, tc.sink, tc.window);
      const chunked = await allLogits(model, setup, ids, tc.chunk);
      expect(maxAbsDiff(chunked.logits, ref)).toBeLessThanOrEqual(1e-4);
      // and it is not simply full attention
      expect(maxAbsDiff(chunked.logits, full)).toBeGreaterThan(1e-3);
      // the window really slid: streaming buffers hold sink + window tokens
      const held = chunked.cache.positions.get('stream')!;
      expect(held).toEqual([...Array(tc.sink).keys(), ...Array.from({ length: tc.window }, (_, i) => tc.tokens - tc.window + i)]);
    });

    it(`${policy}: chunked prefill equals one token at a time`, async () => {
      const setup = setupOf(policy);
      const n = Math.min(ids.length, 3 * tc.window);
      const a = await allLogits(model, setup, ids.slice(0, n), tc.chunk);
      const b = await allLogits(model, setup, ids.slice(0, n), 1);
      expect(maxAbsDiff(a.logits, b.logits)).toBeLessThanOrEqual(1e-4);
    });
  }

  it('duo with every head full (bit for bit) and streaming with window ≥ context give full attention', async () => {
    const duoAll = setupOf('duo', { fullHeads: 1 });
    expect(duoAll.layout.every((groups) => groups.length === 1 && groups[0].cacheClass === 'full')).toBe(true);
    expect(maxAbsDiff((await allLogits(model, duoAll, ids, tc.chunk)).logits, full)).toBe(0);
    // A window buffer is read without the masked slack rows of a banded full buffer: only rounding differs.
    const wide = setupOf('streaming', { window: tc.tokens });
    expect(maxAbsDiff((await allLogits(model, wide, ids, tc.chunk)).logits, full)).toBeLessThanOrEqual(1e-4);
    // The compensation row is there but masked until something is evicted: only rounding differs.
    const wideRazor = setupOf('streaming', { window: tc.tokens, compensate: true });
    expect(maxAbsDiff((await allLogits(model, wideRazor, ids, tc.chunk)).logits, full)).toBeLessThanOrEqual(1e-4);
  });

  it('razor: the compensation token changes what streaming heads see once tokens are evicted', async () => {
    const plain = await allLogits(model, setupOf('duo'), ids, tc.chunk);
    const razor = await allLogits(model, setupOf('duo', { compensate: true }), ids, tc.chunk);
    expect(razor.cache.positions.get('stream')![0]).toBe(COMPENSATION_POSITION);
    expect(razor.cache.compensated.get('stream')).toBe(tc.tokens - tc.sink - tc.window);
    expect(razor.logits.every(Number.isFinite)).toBe(true);
    // identical until the first eviction, different after
    const V = model.config.vocabSize;
    const upTo = (x: Float32Array, n: number) => x.subarray(0, n * V);
    expect(maxAbsDiff(upTo(razor.logits, tc.chunk), upTo(plain.logits, tc.chunk))).toBeLessThanOrEqual(1e-4);
    expect(maxAbsDiff(razor.logits, plain.logits)).toBeGreaterThan(1e-4);
  });
});

describe('KV policy setup and accounting (ref-llama-7m)', () => {
  let model: Model;
  beforeAll(async () => {
    model = await Model.load(path.resolve('models/ref-llama-7m'));
  });
  afterAll(async () => model?.dispose());

  it('chooses round(r · all) KV heads by score and groups each layer into dense full / stream groups', () => {
    const c = model.config;
    const scores = spreadScores(c.numLayers, c.numKvHeads);
    for (const r of [0, 0.125, 0.25, 0.5, 1]) {
      const keep = chooseFullHeads(scores, r);
      expect(keep.size).toBe(Math.round(r * c.numLayers * c.numKvHeads));
      const setup = cacheSetup(c, { policy: 'duo', fullHeads: r, kvHeadScores: scores });
      setup.layout.forEach((groups, l) => {
        expect(groups.flatMap((g) => g.kvHeads).sort()).toEqual([...Array(c.numKvHeads).keys()]);
        for (const g of groups) for (const h of g.kvHeads) expect(g.cacheClass).toBe(keep.has(`${l}:${h}`) ? 'full' : 'stream');
      });
      const min = Math.min(...[...keep].map((k) => { const [l, g] = k.split(':').map(Number); return scores[l][g]; }));
      const others = scores.flatMap((row, l) => row.filter((_, g) => !keep.has(`${l}:${g}`)));
      if (keep.size && others.length) expect(Math.max(...others)).toBeLessThanOrEqual(min);
    }
    // ties on the score go to the tie-break score, NaN ranks last
    const flat = [[0.9, 0, 0, NaN], [0, 0, 0.5, 0]];
    expect([...chooseFullHeads(flat, 3 / 8)].sort()).toEqual(['0:0', '0:1', '1:2']);
    expect([...chooseFullHeads(flat, 3 / 8, [[0, 0, 0, 9], [0, 0.2, 0, 0.1]])].sort()).toEqual(['0:0', '1:1', '1:2']);
    expect([...chooseFullHeads(flat, 1)].length).toBe(8);
    expect(() => cacheSetup(c, { policy: 'duo', fullHeads: 0.25 })).toThrow(/scores/);
    expect(() => cacheSetup(c, { policy: 'duo', fullHeads: 1.5, kvHeadScores: scores })).toThrow(/between 0 and 1/);
    expect(() => cacheSetup(c, { policy: 'streaming', window: 0 })).toThrow(/^window must be/);
  });

  it('generate reports kvBytes measured from the buffers: duo at 25% holds r + (1 − r)(S + W)/N of full attention, streaming S + W rows', async () => {
    const c = model.config;
    const ids = tokens(model, 1000, 7);
    const maxNewTokens = 24;
    const runs = {
      full: await generate(model, ids, { maxNewTokens, stopAtEos: false, cache: cacheSetup(c, { policy: 'full' }) }),
      streaming: await generate(model, ids, { maxNewTokens, stopAtEos: false, cache: cacheSetup(c, { policy: 'streaming' }) }),
      duo: await generate(model, ids, { maxNewTokens, stopAtEos: false, cache: cacheSetup(c, { policy: 'duo', fullHeads: 0.25, kvHeadScores: spreadScores(c.numLayers, c.numKvHeads) }) }),
    };
    // generate reserves the prompt and the new tokens fed back up front: the full buffers hold exactly
    // N = 1000 + 23 rows, the streaming ones S + W
    const N = ids.length + maxNewTokens - 1;
    for (const r of Object.values(runs)) expect(r.kvBytesFull).toBe(kvBytesFull(model, N));
    const rowBytes = 2 * c.headDim * 4;
    const all = c.numLayers * c.numKvHeads;
    expect(runs.full.kvBytes).toBe(runs.full.kvBytesFull);
    expect(runs.full.kvBytes).toBe(all * N * rowBytes);
    expect(runs.streaming.kvBytes).toBe(all * (4 + 64) * rowBytes);
    const r = Math.round(0.25 * all) / all;
    expect(runs.duo.kvBytes / runs.full.kvBytes).toBeCloseTo(theoreticalKvRatio(r, 4, 64, N), 12);
    expect(runs.duo.kvBytes / runs.duo.kvBytesFull).toBeLessThanOrEqual(0.35);
  });

  it('generate never reserves past the model context, however many tokens are asked for', async () => {
    const tiny = await Model.load(path.resolve('test/fixtures/models/tiny-llama'));
    try {
      const c = tiny.config;
      const r = await generate(tiny, tokens(tiny, 10), { maxNewTokens: 1_000_000, stopAtEos: false });
      expect(r.stoppedBy).toBe('context');
      expect(r.kvBytes).toBe(2 * c.numLayers * c.numKvHeads * c.maxPositions * c.headDim * 4);
    } finally {
      await tiny.dispose();
    }
  });
});
