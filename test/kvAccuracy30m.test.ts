/**
 * Issue 4 acceptance on ref-llama-30m, needle prompts at 1024 tokens (the standard mixed set: one in
 * three pass key, the rest 4-key retrieval): duo with 25% full KV heads answers within 3 points of
 * full attention, streaming (sink 4 + window 64) falls below 20%, and duo's KV buffers hold at most
 * 0.35 of full attention's bytes. Duo's full heads are the KV heads with the highest streaming harm
 * (DuoAttention's criterion: what restricting that one head to sink + window costs the answer),
 * measured by headwise's own scorer (`atlas/kvScores.ts`) on needle prompts of another seed than the
 * evaluation's. (Ranking by retrieval score instead: 96 prompts, full 79.2%, duo 76.0%, streaming-harm
 * ranking 77.1% — most heads have a retrieval score of exactly 0, so which of them stay full is a tie.)
 *
 * Needles sit at 11 evenly spaced depths (0, 0.1, …, 1), as in the usual NIAH grid and close to the
 * reference analysis's random positions. (On the 5-depth default grid a fifth of the needles sit at
 * depth 1, inside the last 64 tokens where a streaming head still sees them, which alone puts
 * streaming near 20%: 19.8% over 96 prompts.)
 *
 * CI runs HEADWISE_KV_SAMPLES prompts (default 24); there one prompt is worth more than 3 points, so
 * the check allows one prompt of difference. The closing numbers come from a run with 96 prompts:
 * `HEADWISE_KV_SAMPLES=96 npx vitest run test/kvAccuracy30m.test.ts`.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { computeKvHeadScores } from '../src/atlas/kvScores.js';
import { loadHaystack } from '../src/eval/haystack.js';
import { niahSamples, type NiahItem } from '../src/eval/niahSet.js';
import { runNiah, type NiahRunResult } from '../src/eval/niahRun.js';
import { cacheSetup, chooseFullHeads } from '../src/kv/policy.js';
import { Model } from '../src/runtime/model.js';
import { HAVE_30M, MODEL_30M } from './shared.js';

process.env.HEADWISE_CACHE ??= fs.mkdtempSync(path.join(os.tmpdir(), 'headwise-test-'));

const SAMPLES = Number(process.env.HEADWISE_KV_SAMPLES ?? 24);
const DEPTHS = Array.from({ length: 11 }, (_, i) => i / 10);

describe.skipIf(!HAVE_30M)('ref-llama-30m KV policies on needle prompts at 1024 tokens', () => {
  let model: Model;
  let items: NiahItem[];
  let scores: number[][];
  const results: Record<string, NiahRunResult> = {};
  beforeAll(async () => {
    model = await Model.load(MODEL_30M);
    items = niahSamples(model.tokenizer!, loadHaystack(), { contextTokens: [1024], depths: DEPTHS, samples: SAMPLES, seed: 2024 });
    scores = await computeKvHeadScores(model, 'streamingHarm', { samples: 8, seed: 99 });
  }, 600_000);
  afterAll(async () => {
    const line = (name: string) => {
      const r = results[name];
      return r ? `${name} ${(100 * r.accuracy).toFixed(1)}% kv ${(r.kvBytes / r.kvBytesFull).toFixed(3)}` : `${name} -`;
    };
    console.log(`[kv acceptance, ${SAMPLES} prompts] ${['full', 'duo', 'streaming'].map(line).join(' | ')}`);
    await model?.dispose();
  });

  it('the scorer ranks the reference analysis\'s two strongest retrieval heads (6:6, 6:0) into duo\'s full set', () => {
    const keep = chooseFullHeads(scores, 0.25);
    expect(keep.has('6:6')).toBe(true);
    expect(keep.has('6:0')).toBe(true);
  });

  it('duo (25% full KV heads) keeps accuracy within 3 points of full attention with ≤ 0.35 of its KV bytes', async () => {
    const c = model.config;
    results.full = await runNiah(model, items, { cache: cacheSetup(c, { policy: 'full' }) });
    results.duo = await runNiah(model, items, { cache: cacheSetup(c, { policy: 'duo', fullHeads: 0.25, kvHeadScores: scores }) });
    expect(results.full.accuracy).toBeGreaterThan(0.5);
    expect(Math.abs(results.duo.accuracy - results.full.accuracy)).toBeLessThanOrEqual(Math.max(0.03, 1 / SAMPLES) + 1e-9);
    expect(results.duo.kvBytes / results.duo.kvBytesFull).toBeLessThanOrEqual(0.35);
  }, 1_800_000);

  it('streaming (sink 4 + window 64) falls below 20%', async () => {
    results.streaming = await runNiah(model, items, { cache: cacheSetup(model.config, { policy: 'streaming', sink: 4, window: 64 }) });
    expect(results.streaming.accuracy).toBeLessThan(0.2);
    expect(results.streaming.kvBytes / results.streaming.kvBytesFull).toBeLessThan(0.08);
  }, 1_800_000);
});
