import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Checkpoint } from '../hf/checkpoint.js';
import { forward, newCache } from '../runtime/forward.js';
import { Model } from '../runtime/model.js';
import { makeRandom } from './makeRandom.js';
import { FULL_HISTORY } from '../kv/classPolicy.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'headwise-mr-'));
process.env.HEADWISE_CACHE ??= path.join(tmp, 'cache');
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

describe('make-random', () => {
  it('writes a loadable checkpoint of the same shape with a longer context, tokenizer copied', async () => {
    const src = path.resolve('models/ref-llama-7m');
    const out = path.join(tmp, 'r7m');
    makeRandom({ like: src, out, maxPositions: 4096, seed: 3, dtype: 'bf16' });
    const a = Checkpoint.open(src);
    const b = Checkpoint.open(out);
    try {
      expect(b.config).toEqual({ ...a.config, maxPositions: 4096, dtype: 'bfloat16' });
      expect(b.tensorNames.sort()).toEqual(a.tensorNames.sort());
      for (const n of a.tensorNames) expect(b.info(n).shape).toEqual(a.info(n).shape);
      expect(b.info('model.norm.weight').dtype).toBe('BF16');
      expect([...b.read('model.norm.weight', [256])].every((x) => x === 1)).toBe(true);
      const w = b.read('model.layers.0.self_attn.q_proj.weight', [256, 256]);
      const std = Math.sqrt(w.reduce((s, x) => s + x * x, 0) / w.length);
      expect(std).toBeGreaterThan(0.018);
      expect(std).toBeLessThan(0.022);
    } finally {
      a.close();
      b.close();
    }
    expect(fs.readFileSync(path.join(out, 'tokenizer.json'), 'utf8')).toBe(fs.readFileSync(path.join(src, 'tokenizer.json'), 'utf8'));
    expect(fs.readdirSync(tmp).filter((f) => f.includes('.tmp'))).toEqual([]);

    // runs past the source's trained context
    const model = await Model.load(out);
    try {
      const gs = await model.session();
      const cache = newCache(model, gs, new Map([['full', FULL_HISTORY]]));
      const r = await forward(model, gs, cache, [0, 5, 6, 7]);
      expect(r.logits.every(Number.isFinite)).toBe(true);
    } finally {
      await model.dispose();
    }
  });

  it('is deterministic in the seed, refuses to overwrite without force, and resizes gpt2 position embeddings', () => {
    const like = path.resolve('test/fixtures/models/tiny-gpt2/config.json');
    const one = path.join(tmp, 'g1');
    const two = path.join(tmp, 'g2');
    makeRandom({ like, out: one, maxPositions: 100, seed: 1 });
    makeRandom({ like, out: two, maxPositions: 100, seed: 1 });
    expect(fs.readFileSync(path.join(one, 'model.safetensors'))).toEqual(fs.readFileSync(path.join(two, 'model.safetensors')));
    expect(() => makeRandom({ like, out: one, seed: 2 })).toThrow(/already exists/);
    makeRandom({ like, out: one, seed: 2, force: true });
    expect(fs.readFileSync(path.join(one, 'model.safetensors'))).not.toEqual(fs.readFileSync(path.join(two, 'model.safetensors')));
    const c = Checkpoint.open(two);
    try {
      expect(c.config.maxPositions).toBe(100);
      expect(c.info('wpe.weight').shape[0]).toBe(100);
      expect(c.info('h.0.ln_1.bias').dtype).toBe('F32');
    } finally {
      c.close();
    }
  });
});
