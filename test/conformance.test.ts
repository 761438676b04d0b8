/**
 * Conformance with Hugging Face transformers (PyTorch, fp32, eager attention): logits and every
 * head's attention probabilities for tiny random checkpoints of each family and for the bundled
 * ref-llama-7m, from fixtures made by tools/conformance/make_fixtures.py. Tolerance 1e-4 max abs.
 * The same run checks that chunked prefill + KV-cached decode reproduce the one-shot logits, and that
 * the GPU graph form (KV mode `present`, run on the CPU here) does too. Sliding-window fixtures use
 * inputs longer than their window, RoPE-scaled ones inputs longer than the original context.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Model } from '../src/runtime/model.js';
import { forward, newCache } from '../src/runtime/forward.js';
import { fullCache } from '../src/runtime/generate.js';

process.env.HEADWISE_CACHE ??= fs.mkdtempSync(path.join(os.tmpdir(), 'headwise-test-'));

interface Fixture {
  model: string;
  modelDir: string;
  inputIds: number[];
  text?: string;
  logits: { shape: number[]; f32: string };
  attentions: { shape: number[]; f32: string };
  generate?: { newIds: number[]; text: string };
}

const dir = path.resolve('test/fixtures/conformance');
const fixtures = fs.readdirSync(dir).filter((f) => f.endsWith('.json')).map((f) => JSON.parse(fs.readFileSync(path.join(dir, f), 'utf8')) as Fixture);

function f32(b64: string): Float32Array {
  const buf = Buffer.from(b64, 'base64');
  return new Float32Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength));
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

describe.each(fixtures.map((f) => [f.model, f] as const))('conformance %s', (_name, fx) => {
  let model: Model;
  beforeAll(async () => {
    model = await Model.load(path.resolve(fx.modelDir));
  });
  afterAll(async () => model?.dispose());

  it('logits and attention probabilities of every head match transformers within 1e-4', async () => {
    const c = model.config;
    const T = fx.inputIds.length;
    const all = Array.from({ length: c.numLayers }, (_, l) => l);
    // Full attention as the model defines it: sliding-window layers keep (and see) their window.
    const setup = fullCache(model);
    const gs = await model.session(setup.layout, { capturePattern: all, captureZ: [], headHooks: false, scoreBias: [], act: [] });
    const cache = newCache(model, gs, setup.policies);
    const rows = Array.from({ length: T }, (_, i) => i);
    const res = await forward(model, gs, cache, fx.inputIds, { logitsAt: rows, captureRows: rows });
    expect(maxAbsDiff(res.logits, f32(fx.logits.f32))).toBeLessThanOrEqual(1e-4);

    const ref = f32(fx.attentions.f32);
    const [L, H] = fx.attentions.shape;
    expect(L).toBe(c.numLayers);
    let worst = 0;
    for (const p of res.patterns) {
      p.heads.forEach((head, i) => {
        const ours = p.data.subarray(i * T * T, (i + 1) * T * T);
        const theirs = ref.subarray((p.layer * H + head) * T * T, (p.layer * H + head + 1) * T * T);
        worst = Math.max(worst, maxAbsDiff(ours, theirs));
      });
    }
    expect(res.patterns.length).toBe(c.numLayers);
    expect(worst).toBeLessThanOrEqual(1e-4);
  });

  it('chunked prefill plus cached decode gives the same logits', async () => {
    const setup = fullCache(model);
    const gs = await model.session(setup.layout);
    const cache = newCache(model, gs, setup.policies);
    const ids = fx.inputIds;
    const ref = f32(fx.logits.f32);
    const V = model.config.vocabSize;
    const split = Math.floor(ids.length / 2);
    await forward(model, gs, cache, ids.slice(0, split - 3));
    await forward(model, gs, cache, ids.slice(split - 3, split));
    let worst = 0;
    for (let t = split; t < ids.length; t++) {
      const r = await forward(model, gs, cache, [ids[t]]);
      worst = Math.max(worst, maxAbsDiff(r.logits, ref.subarray(t * V, (t + 1) * V)));
    }
    expect(worst).toBeLessThanOrEqual(1e-4);
  });

  it('the GPU graph form (KV mode present, run on the CPU) gives the same logits', async () => {
    const gpuForm = await Model.load(path.resolve(fx.modelDir), { kvMode: 'present' });
    try {
      const setup = fullCache(gpuForm);
      const gs = await gpuForm.session(setup.layout);
      const cache = newCache(gpuForm, gs, setup.policies);
      const res = await forward(gpuForm, gs, cache, fx.inputIds, { logitsAt: fx.inputIds.map((_, i) => i) });
      expect(maxAbsDiff(res.logits, f32(fx.logits.f32))).toBeLessThanOrEqual(1e-4);
    } finally {
      await gpuForm.dispose();
    }
  });

  if (fx.text !== undefined) {
    it('tokenizes the prompt as transformers does', () => {
      expect(model.tokenize(fx.text!)).toEqual(fx.inputIds);
    });
  }
});
