/**
 * `runWithHooks` on the bundled ref-llama-7m: identity hooks at several cut points (block boundaries
 * and hook_z / hook_attn_out / hook_mlp_out inside blocks) give logits bit-identical to the plain run; a hook sees the residual stream `runWithCache` reports and its
 * replacement changes the output as the same change made by hand would; bad names are refused.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { HookName } from '../graph/hooks.js';
import { defaultModel } from '../index.js';
import { runWithCache } from './activationCache.js';
import { forward, newCache } from './forward.js';
import { fullCache } from './generate.js';
import { Model } from './model.js';
import { runWithHooks, type ResidualHook } from './runWithHooks.js';

process.env.HEADWISE_CACHE ??= fs.mkdtempSync(path.join(os.tmpdir(), 'headwise-test-'));

const PROMPT = 'In the beginning God created the heaven and the earth. The pass key is 48213. Remember it. 48213 is the pass key. What is the pass key? The pass key is';

describe('runWithHooks', () => {
  let model: Model;
  beforeAll(async () => {
    model = await Model.load(defaultModel, { threads: 2 });
  });
  afterAll(async () => model?.dispose());

  it('identity hooks: logits bit-identical to the plain run', async () => {
    const ids = model.tokenize(PROMPT);
    const setup = fullCache(model);
    const gs = await model.session(setup.layout);
    const plain = await forward(model, gs, newCache(model, gs, setup.policies), ids, { logitsAt: [...ids.keys()], commit: false });
    const seen: string[] = [];
    const id: ResidualHook = (x, at) => {
      seen.push(at.name);
      return x;
    };
    const sets: Record<string, ResidualHook>[] = [{ 'blocks.0.hook_resid_pre': id }, { 'blocks.2.hook_resid_pre': id, 'blocks.1.hook_resid_post': id, 'blocks.4.hook_resid_post': id }, { 'blocks.5.hook_resid_post': id }];
    for (const hooks of sets) {
      const r = await runWithHooks(model, ids, { hooks, logitsAt: 'all' });
      expect(r.segments).toBe(new Set(Object.keys(hooks).map((n) => (n.endsWith('pre') ? +n.split('.')[1] : +n.split('.')[1] + 1))).size + 1);
      expect(Buffer.from(r.logits.buffer, r.logits.byteOffset, r.logits.byteLength).equals(Buffer.from(plain.logits.buffer, plain.logits.byteOffset, plain.logits.byteLength))).toBe(true);
    }
    // resid_post of block 1 runs before resid_pre of block 2 (the same boundary).
    expect(seen).toEqual(['blocks.0.hook_resid_pre', 'blocks.1.hook_resid_post', 'blocks.2.hook_resid_pre', 'blocks.4.hook_resid_post', 'blocks.5.hook_resid_post']);
    // Cuts inside blocks: hook_z, hook_attn_out, hook_mlp_out, several in one block, and next to a block boundary.
    seen.length = 0;
    const inside: Record<string, ResidualHook> = {
      'blocks.0.attn.hook_z': id, 'blocks.2.attn.hook_z': id, 'blocks.2.hook_attn_out': id, 'blocks.2.hook_mlp_out': id,
      'blocks.2.hook_resid_post': id, 'blocks.3.hook_mlp_out': id, 'blocks.5.attn.hook_z': id,
    };
    const r = await runWithHooks(model, ids, { hooks: inside, logitsAt: 'all' });
    expect(r.segments).toBe(8);
    expect(Buffer.from(r.logits.buffer, r.logits.byteOffset, r.logits.byteLength).equals(Buffer.from(plain.logits.buffer, plain.logits.byteOffset, plain.logits.byteLength))).toBe(true);
    expect(seen).toEqual(['blocks.0.attn.hook_z', 'blocks.2.attn.hook_z', 'blocks.2.hook_attn_out', 'blocks.2.hook_mlp_out', 'blocks.2.hook_resid_post', 'blocks.3.hook_mlp_out', 'blocks.5.attn.hook_z']);
  });

  it('hooks inside a block read what runWithCache reports', async () => {
    const names: HookName[] = ['blocks.1.attn.hook_z', 'blocks.1.hook_attn_out', 'blocks.4.hook_mlp_out'];
    const cache = await runWithCache(model, PROMPT, { names });
    const T = model.tokenize(PROMPT).length;
    const { numHeads: H, headDim: D, hiddenSize: d } = model.config;
    const got = new Map<string, { shape: number[]; data: Float32Array }>();
    const keep: ResidualHook = (x, at) => void got.set(at.name, { shape: [...x.shape], data: Float32Array.from(x.data) });
    await runWithHooks(model, PROMPT, { hooks: Object.fromEntries(names.map((n) => [n, keep])) });
    expect(got.get(names[0])!.shape).toEqual([T, H, D]);
    expect(got.get(names[1])!.shape).toEqual([T, d]);
    for (const n of names) {
      const want = cache.get(n).data;
      expect(Math.max(...got.get(n)!.data.map((v, i) => Math.abs(v - want[i]))), n).toBeLessThan(1e-5);
    }
  });

  it('a hook reads the cached value, and its replacement propagates', async () => {
    const cache = await runWithCache(model, PROMPT, { names: ['blocks.3.hook_resid_pre'] });
    const want = cache.get('blocks.3.hook_resid_pre').data;
    let got: Float32Array | null = null;
    const zeroed = await runWithHooks(model, PROMPT, {
      hooks: {
        'blocks.3.hook_resid_pre': (x) => {
          got = Float32Array.from(x.data);
          const y = Float32Array.from(x.data);
          y.fill(0, 5 * x.shape[1], 6 * x.shape[1]);
          return y;
        },
      },
    });
    expect(Math.max(...got!.map((v, i) => Math.abs(v - want[i])))).toBeLessThan(1e-5);
    const plain = await runWithHooks(model, PROMPT, { hooks: {} });
    expect(Math.max(...zeroed.logits.map((v, i) => Math.abs(v - plain.logits[i])))).toBeGreaterThan(1e-3);
  });

  it('a hook before block 0 replaces the embeddings', async () => {
    const a = model.tokenize('The pass key is 48213.');
    const b = model.tokenize('The pass key is 91213.');
    const embB = (await runWithCache(model, b, { names: ['blocks.0.hook_resid_pre'] })).get('blocks.0.hook_resid_pre').data;
    const swapped = await runWithHooks(model, a, { hooks: { 'blocks.0.hook_resid_pre': () => Float32Array.from(embB) }, logitsAt: 'all' });
    const plainB = await runWithHooks(model, b, { hooks: {}, logitsAt: 'all' });
    expect(Math.max(...swapped.logits.map((v, i) => Math.abs(v - plainB.logits[i])))).toBeLessThan(1e-4);
  });

  it('refuses what is not a cut point', async () => {
    await expect(runWithHooks(model, PROMPT, { hooks: { 'blocks.1.attn.hook_q': (x) => x } })).rejects.toThrow(/is not a cut point/);
    await expect(runWithHooks(model, PROMPT, { hooks: { 'blocks.1.attn.hook_z': () => new Float32Array(5) } })).rejects.toThrow(/returned 5 values, expected \[\d+, \d+, \d+\]/);
    await expect(runWithHooks(model, PROMPT, { hooks: { 'blocks.6.hook_resid_pre': (x) => x } })).rejects.toThrow(/layer 6 is out of range/);
    await expect(runWithHooks(model, PROMPT, { hooks: { 'blocks.1.hook_resid_pre': () => new Float32Array(3) } })).rejects.toThrow(/returned 3 values/);
  });
});
