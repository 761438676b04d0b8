/**
 * Direct logit attribution through LayerNorm final norms on the tiny fixtures (no tokenizer: prompt and
 * answers as token ids): the terms — heads, embeddings, attention biases, MLPs, the norm's bias and the
 * LM head's bias — sum to the run's own logit difference, for sequential (gpt2, starcoder2, stablelm,
 * olmo's non-parametric LN) and parallel blocks (gpt_neox, phi, stablelm's parallel variant). Post-branch
 * norms, soft-caps and quantised weights are refused with one line saying why.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { weightOptions } from '../graph/quant.js';
import { Model } from '../runtime/model.js';
import { attributionRefusal, directLogitAttribution } from './attribution.js';

process.env.HEADWISE_CACHE ??= fs.mkdtempSync(path.join(os.tmpdir(), 'headwise-test-'));
const fixture = (name: string) => path.resolve('test/fixtures/models', name);
const prompt = [5, 17, 42, 99, 3, 250, 11, 64, 7, 128];

describe('direct logit attribution through a frozen LayerNorm', () => {
  for (const [name, hasNormBias] of [
    ['tiny-gpt2', true], ['tiny-gpt-neox', true], ['tiny-phi', true], ['tiny-starcoder2', true],
    ['tiny-stablelm', true], ['tiny-stablelm-parallel', true], ['tiny-olmo', false],
  ] as const) {
    it(`${name}: the terms sum to the logit difference`, async () => {
      const model = await Model.load(fixture(name), { threads: 1 });
      try {
        expect(attributionRefusal(model)).toBeNull();
        const r = await directLogitAttribution(model, prompt, { answer: [31], wrong: [200] });
        const { numLayers: L, numHeads: H } = model.config;
        expect(r.heads).toHaveLength(L * H);
        expect(r.norm).toMatch(/LayerNorm/);
        expect(Math.abs(r.logitDiff)).toBeGreaterThan(1e-4);
        expect(Math.abs(r.sum - r.logitDiff)).toBeLessThanOrEqual(1e-3);
        expect(r.heads.some((h) => Math.abs(h.attribution) > 1e-4)).toBe(true);
        if (hasNormBias) expect(Math.abs(r.normBias)).toBeGreaterThan(0);
        else expect(r.normBias).toBe(0);
        // Another position and the answer's logit alone add up too.
        const alone = await directLogitAttribution(model, prompt, { answer: [31], position: 4 });
        expect(Math.abs(alone.sum - alone.logitDiff)).toBeLessThanOrEqual(1e-3);
      } finally {
        await model.dispose();
      }
    });
  }

  it('is refused, naming why, where it would not be exact', async () => {
    for (const [name, why] of [['tiny-gemma2', /normalises the attention\/MLP outputs/], ['tiny-olmo2', /normalises the attention\/MLP outputs/]] as const) {
      const m = await Model.load(fixture(name));
      expect(attributionRefusal(m)).toMatch(why);
      await expect(directLogitAttribution(m, prompt, { answer: [31] })).rejects.toThrow(/^direct logit attribution: /);
      await m.dispose();
    }
    const q8 = await Model.load(fixture('tiny-gpt2'), { weights: weightOptions('q8') });
    expect(attributionRefusal(q8)).toMatch(/q8 weights.*f32/);
    await q8.dispose();
  });
});
