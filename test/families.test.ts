/**
 * Every head tool on every family: for each model type's tiny fixture config (test/fixtures/models),
 * a random-weight checkpoint of that shape with the bundled tokenizer's vocabulary (the fixtures have
 * no tokenizer), then a small atlas, a NIAH run on a streaming cache, `generate` on a duo cache and
 * with an ablation — no error, finite scores. Sliding-window families must say in the atlas's
 * `metricInfo` that their window layers cannot reach far needles. The numbers themselves are
 * conformance's business (test/conformance.test.ts); this checks the plumbing.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runAtlas } from '../src/atlas/run.js';
import { loadHaystack } from '../src/eval/haystack.js';
import { runNiah } from '../src/eval/niahRun.js';
import { niahSamples } from '../src/eval/niahSet.js';
import { generate, run } from '../src/index.js';
import { cacheSetup } from '../src/kv/policy.js';
import { Model } from '../src/runtime/model.js';
import { fixtureWithRefTokenizer } from './fixtureModel.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'headwise-families-'));
process.env.HEADWISE_CACHE ??= path.join(tmp, 'cache');
const FIXTURES = [
  'tiny-mistral-swa', 'tiny-qwen2-swa', 'tiny-gemma', 'tiny-gemma2', 'tiny-gemma3', 'tiny-phi3', 'tiny-phi', 'tiny-gpt-neox',
  'tiny-olmo', 'tiny-olmo2', 'tiny-granite', 'tiny-mixtral', 'tiny-qwen2-moe-mixed', 'tiny-qwen3-moe', 'tiny-starcoder2', 'tiny-stablelm',
];
const CONTEXT = 64;
const haystack = loadHaystack();

function finite(rows: number[][]): boolean {
  return rows.every((r) => r.every((v) => Number.isFinite(v)));
}

describe.each(FIXTURES)('%s: atlas, niah, generate --kv duo, ablation', (name) => {
  let model: Model;
  beforeAll(async () => {
    const out = fixtureWithRefTokenizer(name, tmp);
    model = await Model.load(out);
  });
  afterAll(async () => model?.dispose());

  it('runs every tool with finite results', async () => {
    const c = model.config;
    const atlas = await runAtlas(model, { samples: 1, contextTokens: CONTEXT, harmSamples: 1, ablationSamples: 0, probes: 1, probeTokens: 16, patternSamples: 1, harmLayersPerRun: 2 });
    // Retrieval is NaN (not measured) where the random model answers no needle right; nothing is ±Infinity.
    for (const [metric, rows] of Object.entries(atlas.metrics)) expect(metric === 'retrieval' ? rows.every((r) => r.every((v) => !Number.isFinite(v) ? Number.isNaN(v) : true)) : finite(rows), metric).toBe(true);
    const windowed = c.layerWindows.some((w) => w !== null && w < CONTEXT);
    expect(Boolean(atlas.metricInfo.retrieval.caveat), 'retrieval caveat').toBe(windowed);

    const items = niahSamples(model.tokenizer!, haystack, { contextTokens: [CONTEXT], depths: [0.5], samples: 1, seed: 0 });
    const niah = await runNiah(model, items, { cache: cacheSetup(c, { policy: 'streaming', sink: 4, window: 16 }), maxNewTokens: 2 });
    expect(Number.isFinite(niah.accuracy)).toBe(true);

    const scores = Array.from({ length: c.numLayers }, (_, l) => Array.from({ length: c.numKvHeads }, (_, g) => l + g / 10));
    const duo = await generate(model, 'The pass key is 4829371. What is the pass key?', { kv: { policy: 'duo', fullHeads: 0.5, kvHeadScores: scores, sink: 2, window: 8 }, maxNewTokens: 4, stopAtEos: false });
    expect(duo.tokens).toHaveLength(4);
    expect(duo.kvBytes).toBeGreaterThan(0);

    const plain = await run(model, 'The pass key is 4829371.');
    const ablated = await run(model, 'The pass key is 4829371.', { interventions: { version: 1, interventions: [{ op: 'ablate', heads: ['0:0', '1:1'] }] } });
    expect(ablated.logits.every((v) => Number.isFinite(v))).toBe(true);
    expect(ablated.logits.some((v, i) => v !== plain.logits[i])).toBe(true);
  }, 60_000);
});
