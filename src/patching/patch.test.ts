/**
 * Activation patching, head importance and direct logit attribution on the bundled ref-llama-7m
 * (retrieval heads 5:3 and 5:1, per ../shared/models/README.md): the segmented patched run equals a
 * token-by-token run; patching the retrieval heads' clean hook_z restores the clean answer, two other
 * heads do not; resample importance ranks 5:3 first; DLA terms sum to the logit difference.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defaultModel } from '../index.js';
import { loadHaystack } from '../eval/haystack.js';
import { passKeyPair, type PassKeyPair } from '../eval/passKeyPair.js';
import { forward, newCache } from '../runtime/forward.js';
import { FULL_HISTORY } from '../runtime/kvCache.js';
import { Model } from '../runtime/model.js';
import { attributionRefusal, directLogitAttribution } from './attribution.js';
import { headImportance, parseImportanceFile } from './importance.js';
import { activationPatching } from './patch.js';
import { headZ, PatchedRunner } from './patchedRun.js';

process.env.HEADWISE_CACHE ??= fs.mkdtempSync(path.join(os.tmpdir(), 'headwise-test-'));

describe('patching on ref-llama-7m', () => {
  let model: Model;
  let pair: PassKeyPair;
  beforeAll(async () => {
    model = await Model.load(defaultModel, { threads: 2 });
    pair = passKeyPair(model.tokenizer!, loadHaystack(), { contextTokens: 128, depth: 0.5, seed: 3 });
  });
  afterAll(async () => model?.dispose());

  it('a segmented patched run equals patching token by token', async () => {
    const ids = model.tokenize(pair.corrupt);
    const T = ids.length;
    const runner = await PatchedRunner.create(model, ids);
    const clean = await (await PatchedRunner.create(model, model.tokenize(pair.clean))).outputs([T - 1]);
    const { numHeads: H, headDim: D } = model.config;
    const value = (t: number) => headZ(clean.z.get(5)!, t, 3, H, D);
    const patched = await runner.run([{ layer: 5, head: 3, from: 40, to: 43, value }, { layer: 2, head: 0, from: 41, to: T, value: 'zero' }], [T - 1, 42]);
    // Reference: one token per call, the hooks of that position.
    const gs = await model.session(model.fullLayout(), { capturePattern: [], captureZ: [], headHooks: true, scoreBias: [], act: [] });
    const cache = newCache(model, gs, new Map([['full', FULL_HISTORY]]));
    const rows = new Map<number, Float32Array>();
    for (let t = 0; t < T; t++) {
      const scale = new Map<number, Float32Array>();
      const add = new Map<number, Float32Array>();
      if (t >= 40 && t < 43) {
        scale.set(5, Float32Array.from({ length: H }, (_, h) => (h === 3 ? 0 : 1)));
        const a = new Float32Array(H * D);
        a.set(value(t), 3 * D);
        add.set(5, a);
      }
      if (t >= 41) scale.set(2, Float32Array.from({ length: H }, (_, h) => (h === 0 ? 0 : 1)));
      const r = await forward(model, gs, cache, [ids[t]], { hooks: { headScale: (l) => scale.get(l) ?? null, headAdd: (l) => add.get(l) ?? null } });
      rows.set(t, r.logits);
    }
    const V = model.config.vocabSize;
    let worst = 0;
    [T - 1, 42].forEach((t, j) => {
      for (let i = 0; i < V; i++) worst = Math.max(worst, Math.abs(patched[j * V + i] - rows.get(t)![i]));
    });
    expect(worst).toBeLessThan(1e-4);
    // And the runner's prefix is back to unpatched: an empty patch list gives the plain logits.
    const plain = await runner.run([], [T - 1]);
    const again = await runner.run([], [T - 1]);
    expect(Array.from(plain)).toEqual(Array.from(again));
  });

  it('hook_z of the retrieval heads at the answer position restores the clean logit difference; two other heads do not', async () => {
    const top = await activationPatching(model, { ...pair, mode: 'joint', heads: [{ layer: 5, head: 3 }, { layer: 5, head: 1 }] });
    const other = await activationPatching(model, { ...pair, mode: 'joint', heads: [{ layer: 1, head: 2 }, { layer: 3, head: 0 }] });
    expect(top.cleanValue).toBeGreaterThan(0);
    expect(top.corruptValue).toBeLessThan(0);
    expect(top.cells[0].restored).toBeGreaterThan(0.8);
    expect(Math.abs(other.cells[0].restored)).toBeLessThan(0.1);
    const perHead = await activationPatching(model, { ...pair, mode: 'head' });
    expect(perHead.cells).toHaveLength(24);
    expect([...perHead.cells].sort((a, b) => b.restored - a.restored)[0].heads).toEqual([{ layer: 5, head: 3 }]);
    await expect(activationPatching(model, { ...pair, corrupt: pair.corrupt + ' more' })).rejects.toThrow(/same number of tokens/);
  });

  it('resid-pre at block 0 on the only differing position is the clean run; mlp-out and attn-out cells per layer × position', async () => {
    const clean = model.tokenize(pair.clean);
    // One value token of the needle changed.
    const other = model.tokenize(pair.corrupt);
    const at = clean.findIndex((t, i) => t !== other[i]);
    const corrupt = [...clean];
    corrupt[at] = other[at];
    const r = await activationPatching(model, { clean, corrupt, answer: pair.answer, metric: 'kl', mode: 'resid-pre', heads: [{ layer: 0, head: 0 }, { layer: 3, head: 0 }] });
    expect(r.positions).toEqual([at, clean.length - 1]);
    expect(r.cells.map((c) => [c.layer, c.position])).toEqual([[0, at], [0, clean.length - 1], [3, at], [3, clean.length - 1]]);
    expect(r.corruptValue).toBeGreaterThan(1e-2);
    expect(r.cells[0].value).toBeLessThan(1e-6);
    expect(r.cells[0].restored).toBeGreaterThan(0.999);
    const mlp = await activationPatching(model, { clean, corrupt, answer: pair.answer, metric: 'kl', mode: 'mlp-out', positions: [at] });
    expect(mlp.cells).toHaveLength(6);
    expect(mlp.hook).toBe('blocks.{layer}.hook_mlp_out');
  });

  it('importance (resample at the answer rows) ranks retrieval head 5:3 first, with intervals', async () => {
    const hay = loadHaystack();
    const items = [4, 5, 6, 7].map((seed) => passKeyPair(model.tokenizer!, hay, { contextTokens: 128, depth: seed / 8, seed }));
    const r = await headImportance(model, items, { metric: 'logit-diff', ablation: 'resample', scope: 'answer' });
    expect(r.heads).toHaveLength(24);
    expect(r.heads[0]).toMatchObject({ layer: 5, head: 3 });
    for (const h of r.heads) expect(h.ci[0]).toBeLessThanOrEqual(h.effect);
    expect(r.heads.map((h) => h.effect)).toEqual([...r.heads.map((h) => h.effect)].sort((a, b) => b - a));
    const zero = await headImportance(model, items.slice(0, 2), { metric: 'kl', heads: [{ layer: 5, head: 3 }, { layer: 0, head: 0 }], scope: 'all' });
    expect(zero.heads.map((h) => `${h.layer}:${h.head}`)).toContain('5:3');
  });

  it('prompt files: one line per prompt, errors name the line', () => {
    expect(parseImportanceFile('{"prompt": "a", "answer": " b"}\n\n{"clean": "x", "corrupt": "y", "answer": " 1", "wrong": " 2"}\n', 'f.jsonl')).toHaveLength(2);
    expect(() => parseImportanceFile('{"prompt": "a", "answr": " b"}', 'f.jsonl')).toThrow(/^f.jsonl:1: unknown field "answr"/);
    expect(() => parseImportanceFile('{"prompt": "a"}', 'f.jsonl')).toThrow(/^f.jsonl:1: missing "answer"/);
    expect(() => parseImportanceFile('{"clean": "a", "answer": "b", "wrong": "c"}', 'f.jsonl')).toThrow(/missing "corrupt"/);
    expect(() => parseImportanceFile('nope', 'f.jsonl')).toThrow(/^f.jsonl:1: not valid JSON/);
  });

  it('DLA: head attributions and the other terms sum to the logit difference', async () => {
    const r = await directLogitAttribution(model, pair.clean, { answer: pair.answer, wrong: pair.wrong });
    expect(r.heads).toHaveLength(24);
    expect(Math.abs(r.sum - r.logitDiff)).toBeLessThanOrEqual(1e-3);
    expect(r.logitDiff).toBeGreaterThan(1);
    // The logit lens of the last block is the model's own output.
    expect(r.logitLens[5].logitDiff).toBeCloseTo(r.logitDiff, 3);
    const best = [...r.heads].sort((a, b) => b.attribution - a.attribution)[0];
    expect(`${best.layer}:${best.head}`).toBe('5:3');
  });

  it('DLA is refused where it would not be exact', async () => {
    for (const [name, why] of [['tiny-gemma2', /normalises the attention/], ['tiny-olmo2', /normalises the attention/]] as const) {
      const m = await Model.load(path.resolve('test/fixtures/models', name));
      expect(attributionRefusal(m)).toMatch(why);
      await m.dispose();
    }
  });
});
