/**
 * Interventions through the real ONNX graph, against reference.ts: every op is applied by the compiled
 * hook points and the captured head outputs (hook_z) or attention patterns (hook_pattern) are compared
 * with the reference formula applied to the same capture without the intervention. An intervention on
 * layer l leaves layer l's inputs unchanged, so the unsteered capture of layer l is the formula's input.
 * Also: prefill + decode with an intervention equals one-shot prefill with it, and combined specs.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NO_HOOKS, type HookOptions } from '../graph/hooks.js';
import { splitLayout } from '../graph/layout.js';
import type { AttentionMatrix } from '../runtime/capture.js';
import { forward, type ForwardResult, type HookProvider } from '../runtime/forward.js';
import { generate, type CacheSetup } from '../runtime/generate.js';
import { KvCache } from '../runtime/kvCache.js';
import { Model } from '../runtime/model.js';
import { bindIntervention, mergeHookOptions, modelShape, promptTokenOffsets, specHookOptions } from './bind.js';
import { combine } from './compose.js';
import { headMeans } from './means.js';
import { actMask, applyActMasked, applyHeadOutput, applyPasta, meanReceivedAttention, pastaOnPattern } from './reference.js';
import { parseInterventionSpec, type InterventionSpec } from './spec.js';
import { FULL_HISTORY, windowClass } from '../kv/classPolicy.js';

process.env.HEADWISE_CACHE ??= fs.mkdtempSync(path.join(os.tmpdir(), 'headwise-test-'));

const MODELS = ['test/fixtures/models/tiny-llama', 'test/fixtures/models/tiny-gpt2', 'models/ref-llama-7m'];
const TOL = 2e-5;

function seededIds(n: number, vocab: number, seed: number): number[] {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), a | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return [0, ...Array.from({ length: n - 1 }, () => 1 + Math.floor(next() * (vocab - 1)))];
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

/** One-shot forward of `ids` with every row's logits and pattern captured. */
async function runAll(model: Model, ids: number[], hookOptions: HookOptions, hooks?: HookProvider, cache?: CacheSetup): Promise<ForwardResult> {
  const setup = cache ?? { layout: model.fullLayout(), policies: new Map([['full', FULL_HISTORY]]) };
  const gs = await model.session(setup.layout, hookOptions);
  const kv = new KvCache(setup.layout, setup.policies, model.config.headDim);
  const rows = ids.map((_, i) => i);
  return forward(model, gs, kv, ids, { logitsAt: rows, captureRows: hookOptions.capturePattern.length ? rows : [], hooks });
}

/** Head `head` of layer `layer` as an AttentionMatrix (all rows, dense keys). */
function headPattern(r: ForwardResult, layer: number, head: number): AttentionMatrix {
  const p = r.patterns.find((g) => g.layer === layer && g.heads.includes(head))!;
  const rows = p.queryPositions.length;
  const K = p.keyPositions.length;
  const i = p.heads.indexOf(head);
  // Columns in key-position order (a split layout still holds every key here).
  const data = new Float32Array(rows * K);
  for (let t = 0; t < rows; t++) for (let j = 0; j < K; j++) data[t * K + p.keyPositions[j]] = p.data[i * rows * K + t * K + j];
  return { rows, cols: K, rowOffset: p.queryPositions[0], data };
}

/** [queries, heads, headDim] → one head's [queries, headDim]. */
function headZ(z: Float32Array, head: number, numHeads: number, headDim: number): Float32Array {
  const q = z.length / (numHeads * headDim);
  const out = new Float32Array(q * headDim);
  for (let t = 0; t < q; t++) out.set(z.subarray((t * numHeads + head) * headDim, (t * numHeads + head + 1) * headDim), t * headDim);
  return out;
}

function spec(model: Model, json: unknown): InterventionSpec {
  return parseInterventionSpec(json, modelShape(model));
}

describe.each(MODELS)('interventions through the graph: %s', (dir) => {
  let model: Model;
  let ids: number[];
  let L: number; // the layer intervened on: the last, so earlier layers feed it unchanged
  beforeAll(async () => {
    model = await Model.load(path.resolve(dir));
    ids = seededIds(Math.min(40, model.config.maxPositions), model.config.vocabSize, 7);
    L = model.config.numLayers - 1;
  });
  afterAll(async () => model?.dispose());

  it('ablate zero, scale, steer and mean-ablate give z = scale·z + add on the targeted heads only', async () => {
    const { numHeads: H, headDim: D } = model.config;
    const opts = { ...NO_HOOKS, headHooks: true, captureZ: [L] };
    const base = await runAll(model, ids, opts);
    const plain = await runAll(model, ids, NO_HOOKS);
    expect(maxAbsDiff(base.logits, plain.logits)).toBeLessThanOrEqual(1e-5); // identity hooks change nothing
    const zBase = base.z.get(L)!;
    const vector = Array.from({ length: D }, (_, d) => Math.sin(d + 1));
    const means = await headMeans(model, [ids.slice(0, 20), ids.slice(10)]);
    const cases: { json: unknown; heads: number[]; scale: number; add: (h: number) => Float32Array | null }[] = [
      { json: [{ op: 'ablate', heads: [`${L}:1`], params: { mode: 'zero' } }], heads: [1], scale: 0, add: () => null },
      { json: [{ op: 'scale', heads: [`${L}:0`, `${L}:2`], params: { factor: 2.5 } }], heads: [0, 2], scale: 2.5, add: () => null },
      { json: [{ op: 'steer', heads: [`${L}:3`], params: { alpha: 1.5, vector } }], heads: [3], scale: 1, add: () => Float32Array.from(vector, (x) => 1.5 * x) },
      {
        json: [{ op: 'ablate', heads: [`${L}:0`], params: { mode: 'mean' } }],
        heads: [0],
        scale: 0,
        add: (h) => means[L].subarray(h * D, (h + 1) * D),
      },
    ];
    for (const c of cases) {
      const bound = await bindIntervention(model, spec(model, c.json), ids, { means });
      const r = await runAll(model, ids, mergeHookOptions(bound.hookOptions, opts), bound.hooks);
      const z = r.z.get(L)!;
      for (let h = 0; h < H; h++) {
        const before = headZ(zBase, h, H, D);
        const want = c.heads.includes(h) ? applyHeadOutput(before, c.scale, c.add(h)) : before;
        expect(maxAbsDiff(headZ(z, h, H, D), want), `${JSON.stringify(c.json).slice(0, 40)} head ${h}`).toBeLessThanOrEqual(TOL);
      }
      expect(maxAbsDiff(r.logits, base.logits)).toBeGreaterThan(1e-4); // and the change reaches the logits
    }
  });

  it('mean head outputs are the average of hook_z over all tokens but the first', async () => {
    const { numHeads: H, headDim: D } = model.config;
    const prompts = [ids.slice(0, 12), ids.slice(5, 30)];
    const means = await headMeans(model, prompts);
    const opts = { ...NO_HOOKS, captureZ: [L] };
    const sum = new Float64Array(H * D);
    for (const p of prompts) {
      const z = (await runAll(model, p, opts)).z.get(L)!;
      for (let t = 1; t < p.length; t++) for (let i = 0; i < H * D; i++) sum[i] += z[t * H * D + i];
    }
    expect(maxAbsDiff(means[L], Float32Array.from(sum, (x) => x / (11 + 24)))).toBeLessThanOrEqual(1e-5);
  });

  it('PASTA: steered patterns equal applyPasta on the unsteered scores (= pastaOnPattern), other heads untouched', async () => {
    const H = model.config.numHeads;
    const opts = { ...NO_HOOKS, capturePattern: [L], scoreBias: [L] };
    const base = await runAll(model, ids, opts);
    const prompt = ids.length - 6; // the last 6 tokens play generated tokens: never down-weighted
    const spans: [number, number][] = [[3, 7], [12, 15]];
    for (const alpha of [0.01, 0.3]) {
      const steered = [0, H - 1];
      const s = spec(model, [{ op: 'pasta', heads: steered.map((h) => `${L}:${h}`), params: { alpha, spans: spans.map((t) => ({ tokens: t })) } }]);
      const bound = await bindIntervention(model, s, ids.slice(0, prompt));
      expect(bound.hookOptions.scoreBias).toEqual([L]);
      const r = await runAll(model, ids, mergeHookOptions(bound.hookOptions, opts), bound.hooks);
      for (let h = 0; h < H; h++) {
        const before = headPattern(base, L, h);
        const got = headPattern(r, L, h).data;
        if (!steered.includes(h)) {
          expect(maxAbsDiff(got, before.data)).toBeLessThanOrEqual(TOL);
          continue;
        }
        expect(maxAbsDiff(got, pastaOnPattern(before, spans, alpha, prompt).data), `α=${alpha} head ${h}`).toBeLessThanOrEqual(TOL);
        // Scores up to a per-row constant: log of the softmax.
        const scores = { ...before, data: before.data.map((x) => (x > 0 ? Math.log(x) : -1e30)) };
        expect(maxAbsDiff(got, applyPasta(scores, spans, alpha, prompt).data)).toBeLessThanOrEqual(TOL);
      }
    }
  });

  it('ACT: calibrated patterns equal applyActMasked with the sinks found on the prompt (actMask)', async () => {
    const H = model.config.numHeads;
    const opts = { ...NO_HOOKS, capturePattern: [L], act: [L] };
    const base = await runAll(model, ids, opts);
    const heads = [1, H - 1];
    // τ just below the 3rd-largest mean received attention among keys k > 0 seen by ≥ 4 queries, so every head has sinks.
    const tauOf = (h: number) => {
      const r = Array.from(meanReceivedAttention(headPattern(base, L, h))).slice(1, ids.length - 3).sort((a, b) => b - a);
      return r[2] * 0.999;
    };
    const tau = Math.min(...heads.map(tauOf));
    const beta = 0.4;
    const s = spec(model, [{ op: 'act', heads: heads.map((h) => `${L}:${h}`), params: { tau, beta, minQueries: 4 } }]);
    const bound = await bindIntervention(model, s, ids, { prefillChunk: 16 });
    const r = await runAll(model, ids, mergeHookOptions(bound.hookOptions, opts), bound.hooks);
    for (let h = 0; h < H; h++) {
      const before = headPattern(base, L, h);
      const got = headPattern(r, L, h).data;
      if (!heads.includes(h)) {
        expect(maxAbsDiff(got, before.data)).toBeLessThanOrEqual(TOL);
        continue;
      }
      const mask = actMask(before, tau, 4);
      expect(mask.reduce((a, b) => a + b, 0)).toBeGreaterThanOrEqual(1);
      expect(Array.from(bound.actMasks.get(`${L}:${h}`)!)).toEqual(Array.from(mask));
      expect(maxAbsDiff(got, applyActMasked(before, mask, beta).data), `head ${h}`).toBeLessThanOrEqual(TOL);
      expect(maxAbsDiff(got, before.data)).toBeGreaterThan(1e-3);
    }
  });
});

describe('interventions through the graph: prefill/decode identity and composition', () => {
  const models = new Map<string, Model>();
  beforeAll(async () => {
    for (const dir of ['test/fixtures/models/tiny-llama', 'models/ref-llama-7m']) models.set(dir, await Model.load(path.resolve(dir)));
  });
  afterAll(async () => {
    for (const m of models.values()) await m.dispose();
  });

  /** Every op at once, spread over the layers. */
  function everything(model: Model): InterventionSpec {
    const { numLayers: nl, numHeads: H, headDim: D } = model.config;
    return spec(model, [
      { op: 'pasta', heads: [`${nl - 1}:0`, `0:${H - 1}`], params: { alpha: 0.05, spans: [{ tokens: [2, 6] }] } },
      { op: 'act', heads: [`${nl - 1}:1`], params: { tau: 0.05, beta: 0.3 } },
      { op: 'ablate', heads: [`0:1`], params: { mode: 'zero' } },
      { op: 'scale', heads: [`${nl - 1}:${H - 1}`], params: { factor: 1.7 } },
      { op: 'steer', heads: [`0:0`], params: { alpha: 0.5, vector: Array.from({ length: D }, (_, d) => Math.cos(d)) } },
    ]);
  }

  it.each(['test/fixtures/models/tiny-llama', 'models/ref-llama-7m'])(
    '%s: chunked prefill + cached decode with every op gives the one-shot logits',
    async (dir) => {
      const model = models.get(dir)!;
      const ids = seededIds(36, model.config.vocabSize, 11);
      const prompt = 28;
      const bound = await bindIntervention(model, everything(model), ids.slice(0, prompt));
      expect(bound.hookOptions.headHooks).toBe(true);
      const oneShot = await runAll(model, ids, bound.hookOptions, bound.hooks);
      const plain = await runAll(model, ids, NO_HOOKS);
      const V = model.config.vocabSize;
      expect(maxAbsDiff(oneShot.logits, plain.logits)).toBeGreaterThan(1e-3);

      const gs = await model.session(model.fullLayout(), bound.hookOptions);
      const cache = new KvCache(model.fullLayout(), new Map([['full', FULL_HISTORY]]), model.config.headDim);
      let worst = 0;
      for (const [a, b] of [[0, 9], [9, 20], [20, prompt]]) {
        const r = await forward(model, gs, cache, ids.slice(a, b), { hooks: bound.hooks });
        worst = Math.max(worst, maxAbsDiff(r.logits, oneShot.logits.subarray((b - 1) * V, b * V)));
      }
      for (let t = prompt; t < ids.length; t++) {
        const r = await forward(model, gs, cache, [ids[t]], { hooks: bound.hooks });
        worst = Math.max(worst, maxAbsDiff(r.logits, oneShot.logits.subarray(t * V, (t + 1) * V)));
      }
      expect(worst).toBeLessThanOrEqual(1e-4);

      // generate() applies the same hooks in prefill and decode: its greedy tokens are the one-shot argmaxes.
      const g = await generate(model, ids.slice(0, prompt), { maxNewTokens: 6, stopAtEos: false, prefillChunk: 10, hookOptions: bound.hookOptions, hooks: bound.hooks });
      const check = await runAll(model, [...ids.slice(0, prompt), ...g.tokens], bound.hookOptions, bound.hooks);
      g.tokens.forEach((tok, i) => {
        const row = check.logits.subarray((prompt - 1 + i) * V, (prompt + i) * V);
        expect(row[tok]).toBeCloseTo(Math.max(...row), 5);
      });
    },
  );

  it('PASTA under a split KV layout (heads regrouped per cache class) matches the formula', async () => {
    const model = models.get('test/fixtures/models/tiny-llama')!;
    const ids = seededIds(30, model.config.vocabSize, 3);
    const L = 1;
    const layout = splitLayout(model.config.numLayers, model.config.numKvHeads, (_l, g) => g === 1);
    const setup: CacheSetup = { layout, policies: new Map([['full', FULL_HISTORY], ['stream', windowClass(4, 1000)]]) };
    const opts = { ...NO_HOOKS, capturePattern: [L], scoreBias: [L] };
    const base = await runAll(model, ids, opts, undefined, setup);
    const steered = [0, 3]; // one query head in each KV group
    const s = spec(model, [{ op: 'pasta', heads: steered.map((h) => `${L}:${h}`), params: { alpha: 0.02, spans: [{ tokens: [5, 9] }] } }]);
    const bound = await bindIntervention(model, s, ids);
    const r = await runAll(model, ids, mergeHookOptions(bound.hookOptions, opts), bound.hooks, setup);
    for (let h = 0; h < 4; h++) {
      const before = headPattern(base, L, h);
      const want = steered.includes(h) ? pastaOnPattern(before, [[5, 9]], 0.02).data : before.data;
      expect(maxAbsDiff(headPattern(r, L, h).data, want)).toBeLessThanOrEqual(TOL);
    }
  });

  it('combined specs compose: output ops as affine maps in order, PASTA biases add, across layers', async () => {
    const model = models.get('models/ref-llama-7m')!;
    const { numHeads: H, headDim: D } = model.config;
    const ids = seededIds(32, model.config.vocabSize, 5);
    const v = Array.from({ length: D }, (_, d) => (d % 5) - 2);
    const a = spec(model, [
      { op: 'scale', heads: ['5:2'], params: { factor: 0.5 } },
      { op: 'pasta', heads: ['2:1'], params: { alpha: 0.1, spans: [{ tokens: [4, 10] }] } },
    ]);
    const b = spec(model, [
      { op: 'steer', heads: ['5:2'], params: { alpha: 2, vector: v } },
      { op: 'pasta', heads: ['2:1'], params: { alpha: 0.5, spans: [{ tokens: [8, 14] }] } },
    ]);
    const both = combine(a, b);
    const opts = { ...NO_HOOKS, capturePattern: [2], captureZ: [5] };
    const hookOptions = mergeHookOptions(specHookOptions(both), opts);
    const base = await runAll(model, ids, hookOptions);
    const bound = await bindIntervention(model, both, ids);
    const r = await runAll(model, ids, hookOptions, bound.hooks);
    // Layer 2's pattern: both biases (log 0.1 outside [4,10), log 0.5 outside [8,14)).
    const before = headPattern(base, 2, 1);
    const want = pastaOnPattern(pastaOnPattern(before, [[4, 10]], 0.1), [[8, 14]], 0.5);
    expect(maxAbsDiff(headPattern(r, 2, 1).data, want.data)).toBeLessThanOrEqual(TOL);
    // Layer 5's z: scale then steer. Layer 5's inputs changed (PASTA on layer 2), so compare with the
    // unmodified z of the same run: bind only the PASTA part to get it.
    const pastaOnly = await bindIntervention(model, spec(model, both.interventions.filter((iv) => iv.op === 'pasta')), ids);
    const zIn = headZ((await runAll(model, ids, hookOptions, pastaOnly.hooks)).z.get(5)!, 2, H, D);
    const zWant = applyHeadOutput(applyHeadOutput(zIn, 0.5, null), 1, Float32Array.from(v, (x) => 2 * x));
    expect(maxAbsDiff(headZ(r.z.get(5)!, 2, H, D), zWant)).toBeLessThanOrEqual(TOL);
    // Order matters: steer then zero-ablate leaves zero.
    const zeroLast = combine(b, spec(model, [{ op: 'ablate', heads: ['5:2'] }]));
    const r2 = await runAll(model, ids, hookOptions, (await bindIntervention(model, zeroLast, ids)).hooks);
    expect(Math.max(...headZ(r2.z.get(5)!, 2, H, D).map(Math.abs))).toBe(0);
  });

  it('text spans are found through the tokenizer: PASTA on a highlighted sentence', async () => {
    const model = models.get('models/ref-llama-7m')!;
    const prompt = 'The cat sat on the mat. Mary is a doctor. The dog ran into the park.';
    const ids = model.tokenize(prompt);
    const offsets = promptTokenOffsets(model.tokenizer!, prompt, ids);
    expect(offsets[0]).toEqual([0, 0]); // BOS covers no text
    expect(offsets.map(([s, e]) => prompt.slice(s, e)).join('')).toBe(prompt);
    // A multi-byte character split over byte-level tokens: every one of its tokens covers it.
    const wide = 'Tokyo is 東京, café.';
    const wideIds = model.tokenize(wide);
    const wideOffsets = promptTokenOffsets(model.tokenizer!, wide, wideIds);
    const at = wide.indexOf('東京');
    const covering = wideOffsets.map(([s, e], t) => [s, e, t]).filter(([s, e]) => s < at + 2 && e > at).map(([, , t]) => t);
    expect(model.tokenizer!.decode(wideIds.slice(covering[0], covering[covering.length - 1] + 1)).trim()).toBe('東京');
    for (let c = 0; c < wide.length; c++) expect(wideOffsets.some(([s, e]) => s <= c && c < e), `char ${c}`).toBe(true);
    const s = spec(model, [{ op: 'pasta', heads: ['3:*'], params: { spans: [{ text: 'Mary is a doctor.' }] } }]);
    const bound = await bindIntervention(model, s, ids, { prompt });
    const span = bound.spec.interventions[0].op === 'pasta' ? bound.spec.interventions[0].params.spans[0] : null;
    expect(span).toHaveProperty('tokens');
    const [start, end] = (span as { tokens: [number, number] }).tokens;
    expect(model.tokenizer!.decode(ids.slice(start, end)).trim()).toBe('Mary is a doctor.');
    await expect(bindIntervention(model, spec(model, [{ op: 'pasta', heads: ['3:0'], params: { spans: [{ text: 'Bob' }] } }]), ids, { prompt })).rejects.toThrow(
      /^interventions\[0\]\.params\.spans\[0\]\.text: "Bob" does not occur in the prompt/,
    );
  });
});
