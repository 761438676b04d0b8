/**
 * LongHeads per step (`--kv longheads`, `ChunkStepClass`): the representatives and scores on hand-made
 * keys and queries, a chunk dropped at one step coming back at a later one, and on real graphs
 * (ref-llama-7m): bit-identical to full attention when the budget covers the context, each step's
 * gathered attention equal to full attention with the other rows masked, and the bytes held (full)
 * and attended (the budget) reported apart.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { uniformLayout } from '../graph/layout.js';
import { NO_HOOKS } from '../graph/hooks.js';
import { forward } from '../runtime/forward.js';
import { fullCache, generate, prefill, type CacheSetup } from '../runtime/generate.js';
import { KvCache, type ClassPolicy } from '../runtime/kvCache.js';
import { Model } from '../runtime/model.js';
import { stepQueryHooks } from '../runtime/stepAttention.js';
import { ChunkStepClass } from './classPolicy.js';
import { cacheSetup } from './policy.js';
import { chunkMeans, repScores } from './selection.js';

process.env.HEADWISE_CACHE ??= fs.mkdtempSync(path.join(os.tmpdir(), 'headwise-test-'));

describe('LongHeads step scoring (hand-made keys and queries)', () => {
  it('a representative is its chunk\'s mean key; a score is q·rep summed over the KV head\'s query heads', () => {
    const reps = new Float32Array(6);
    // 3 chunks of 2 rows, headDim 2
    chunkMeans(Float32Array.of(1, 0, 3, 2, /**/ 0, 4, 0, 6, /**/ -1, -1, 1, 1), 2, 2, 0, 3, reps);
    expect(Array.from(reps)).toEqual([2, 1, 0, 5, 0, 0]);
    // from/to: only the chunks asked for are (re)written
    const part = new Float32Array(6).fill(9);
    chunkMeans(Float32Array.of(1, 0, 3, 2, 0, 4, 0, 6), 2, 2, 1, 2, part);
    expect(Array.from(part)).toEqual([9, 9, 0, 5, 9, 9]);
    expect(Array.from(repScores(Float32Array.of(1, 0), 2, reps, 3))).toEqual([2, 0, 0]);
    // two query heads: (1,0) + (0,1)
    expect(Array.from(repScores(Float32Array.of(1, 0, 0, 1), 2, reps, 3))).toEqual([3, 5, 0]);
  });

  // 1 layer, 1 KV head, headDim 2; chunks of 4 tokens, sink 1, window 4: chunk 0 and the last are always attended.
  const D = 2;
  const policy = new ChunkStepClass({ sink: 1, window: 4, chunk: 4, budget: 0.4 });
  const cacheOf = () => new KvCache(uniformLayout(1, 1, 'chunks'), new Map<string, ClassPolicy>([['chunks', policy]]), D);
  const append = (cache: KvCache, keys: number[][]) => {
    const key = Float32Array.from(keys.flat());
    cache.update([[{ key, value: new Float32Array(key.length) }]], keys.map((_, i) => cache.seen + i));
  };
  const chunksOf = (rows: number[]) => [...new Set(rows.map((r) => Math.floor(r / 4)))];

  it('the chunk a step attends to follows its query: dropped at one step, back at a later one', () => {
    const cache = cacheOf();
    // 6 chunks: chunk 2 points along x, chunk 3 along y, the rest nowhere
    const chunk = (k: number[]) => Array.from({ length: 4 }, () => k);
    append(cache, [...chunk([0, 0]), ...chunk([0, 0]), ...chunk([1, 0]), ...chunk([0, 1]), ...chunk([0, 0]), ...chunk([0, 0])]);
    // 24 held: floor(0.4 · 25) − 1 = 9 rows — first and last chunk (8) leave room for no middle chunk
    expect(policy.attended(24)).toBe(9);
    expect(chunksOf(policy.stepRows(cache, 0, 0, Float32Array.of(1, 0))![0])).toEqual([0, 5]);
    append(cache, chunk([0, 0]));
    // 28 held: 10 past rows, still one middle chunk short
    append(cache, chunk([0, 0]));
    // 32 held: 12 rows — one middle chunk
    const x = policy.stepRows(cache, 0, 0, Float32Array.of(1, 0))![0];
    expect(chunksOf(x)).toEqual([0, 2, 7]);
    expect(x).toEqual([0, 1, 2, 3, 8, 9, 10, 11, 28, 29, 30, 31]);
    const y = policy.stepRows(cache, 0, 0, Float32Array.of(0, 1))![0];
    expect(chunksOf(y)).toEqual([0, 3, 7]);
    expect(chunksOf(policy.stepRows(cache, 0, 0, Float32Array.of(1, 0))![0])).toEqual([0, 2, 7]);
  });

  it('chunks completed while decoding get a representative and can be picked', () => {
    const cache = cacheOf();
    append(cache, Array.from({ length: 32 }, () => [0, 0]));
    // a decoded chunk (rows 32..35) along x, then one more chunk so it is no longer the last
    append(cache, Array.from({ length: 4 }, () => [1, 0]));
    // a step while it is the last chunk: attended anyway; the representatives cover chunks 0..8
    expect(chunksOf(policy.stepRows(cache, 0, 0, Float32Array.of(1, 0))![0])).toContain(8);
    expect((cache.stepState.get('0:0') as { done: number }).done).toBe(9);
    append(cache, Array.from({ length: 4 }, () => [0, 0]));
    const rows = policy.stepRows(cache, 0, 0, Float32Array.of(1, 0))![0];
    expect(chunksOf(rows)).toContain(8);
    // and the opposite query does not pick it
    expect(chunksOf(policy.stepRows(cache, 0, 0, Float32Array.of(-1, 0))![0])).not.toContain(8);
    // reset forgets the representatives
    cache.reset();
    expect(cache.stepState.size).toBe(0);
  });

  it('a budget that covers the context attends to every row (null)', () => {
    const all = new ChunkStepClass({ sink: 1, window: 4, chunk: 4, budget: 1 });
    const cache = new KvCache(uniformLayout(1, 1, 'chunks'), new Map<string, ClassPolicy>([['chunks', all]]), D);
    append(cache, Array.from({ length: 30 }, (_, i) => [i, 1]));
    expect(all.stepRows(cache, 0, 0, Float32Array.of(1, 0))).toBeNull();
  });
});

function tokens(model: Model, n: number, seed = 3): number[] {
  let a = seed;
  return Array.from({ length: n }, () => {
    a = (a * 1103515245 + 12345) % 2 ** 31;
    return 1 + (a % (model.config.vocabSize - 1));
  });
}

/** The chunk rule, recording what each call picked: [layer][group] → rows per head, in call order. */
class RecordingClass extends ChunkStepClass {
  readonly picks: { l: number; g: number; rows: number[][] | null }[] = [];
  override stepRows(cache: KvCache, l: number, g: number, query: Float32Array): number[][] | null {
    const rows = super.stepRows(cache, l, g, query);
    this.picks.push({ l, g, rows });
    return rows;
  }
}

describe.skipIf(!fs.existsSync('models/ref-llama-7m'))('LongHeads per step on ref-llama-7m', () => {
  let model: Model;
  beforeAll(async () => {
    model = await Model.load(path.resolve('models/ref-llama-7m'));
  });
  afterAll(async () => model?.dispose());
  const recording = (budget: number) => {
    const policy = new RecordingClass({ sink: 4, window: 32, chunk: 16, budget });
    const setup: CacheSetup = { layout: uniformLayout(model.config.numLayers, model.config.numKvHeads, 'chunks'), policies: new Map<string, ClassPolicy>([['chunks', policy]]) };
    return { policy, setup };
  };

  it('is bit-identical to full attention when its budget covers the whole context', async () => {
    const ids = tokens(model, 300);
    const opts = { maxNewTokens: 12, stopAtEos: false, prefillChunk: 128 };
    const full = await prefill(model, ids, opts);
    const ref = await generate(model, ids, opts);
    const setup = cacheSetup(model.config, { policy: 'longheads', budget: 1, window: 32 });
    const p = await prefill(model, ids, { ...opts, cache: setup });
    expect(Array.from(p.logits)).toEqual(Array.from(full.logits));
    const g = await generate(model, ids, { ...opts, cache: setup });
    expect(g.tokens).toEqual(ref.tokens);
    expect(g.kvBytes).toBe(ref.kvBytes);
  });

  it('each step attends to the picked rows only: equal to full attention with the other rows masked, step after step', async () => {
    const c = model.config;
    const ids = tokens(model, 400, 11);
    const next = [17, 250, 3, 99, 1000, 42, 7];
    const { policy, setup } = recording(0.3);
    const { cache } = await prefill(model, ids, { cache: setup, maxNewTokens: next.length + 1 });
    const gs = await model.session(setup.layout, stepQueryHooks(setup.policies, NO_HOOKS, c.numLayers));
    // the reference: the full cache and graph, each head's other keys masked by a score bias
    const all = Array.from({ length: c.numLayers }, (_, l) => l);
    const full = fullCache(model);
    const ref = await prefill(model, ids, { cache: full, maxNewTokens: next.length + 1 });
    const biased = await model.session(full.layout, { ...NO_HOOKS, scoreBias: all });
    const rep = c.numHeads / c.numKvHeads;
    const rowBytes = 2 * c.headDim * 4;
    const sets: string[] = [];
    for (const [t, id] of next.entries()) {
      policy.picks.length = 0;
      const step = await forward(model, gs, cache, [id]);
      const picks = policy.picks.filter((p) => p.rows);
      expect(picks.length).toBe(c.numLayers);
      const n = ids.length + t;
      const attendedRows = picks[0].rows![0].length;
      expect(attendedRows).toBeLessThanOrEqual(Math.floor(0.3 * (n + 1)) - 1);
      expect(attendedRows).toBeGreaterThan(0.2 * (n + 1));
      // bytes: everything held, the budget attended
      expect(cache.kvBytesUsed).toBe(c.numLayers * c.numKvHeads * (n + 1) * rowBytes);
      expect(cache.kvBytesAttended).toBe(c.numLayers * c.numKvHeads * (attendedRows + 1) * rowBytes);
      sets.push(picks.map((p) => p.rows!.map((r) => r.join()).join('|')).join('/'));
      const masked = await forward(model, biased, ref.cache, [id], {
        hooks: {
          scoreBias(l, heads, _q, keys) {
            const rows = picks.find((p) => p.l === l)!.rows!;
            const bias = new Float32Array(heads.length * keys.length).fill(-1e30);
            heads.forEach((h, i) => {
              for (const r of rows[Math.floor(h / rep)]) bias[i * keys.length + r] = 0;
              bias[i * keys.length + keys.length - 1] = 0; // the step's own token
            });
            return bias;
          },
        },
      });
      let worst = 0;
      for (let i = 0; i < step.logits.length; i++) worst = Math.max(worst, Math.abs(step.logits[i] - masked.logits[i]));
      expect(worst).toBeLessThan(1e-4);
    }
    // the selections differed between steps (the gathered slots were reused, not rebuilt)
    expect(new Set(sets).size).toBeGreaterThan(1);
    // and the masking matters: full attention differs
    const plain = await forward(model, await model.session(full.layout), (await prefill(model, ids, { cache: full, maxNewTokens: 2 })).cache, [next[0]]);
    const first = await forward(model, gs, (await prefill(model, ids, { cache: setup, maxNewTokens: 2 })).cache, [next[0]]);
    let diff = 0;
    for (let i = 0; i < first.logits.length; i++) diff = Math.max(diff, Math.abs(first.logits[i] - plain.logits[i]));
    expect(diff).toBeGreaterThan(1e-3);
  });

  it('the chunks a head attends to change from step to step while decoding', async () => {
    const ids = tokens(model, 500, 5);
    const { policy, setup } = recording(0.25);
    const g = await generate(model, ids, { cache: setup, maxNewTokens: 12, stopAtEos: false });
    expect(g.tokens.length).toBe(12);
    // nothing freed: the full KV is held
    expect(g.kvBytes).toBe((await generate(model, ids, { maxNewTokens: 12, stopAtEos: false })).kvBytes);
    const chunks = (rows: number[]) => [...new Set(rows.map((r) => Math.floor(r / 16)))].join(',');
    let changed = 0;
    for (let l = 0; l < model.config.numLayers; l++) for (let j = 0; j < model.config.numKvHeads; j++) {
      const sets = policy.picks.filter((p) => p.l === l && p.rows).map((p) => chunks(p.rows![j]));
      expect(sets.length).toBe(11);
      if (new Set(sets).size > 1) changed++;
    }
    expect(changed).toBeGreaterThan(0);
  });
});
