/**
 * `runWithHooks` cut inside every block (attn.hook_z, hook_attn_out, hook_mlp_out of each layer) on
 * random-weight checkpoints of the block shapes that differ from llama: parallel residual (gpt_neox,
 * phi), post-attention/MLP norms (gemma2, olmo2), residual multipliers (granite), MoE MLPs (qwen3_moe).
 * Identity hooks give logits bit-identical to the uncut run, and each hook sees what runWithCache reports.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { Model } from '../src/runtime/model.js';
import { runWithHooks, type ResidualHook } from '../src/runtime/runWithHooks.js';
import { blockHook } from '../src/graph/hooks.js';
import { runWithCache } from '../src/runtime/activationCache.js';
import { fixtureWithRefTokenizer } from './fixtureModel.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'headwise-cuts-'));
process.env.HEADWISE_CACHE ??= path.join(tmp, 'cache');
describe.each(['tiny-gpt-neox', 'tiny-phi', 'tiny-gemma2', 'tiny-olmo2', 'tiny-granite', 'tiny-qwen3-moe'])('runWithHooks cut inside blocks: %s', (name) => {
  it('identity hooks at hook_z / attn_out / mlp_out of every layer: bit-identical logits, values as runWithCache', async () => {
    const out = fixtureWithRefTokenizer(name, tmp);
    const model = await Model.load(out, { threads: 2 });
    const ids = model.tokenize('The pass key is 4829371. What is the pass key? It is');
    const L = model.config.numLayers;
    const plain = await runWithHooks(model, ids, { hooks: {}, logitsAt: 'all' });
    const names = [...Array(L).keys()].flatMap((l) => (['attn.hook_z', 'hook_attn_out', 'hook_mlp_out'] as const).map((p) => blockHook(l, p)));
    const seen = new Map<string, Float32Array>();
    const keep: ResidualHook = (x, at) => void seen.set(at.name, Float32Array.from(x.data));
    const r = await runWithHooks(model, ids, { hooks: Object.fromEntries(names.map((n) => [n, keep])), logitsAt: 'all' });
    expect(r.segments).toBe(3 * L + 1);
    expect(Buffer.from(r.logits.buffer, r.logits.byteOffset, r.logits.byteLength).equals(Buffer.from(plain.logits.buffer, plain.logits.byteOffset, plain.logits.byteLength))).toBe(true);
    const cache = await runWithCache(model, ids, { names });
    for (const n of names) {
      const want = cache.get(n).data;
      expect(seen.get(n)!.reduce((m, v, i) => Math.max(m, Math.abs(v - want[i])), 0), n).toBeLessThan(1e-5);
    }
    await model.dispose();
  });
});
