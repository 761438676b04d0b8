/**
 * `forward(..., { branches })`: several continuations of one cached prefix in one graph run give the
 * same logits and attention as running each alone with `commit: false`, and leave the cache as it was.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { forward, newCache } from './forward.js';
import { Model } from './model.js';
import { FULL_HISTORY } from '../kv/classPolicy.js';

process.env.HEADWISE_CACHE ??= fs.mkdtempSync(path.join(os.tmpdir(), 'headwise-test-'));

const full = new Map([['full', FULL_HISTORY]]);

describe('forward with branches', () => {
  let model: Model;
  beforeAll(async () => {
    model = await Model.load(path.resolve('test/fixtures/models/tiny-llama'));
  });
  afterAll(async () => model?.dispose());

  it('matches separate commit:false runs, with per-branch score bias, and leaves the cache alone', async () => {
    const c = model.config;
    const all = Array.from({ length: c.numLayers }, (_, l) => l);
    const gs = await model.session(model.fullLayout(), { capturePattern: all, captureZ: [], headHooks: false, scoreBias: all, act: [] });
    const cache = newCache(model, gs, full);
    await forward(model, gs, cache, [1, 5, 9, 13, 17, 21, 25, 29]);
    const conts = [[3, 4, 5], [7, 8, 9], [11, 12, 13]];
    // Branch b masks key position b on layer 1 (a stand-in for a per-variant head change).
    const biasFor = (b: number) => (layer: number, heads: number[], qp: Int32Array, kp: Int32Array) => {
      const out = new Float32Array(heads.length * qp.length * kp.length);
      if (layer !== 1) return out;
      for (let h = 0; h < heads.length; h++) for (let t = 0; t < qp.length; t++) for (let s = 0; s < kp.length; s++) {
        const branch = Math.floor(t / 3) + b; // single runs pass their branch as b; the batched run passes 0
        if (kp[s] === branch) out[(h * qp.length + t) * kp.length + s] = -1e30;
      }
      return out;
    };
    const singles = [];
    for (let b = 0; b < conts.length; b++) {
      singles.push(await forward(model, gs, cache, conts[b], { commit: false, logitsAt: [0, 1, 2], captureRows: [0, 1, 2], hooks: { scoreBias: biasFor(b) } }));
    }
    const rows = Array.from({ length: 9 }, (_, i) => i);
    const batched = await forward(model, gs, cache, conts.flat(), { commit: false, branches: 3, logitsAt: rows, captureRows: rows, hooks: { scoreBias: biasFor(0) } });
    expect(cache.seen).toBe(8);
    const V = c.vocabSize;
    let worst = 0;
    singles.forEach((r, b) => {
      for (let i = 0; i < 3 * V; i++) worst = Math.max(worst, Math.abs(r.logits[i] - batched.logits[b * 3 * V + i]));
    });
    expect(worst).toBeLessThan(1e-4);
    // Attention: branch b's rows over [cache keys, own keys] equal the single run's; other branches get 0.
    const p = batched.patterns[1];
    const K = p.keyPositions.length;
    expect(K).toBe(8 + 9);
    expect(Array.from(p.keyPositions.slice(8))).toEqual([8, 9, 10, 8, 9, 10, 8, 9, 10]);
    for (let b = 0; b < 3; b++) {
      const s = singles[b].patterns[1];
      for (let hi = 0; hi < p.heads.length; hi++) for (let t = 0; t < 3; t++) {
        const row = p.data.subarray((hi * 9 + b * 3 + t) * K, (hi * 9 + b * 3 + t + 1) * K);
        const ref = s.data.subarray((hi * 3 + t) * 11, (hi * 3 + t + 1) * 11);
        const mine = [...row.subarray(0, 8), ...row.subarray(8 + b * 3, 8 + b * 3 + 3)];
        mine.forEach((v, j) => expect(Math.abs(v - ref[j])).toBeLessThan(1e-5));
        const others = [...row.subarray(8)].filter((_, j) => Math.floor(j / 3) !== b);
        expect(Math.max(...others)).toBe(0);
      }
    }
  });

  it('rejects a ragged split and commit', async () => {
    const gs = await model.session();
    const cache = newCache(model, gs, full);
    await forward(model, gs, cache, [1, 2, 3]);
    await expect(forward(model, gs, cache, [1, 2, 3], { branches: 2, commit: false })).rejects.toThrow(/3 tokens do not split into 2 branches/);
    await expect(forward(model, gs, cache, [1, 2], { branches: 2 })).rejects.toThrow(/branches need commit: false/);
  });
});
