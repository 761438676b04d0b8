/**
 * The atlas's causal variants batched as branches give what one run per variant gives: ablation of
 * every head of a layer in one run (per-row head scale) against one run per head, and a layer
 * without a score bias fed as a broadcast zero against [heads, q, keys] zeros; and the KL scored on the
 * device against the float64 KL (`heads/kl.ts`) of host logits.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { forward, newCache } from '../runtime/forward.js';
import { Model } from '../runtime/model.js';
import { FULL_HISTORY } from '../kv/classPolicy.js';
import { klFromLogProbs, logSoftmax } from '../heads/kl.js';
import { zeroHeads } from '../runtime/hookSet.js';
import { klBase } from './deviceKl.js';
import { ablationKl, streamingBranchBias, streamingHarm } from './variants.js';

process.env.HEADWISE_CACHE ??= fs.mkdtempSync(path.join(os.tmpdir(), 'headwise-test-'));

const full = new Map([['full', FULL_HISTORY]]);

describe('atlas variants', () => {
  let model: Model;
  beforeAll(async () => {
    model = await Model.load(path.resolve('test/fixtures/models/tiny-llama'));
  });
  afterAll(async () => model?.dispose());

  it('ablation of a layer\'s heads as branches of one run equals one run per head', async () => {
    const c = model.config;
    const all = Array.from({ length: c.numLayers }, (_, l) => l);
    const session = await model.session(model.fullLayout(), { capturePattern: [], captureZ: [], headHooks: true, scoreBias: all, act: [] });
    const cache = newCache(model, session, full);
    await forward(model, session, cache, [1, 5, 9, 13, 17, 21, 25, 29, 2, 6]);
    const tail = [3, 4, 5, 8];
    const baseRun = await forward(model, session, cache, tail, { commit: false, logitsAt: [0, 1, 2, 3] });
    const ctx = { model, session, cache, tail, base: await klBase(model, baseRun.logits, c.vocabSize) };
    const perHead = await ablationKl(ctx, tail.length); // maxRows = one branch: one run per head
    const batched = await ablationKl(ctx);
    expect(cache.seen).toBe(10);
    let worst = 0;
    let largest = 0;
    for (let l = 0; l < c.numLayers; l++) for (let h = 0; h < c.numHeads; h++) {
      worst = Math.max(worst, Math.abs(perHead[l][h] - batched[l][h]));
      largest = Math.max(largest, perHead[l][h]);
    }
    expect(largest).toBeGreaterThan(1e-4); // the ablations change something
    expect(worst).toBeLessThan(1e-5 + 1e-4 * largest);
  });

  it('ablation KL scored on the device equals the float64 KL of the same run\'s host logits', async () => {
    const c = model.config;
    const session = await model.session(model.fullLayout(), { capturePattern: [], captureZ: [], headHooks: true, scoreBias: [], act: [] });
    const cache = newCache(model, session, full);
    await forward(model, session, cache, [1, 5, 9, 13, 17, 21, 25, 29, 2, 6]);
    const tail = [3, 4, 5, 8];
    const rows = tail.map((_, i) => i);
    const baseRun = await forward(model, session, cache, tail, { commit: false, logitsAt: rows });
    const device = await ablationKl({ model, session, cache, tail, base: await klBase(model, baseRun.logits, c.vocabSize) });
    const V = c.vocabSize;
    const lp = rows.map((r) => logSoftmax(baseRun.logits.subarray(r * V, (r + 1) * V)));
    let worst = 0;
    for (const [l, h] of [[0, 0], [c.numLayers - 1, c.numHeads - 1]]) {
      const r = await forward(model, session, cache, tail, { commit: false, logitsAt: rows, hooks: zeroHeads([{ layer: l, head: h }], c.numHeads) });
      const host = rows.reduce((s, i) => s + klFromLogProbs(lp[i], r.logits.subarray(i * V, (i + 1) * V)), 0) / rows.length;
      expect(host).toBeGreaterThan(1e-6);
      worst = Math.max(worst, Math.abs(device[l][h] - host) / host);
    }
    console.info(`[headwise tests] ablation KL, device vs float64 host: worst relative difference ${worst.toExponential(2)}`);
    expect(worst).toBeLessThan(1e-4); // float32 graph-run noise between the batched and the single run included
  });

  it.each([
    // keys: a dense prompt prefix, then the branches' own rows; sink, window
    ['short prefix', [0, 1, 2, 3, 4, 5, 6, 5, 6, 5, 6], 1, 2],
    ['window past the prefix', [0, 1, 2, 3, 4, 5, 6, 5, 6, 5, 6], 1, 9],
    ['no sink, window 1', [0, 1, 2, 3, 4, 5, 6, 5, 6, 5, 6], 0, 1],
    ['sink past the prefix', [0, 1, 2, 3, 5, 6, 5, 6], 5, 1],
    ['no dense prefix', [3, 4, 5, 6, 5, 6], 1, 2],
  ])('streaming branch bias masks, for each branch\'s KV head on its rows, the keys outside sink + window (%s)', (_, keys, sink, window) => {
    // 2 layers × 2 KV heads of 2 query heads each; branches: (layer 1, KV head 0), (layer 0, KV head 1), (layer 1, KV head 1); n = 2.
    const targets = [{ layer: 1, kvHead: 0 }, { layer: 0, kvHead: 1 }, { layer: 1, kvHead: 1 }];
    const n = 2;
    const queryPositions = Int32Array.from([5, 6, 5, 6, 5, 6]);
    const keyPositions = Int32Array.from(keys);
    const bias = streamingBranchBias(targets, n, 4, 2, sink, window);
    expect(bias.scoreBias!(2, [0, 1, 2, 3], queryPositions, keyPositions)).toBeNull();
    for (const l of [0, 1]) {
      const heads = [3, 0, 2]; // any order, any subset
      const got = bias.scoreBias!(l, heads, queryPositions, keyPositions)!;
      const K = keyPositions.length;
      expect(got.length).toBe(heads.length * 6 * K);
      heads.forEach((head, hi) => {
        for (let t = 0; t < 6; t++) for (let s = 0; s < K; s++) {
          const tg = targets[Math.floor(t / n)];
          const kp = keyPositions[s];
          const masked = tg.layer === l && Math.floor(head / 2) === tg.kvHead && kp >= sink && queryPositions[t] - kp >= window;
          expect(got[(hi * 6 + t) * K + s], `layer ${l} head ${head} row ${t} key ${s}`).toBe(masked ? Math.fround(-1e30) : 0);
        }
      });
    }
  });

  it('streaming harm is unchanged by broadcast zero biases on untouched layers', async () => {
    const c = model.config;
    const all = Array.from({ length: c.numLayers }, (_, l) => l);
    const session = await model.session(model.fullLayout(), { capturePattern: [], captureZ: [], headHooks: true, scoreBias: all, act: [] });
    const cache = newCache(model, session, full);
    await forward(model, session, cache, Array.from({ length: 24 }, (_, i) => 1 + ((i * 7) % 50)));
    const tail = [3, 4, 5];
    const baseRun = await forward(model, session, cache, tail, { commit: false, logitsAt: [0, 1, 2] });
    const ctx = { model, session, cache, tail, base: await klBase(model, baseRun.logits, c.vocabSize) };
    const oneLayer = await streamingHarm(ctx, 1, 4, 1);
    const twoLayers = await streamingHarm(ctx, 1, 4, 2);
    let worst = 0;
    for (let l = 0; l < c.numLayers; l++) for (let g = 0; g < c.numKvHeads; g++) worst = Math.max(worst, Math.abs(oneLayer[l][g] - twoLayers[l][g]));
    expect(Math.max(...oneLayer.flat())).toBeGreaterThan(0);
    expect(worst).toBeLessThan(1e-5);
  });
});
