/**
 * The library facade on the bundled ref-llama-7m: run a prompt with interventions and get logits,
 * captures and text; generate with them; bad specs fail naming the field.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as headwise from './index.js';
import { defaultModel, generate, interventionSpec, loadModel, runWithCache, run, SpecError, type InterventionSpecInput, type Model } from './index.js';

process.env.HEADWISE_CACHE ??= fs.mkdtempSync(path.join(os.tmpdir(), 'headwise-test-'));

const PROMPT =
  'In the beginning God created the heaven and the earth. The pass key is 48213. Remember it. 48213 is the pass key. ' +
  'And the earth was without form, and void.\nWhat is the pass key? The pass key is';

describe('library API (ref-llama-7m)', () => {
  let model: Model;
  beforeAll(async () => {
    model = await loadModel(defaultModel, { threads: 2 });
  });
  afterAll(async () => model?.dispose());

  it('defaultModel is the bundled model, resolved from the package root', () => {
    expect(defaultModel).toBe(path.resolve('models/ref-llama-7m'));
    expect(fs.existsSync(path.join(defaultModel, 'config.json'))).toBe(true);
  });

  it('run: logits, per-head patterns of the chosen rows, z, and text', async () => {
    const r = await run(model, PROMPT, { capture: { layers: [5], rows: 'last', z: [5] }, logitsAt: 'all', maxNewTokens: 6 });
    const T = r.ids.length;
    expect(r.logits.length).toBe(T * r.vocab);
    expect(r.patterns.map((p) => `${p.layer}:${p.head}`)).toEqual(['5:0', '5:1', '5:2', '5:3']);
    expect(r.pattern(5, 2)).toBe(r.patterns[2]);
    expect(() => r.pattern(4, 0)).toThrow(/pattern\(4, 0\): not captured \(capture.layers was \[5\]\)/);
    for (const p of r.patterns) {
      expect(p.queryPositions).toEqual(Int32Array.from([T - 1]));
      expect(p.data.length).toBe(T);
      expect(p.data.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 5);
    }
    expect(r.z.get(5)!.length).toBe(T * 4 * 64);
    expect(r.text).toMatch(/^ 48213/);
    expect(r.interventions).toEqual([]);
  });

  it('run with ablation of the retrieval heads loses the pass key; generate agrees with run', async () => {
    const interventions: InterventionSpecInput = { version: 1, interventions: [{ op: 'ablate', heads: ['5:3', '5:1'] }] };
    const r = await run(model, PROMPT, { interventions, maxNewTokens: 6 });
    expect(r.interventions).toEqual(['[0] ablate (zero) 5:{1,3}']);
    expect(r.text).not.toMatch(/48213/);
    const g = await generate(model, PROMPT, { interventions, maxNewTokens: 6, stopAtEos: true });
    expect(g.text).toBe(r.text);
    expect(g.interventions).toEqual(r.interventions);
  });

  it('PASTA by text, mean ablation, and a streaming KV cache go through the facade', async () => {
    const plain = await run(model, PROMPT);
    const steered = await run(model, PROMPT, { interventions: [{ op: 'pasta', heads: '3:*', params: { spans: [{ text: 'The pass key is 48213.' }] } }] });
    const mean = await run(model, PROMPT, { interventions: [{ op: 'ablate', heads: ['5:3'], params: { mode: 'mean' } }] });
    const streaming = await run(model, PROMPT, { kv: { policy: 'streaming', sink: 4, window: 16 } });
    const diff = (a: Float32Array, b: Float32Array) => Math.max(...a.map((x, i) => Math.abs(x - b[i])));
    expect(diff(steered.logits, plain.logits)).toBeGreaterThan(1e-3);
    expect(diff(mean.logits, plain.logits)).toBeGreaterThan(1e-3);
    expect(diff(streaming.logits, plain.logits)).toBeGreaterThan(1e-3);
  });

  it('runWithCache: typed cache of hook points, pattern by head, stacks; memory refused up front', async () => {
    const cache = await runWithCache(model, PROMPT, { names: ['attn.hook_pattern', 'hook_resid_post', 'blocks.2.attn.hook_q'] });
    const T = cache.ids.length;
    expect(cache.get('blocks.5.attn.hook_pattern').shape).toEqual([4, T, T]);
    const p = cache.pattern(5, 3);
    expect(p.shape).toEqual([T, T]);
    expect(p.data.subarray((T - 1) * T).reduce((a, b) => a + b, 0)).toBeCloseTo(1, 5);
    expect(cache.stack('hook_resid_post').shape).toEqual([6, T, 256]);
    expect(cache.get('blocks.2.attn.hook_q').shape).toEqual([T, 4, 64]);
    expect(() => cache.get('blocks.2.attn.hook_k')).toThrow(/blocks.2.attn.hook_k was not cached/);
    // The last position's pattern agrees with run's capture.
    const r = await run(model, PROMPT, { capture: { layers: [5] } });
    const last = p.data.subarray((T - 1) * T);
    expect(Math.max(...r.pattern(5, 3).data.map((x, i) => Math.abs(x - last[i])))).toBeLessThan(1e-5);
    await expect(runWithCache(model, PROMPT, { maxBytes: 1000 })).rejects.toThrow(/needs \d+ MiB, over the limit of 0 MiB/);
    await expect(runWithCache(model, PROMPT, { names: ['blocks.9.hook_resid_pre'] })).rejects.toThrow(/layer 9 is out of range/);
    await expect(runWithCache(model, PROMPT, { names: ['hook_resid_prez' as never] })).rejects.toThrow(/unknown hook point "hook_resid_prez"/);
  });

  it('the research verbs, the atlas and niah are exported', () => {
    for (const name of ['runWithCache', 'runWithHooks', 'activationPatching', 'headImportance', 'directLogitAttribution', 'runAtlas', 'validateAtlas', 'runNiah', 'niahSamples', 'passKeyPair', 'writePatchReport'] as const) {
      expect(typeof headwise[name], name).toBe('function');
    }
  });

  it('bad specs are SpecErrors naming the field', async () => {
    expect(() => interventionSpec(model, [{ op: 'ablat', heads: ['1:1'] }])).toThrow(/^interventions\[0\]\.op: unknown op "ablat"/);
    await expect(run(model, PROMPT, { interventions: [{ op: 'ablate', heads: ['6:0'] }] })).rejects.toThrow(SpecError);
    await expect(run(model, PROMPT, { interventions: [{ op: 'pasta', heads: ['1:0'], params: { alpha: 0, spans: [{ text: 'x' }] } }] })).rejects.toThrow(
      /^interventions\[0\]\.params\.alpha: must be > 0/,
    );
    await expect(run(model, PROMPT, { interventions: [{ op: 'pasta', heads: ['1:0'], params: { spans: [{ text: 'absent' }] } }] })).rejects.toThrow(
      /^interventions\[0\]\.params\.spans\[0\]\.text: "absent" does not occur in the prompt/,
    );
  });
});
