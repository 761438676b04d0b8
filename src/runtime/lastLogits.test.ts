/**
 * The LM head runs only where logits are asked for: prefill (generation, `prefill`) and a default
 * `forward` compute the last position's logits alone (the graph gathers the `logits_at` rows before
 * the final norm and LM head), and they equal that row of an all-positions run — f32 and q8 — on the
 * bundled ref-llama-7m, real ONNX Runtime sessions.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { weightOptions } from '../graph/quant.js';
import { forward, newCache } from './forward.js';
import { fullCache, prefill } from './generate.js';
import { Model } from './model.js';

process.env.HEADWISE_CACHE ??= fs.mkdtempSync(path.join(os.tmpdir(), 'headwise-test-'));
const MODEL = path.resolve('models/ref-llama-7m');

describe('logits of the last position only', () => {
  const models: Model[] = [];
  afterAll(async () => {
    for (const m of models) await m.dispose();
  });

  for (const format of ['f32', 'q8'] as const) {
    it(`${format}: prefill and a default forward return one row, equal to the last row of all positions`, async () => {
      const model = await Model.load(MODEL, { threads: 1, weights: weightOptions(format) });
      models.push(model);
      const V = model.config.vocabSize;
      const ids = Array.from({ length: 37 }, (_, i) => 1 + ((i * 131) % (V - 1)));
      const setup = fullCache(model);
      const gs = await model.session(setup.layout);
      const all = await forward(model, gs, newCache(model, gs, setup.policies), ids, { logitsAt: [...ids.keys()], commit: false });
      expect(all.logits.length).toBe(ids.length * V);
      const lastRow = all.logits.subarray((ids.length - 1) * V);
      const last = await forward(model, gs, newCache(model, gs, setup.policies), ids);
      expect(last.logits.length).toBe(V);
      let d = 0;
      for (let j = 0; j < V; j++) d = Math.max(d, Math.abs(last.logits[j] - lastRow[j]));
      expect(d).toBeLessThanOrEqual(1e-5);
      // Prefill in chunks of 16: one row back, the last row of the same chunks run with every position's logits.
      const chunked = await prefill(model, ids, { prefillChunk: 16 });
      expect(chunked.logits.length).toBe(V);
      const cache = newCache(model, gs, setup.policies);
      cache.reserve(ids.length); // as prefill does: the same buffers, so the same sums
      await forward(model, gs, cache, ids.slice(0, 16));
      await forward(model, gs, cache, ids.slice(16, 32));
      const tail = await forward(model, gs, cache, ids.slice(32), { logitsAt: [0, 1, 2, 3, 4] });
      const tailLast = tail.logits.subarray(4 * V);
      let dc = 0;
      for (let j = 0; j < V; j++) dc = Math.max(dc, Math.abs(chunked.logits[j] - tailLast[j]));
      expect(dc).toBe(0);
    });
  }
});
