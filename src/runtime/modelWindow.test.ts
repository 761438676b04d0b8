/**
 * Sliding windows as cache classes, on real checkpoints (the conformance fixtures): a window layer's
 * buffers, measured, never hold more than its window; a KV policy on a window model sees the
 * intersection of what the policy keeps and the window (checked against full attention under an
 * explicit score mask); a setup that leaves a window layer unbounded is refused.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseModelConfig } from '../hf/config.js';
import { uniformLayout } from '../graph/layout.js';
import { cacheSetup } from '../kv/policy.js';
import { forward, newCache, type HookProvider } from './forward.js';
import { fullCache, type CacheSetup } from './generate.js';
import { Model } from './model.js';
import { applyModelWindows, checkModelWindows, withinWindow } from './modelWindow.js';

process.env.HEADWISE_CACHE ??= fs.mkdtempSync(path.join(os.tmpdir(), 'headwise-test-'));
const NEG = -1e30;
const fixture = (name: string) => path.resolve(`test/fixtures/models/${name}`);
const ids = (n: number) => Array.from({ length: n }, (_, i) => (i * 37 + 11) % 300 + 2);

async function logitsOf(model: Model, setup: CacheSetup, tokens: number[], chunks: number[], hooks?: HookProvider, scoreBias: number[] = []) {
  const gs = await model.session(setup.layout, { capturePattern: [], captureZ: [], headHooks: false, scoreBias, act: [] });
  const cache = newCache(model, gs, setup.policies);
  const V = model.config.vocabSize;
  const out = new Float32Array(tokens.length * V);
  let at = 0;
  for (const n of chunks) {
    const part = tokens.slice(at, at + n);
    const r = await forward(model, gs, cache, part, { logitsAt: part.map((_, i) => i), hooks });
    out.set(r.logits, at * V);
    at += n;
  }
  return { logits: out, cache };
}

describe('sliding-window layers (tiny-mistral-swa: window 8 on both layers)', () => {
  let model: Model;
  beforeAll(async () => (model = await Model.load(fixture('tiny-mistral-swa'))));
  afterAll(async () => model?.dispose());

  it('hold at most the window in their buffers, measured, however the prompt is fed', async () => {
    const c = model.config;
    expect(c.layerWindows).toEqual([8, 8]);
    for (const chunks of [[40], [7, 1, 20, 1, 1, 10], Array.from({ length: 40 }, () => 1)]) {
      const { cache } = await logitsOf(model, fullCache(model), ids(40), chunks);
      let measured = 0;
      for (const groups of cache.buffers) for (const b of groups) {
        expect(b.length).toBeLessThanOrEqual(8);
        expect(b.key.byteLength + b.value.byteLength).toBeLessThanOrEqual(2 * 8 * b.heads * c.headDim * 4);
        measured += b.key.byteLength + b.value.byteLength;
      }
      expect(cache.kvBytes).toBe(measured);
      expect(cache.kvBytes).toBeLessThan(2 * c.numLayers * 40 * c.numKvHeads * c.headDim * 4);
      for (const [, held] of cache.positions) expect(held).toEqual(Array.from({ length: 8 }, (_, i) => 32 + i));
    }
  });

  it('refuses a setup that leaves a window layer unbounded', async () => {
    const gs = await model.session(model.fullLayout());
    expect(() => newCache(model, gs, new Map([['full', { kind: 'full' }]]))).toThrow(/layer 0 has a sliding window of 8 tokens but its cache class "full" sees further/);
  });
});

describe('a KV policy on a window model sees the intersection (tiny-qwen2-swa: layer 1 window 8)', () => {
  let model: Model;
  beforeAll(async () => (model = await Model.load(fixture('tiny-qwen2-swa'))));
  afterAll(async () => model?.dispose());

  it.each([
    ['streaming sink 2 + window 4', 2, 4],
    ['streaming sink 2 + window 16 (wider than the model window)', 2, 16],
  ])('%s matches full attention under the explicit rule', async (_name, sink, window) => {
    const c = model.config;
    const tokens = ids(36);
    const setup = cacheSetup(c, { policy: 'streaming', sink, window });
    const { logits } = await logitsOf(model, setup, tokens, [5, 13, 1, 1, 16]);
    const layers = Array.from({ length: c.numLayers }, (_, l) => l);
    const hooks: HookProvider = {
      scoreBias(layer, heads, queryPositions, keyPositions) {
        const q = queryPositions.length;
        const K = keyPositions.length;
        const bias = new Float32Array(heads.length * q * K);
        for (let i = 0; i < heads.length; i++) for (let t = 0; t < q; t++) for (let k = 0; k < K; k++) {
          const s = keyPositions[k];
          const tq = queryPositions[t];
          const inModel = c.layerWindows[layer] === null || tq - s < c.layerWindows[layer]!;
          if (s <= tq && !(inModel && (s < sink || tq - s < window))) bias[(i * q + t) * K + k] = NEG;
        }
        return bias;
      },
    };
    const ref = await logitsOf(model, fullCache(model), tokens, [36], hooks, layers);
    let worst = 0;
    for (let i = 0; i < logits.length; i++) worst = Math.max(worst, Math.abs(logits[i] - ref.logits[i]));
    expect(worst).toBeLessThan(1e-4);
  });
});

describe('withinWindow / applyModelWindows (pure)', () => {
  const config = parseModelConfig({ model_type: 'qwen2', hidden_size: 64, num_attention_heads: 4, num_key_value_heads: 2, num_hidden_layers: 2, intermediate_size: 8, vocab_size: 10, max_position_embeddings: 64, sliding_window: 8, layer_types: ['full_attention', 'sliding_attention'] });
  it('restricts each policy to the window', () => {
    expect(withinWindow({ kind: 'full' }, 8)).toEqual({ kind: 'window', sink: 0, window: 8 });
    expect(withinWindow({ kind: 'window', sink: 4, window: 64 }, 8)).toEqual({ kind: 'window', sink: 0, window: 8 });
    expect(withinWindow({ kind: 'window', sink: 4, window: 6 }, 8)).toEqual({ kind: 'window', sink: 4, window: 6, limit: 8 });
  });
  it('moves only window layers to window classes, read as one input', () => {
    const s = applyModelWindows({ layout: uniformLayout(2, 2), policies: new Map([['full', { kind: 'full' as const }]]) }, config);
    expect(s.layout[0][0].cacheClass).toBe('full');
    expect(s.layout[1][0]).toMatchObject({ cacheClass: 'full@w8', pastInput: 'group' });
    expect(s.policies.get('full@w8')).toEqual({ kind: 'window', sink: 0, window: 8 });
    expect(() => checkModelWindows(config, s.layout, s.policies)).not.toThrow();
  });
});
