/**
 * A hook at `blocks.{l}.attn.hook_z` (`runWithHooks`, a graph cut inside the block) against the
 * engines that change head outputs through the graph's head hooks, on the bundled ref-llama-7m:
 * one head's z at the last position set to the clean run's value equals `PatchedRunner`'s patch (up to
 * the rounding of its separate last-position call), and
 * one head's z zeroed at every position equals the `ablate` intervention (logits within 1e-5).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defaultModel } from '../index.js';
import { bindIntervention, modelShape } from '../interventions/bind.js';
import { parseInterventionSpec } from '../interventions/spec.js';
import { forward, newCache } from '../runtime/forward.js';
import { fullCache } from '../runtime/generate.js';
import { Model } from '../runtime/model.js';
import { runWithHooks } from '../runtime/runWithHooks.js';
import { PatchedRunner } from './patchedRun.js';

process.env.HEADWISE_CACHE ??= fs.mkdtempSync(path.join(os.tmpdir(), 'headwise-test-'));

const CLEAN = 'The pass key is 48213. Remember it. What is the pass key? The pass key is';
const CORRUPT = 'The pass key is 91766. Remember it. What is the pass key? The pass key is';
const maxDiff = (a: Float32Array, b: Float32Array) => a.reduce((m, v, i) => Math.max(m, Math.abs(v - b[i])), 0);

describe('runWithHooks at hook_z', () => {
  let model: Model;
  beforeAll(async () => {
    model = await Model.load(defaultModel, { threads: 2 });
  });
  afterAll(async () => model?.dispose());

  it('patching one head at the last position with the clean value equals PatchedRunner', async () => {
    const clean = model.tokenize(CLEAN);
    const corrupt = model.tokenize(CORRUPT);
    expect(corrupt.length).toBe(clean.length);
    const T = clean.length;
    const { numHeads: H, headDim: D } = model.config;
    const [layer, head] = [3, 1];
    const zClean = (await (await PatchedRunner.create(model, clean)).outputs([T - 1])).z.get(layer)!;
    const at = ((T - 1) * H + head) * D;
    const value = zClean.slice(at, at + D);
    const want = await (await PatchedRunner.create(model, corrupt)).run([{ layer, head, from: T - 1, to: T, value }], [T - 1]);
    const plain = await runWithHooks(model, corrupt, { hooks: {} });
    const got = await runWithHooks(model, corrupt, {
      hooks: { [`blocks.${layer}.attn.hook_z`]: (z) => void z.data.set(value, at) },
    });
    // PatchedRunner runs the last position as its own call on the cached prefix (the decode form of
    // attention), so even unpatched it differs from the one-call run by float32 rounding (1.4e-5 on
    // logits up to 20 here): the bound is 2e-5, the patch moving logits by far more.
    const unpatched = await (await PatchedRunner.create(model, corrupt)).run([], [T - 1]);
    expect(maxDiff(unpatched, plain.logits)).toBeLessThan(2e-5);
    expect(maxDiff(got.logits, want)).toBeLessThan(2e-5);
    expect(maxDiff(got.logits, plain.logits)).toBeGreaterThan(1e-3); // the patch changes the output
  });

  it('zeroing one head at every position equals ablate', async () => {
    const ids = model.tokenize(CLEAN);
    const T = ids.length;
    const { numHeads: H, headDim: D } = model.config;
    const [layer, head] = [4, 2];
    const spec = parseInterventionSpec([{ op: 'ablate', heads: [`${layer}:${head}`], params: { mode: 'zero' } }], modelShape(model));
    const bound = await bindIntervention(model, spec, ids);
    const setup = fullCache(model);
    const gs = await model.session(setup.layout, bound.hookOptions);
    const logitsAt = [...ids.keys()];
    const want = await forward(model, gs, newCache(model, gs, setup.policies), ids, { logitsAt, hooks: bound.hooks, commit: false });
    const got = await runWithHooks(model, ids, {
      logitsAt: 'all',
      hooks: { [`blocks.${layer}.attn.hook_z`]: (z) => { for (let t = 0; t < T; t++) z.data.fill(0, (t * H + head) * D, (t * H + head + 1) * D); } },
    });
    expect(maxDiff(got.logits, want.logits)).toBeLessThan(1e-5);
    const plain = await runWithHooks(model, ids, { hooks: {}, logitsAt: 'all' });
    expect(maxDiff(got.logits, plain.logits)).toBeGreaterThan(1e-3); // the ablation changes the output
  });
});
