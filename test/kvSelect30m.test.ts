/**
 * Issue 16 acceptance on ref-llama-30m, the needle prompts of `kvAccuracy30m.test.ts` (1024 tokens, 11
 * depths, seed 2024): the selection policies at the same measured KV bytes as duo 25% (≤ 0.3 of full
 * attention's), all from `kvBytes` measured from the buffers. HeadKV's per-head budgets come from
 * headwise's own retrieval scores on needle prompts of another seed;
 * duo's full heads are the top 25% by streaming harm as in `kvAccuracy30m.test.ts`.
 *
 * Opt-in (HEADWISE_KV_SELECT=1): at 24 prompts it takes minutes, over CI's budget for one file (24
 * prompts, on the shared 2-core machine: duo 25% 83.3% at 0.302, headkv by the mixed score 83.3% at
 * 0.297, snapkv 70.8% at 0.297; 714 s). HEADWISE_KV_SAMPLES sets the prompts (default 24),
 * HEADWISE_KV_ALL=1 adds longheads-static, longheads per step (every row held, the budget attended),
 * headkv by the mixed score or harm alone, and full attention.
 * 96 prompts (2026-12-02, `tools/kv/measure-selection.mjs`, the same settings): duo 25% 79.2% at 0.302,
 * headkv retrieval 79.2% at 0.297, headkv mix 78.1%, headkv harm 78.1%, longheads-static 72.9% at 0.291,
 * snapkv 69.8% at 0.297 (full attention: 79.2%); longheads per step 71.9%, holding 1.008 of full
 * attention's bytes and reading 0.283 of them per decode step. With headkv's budgets in 4 size classes
 * (the default since): headkv retrieval 79.2% and headkv mix 79.2%, both at 0.297.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { computeKvHeadScores } from '../src/atlas/kvScores.js';
import { loadHaystack } from '../src/eval/haystack.js';
import { niahSamples, type NiahItem } from '../src/eval/niahSet.js';
import { runNiah, type NiahRunResult } from '../src/eval/niahRun.js';
import { cacheSetup, type KvPolicyOptions } from '../src/kv/policy.js';
import { mixScores } from '../src/kv/selection.js';
import { Model } from '../src/runtime/model.js';
import { HAVE_30M, MODEL_30M } from './shared.js';

process.env.HEADWISE_CACHE ??= fs.mkdtempSync(path.join(os.tmpdir(), 'headwise-test-'));

const SAMPLES = Number(process.env.HEADWISE_KV_SAMPLES ?? 24);
const ALL = !!process.env.HEADWISE_KV_ALL;
const DEPTHS = Array.from({ length: 11 }, (_, i) => i / 10);
/** Share of full attention's rows the selection policies hold (prompt + room for the answer). */
const BUDGET = 0.295;

describe.skipIf(!HAVE_30M || !process.env.HEADWISE_KV_SELECT)('ref-llama-30m selection KV policies on needle prompts at 1024 tokens', () => {
  let model: Model;
  let items: NiahItem[];
  let harm: number[][];
  let retrieval: number[][];
  const results: Record<string, NiahRunResult> = {};
  const run = async (name: string, opts: KvPolicyOptions) => {
    results[name] = await runNiah(model, items, { cache: cacheSetup(model.config, opts) });
    return results[name];
  };
  const ratio = (r: NiahRunResult) => r.kvBytes / r.kvBytesFull;
  beforeAll(async () => {
    model = await Model.load(MODEL_30M);
    items = niahSamples(model.tokenizer!, loadHaystack(), { contextTokens: [1024], depths: DEPTHS, samples: SAMPLES, seed: 2024 });
    harm = await computeKvHeadScores(model, 'streamingHarm', { samples: 8, seed: 99 });
    retrieval = await computeKvHeadScores(model, 'retrieval', { samples: 8, seed: 99 });
  }, 600_000);
  afterAll(async () => {
    const line = (name: string) => `${name} ${(100 * results[name].accuracy).toFixed(1)}% kv ${ratio(results[name]).toFixed(3)}`;
    console.log(`[kv selection, ${SAMPLES} prompts, budget ${BUDGET}] ${Object.keys(results).map(line).join(' | ')}`);
    await model?.dispose();
  });

  it('headkv (budgets by retrieval score) answers at least as well as duo 25% at no more KV bytes (≤ 0.3 of full)', async () => {
    const duo = await run('duo 25%', { policy: 'duo', fullHeads: 0.25, kvHeadScores: harm });
    const headkv = await run('headkv retrieval', { policy: 'headkv', budget: BUDGET, kvHeadScores: retrieval });
    expect(ratio(headkv)).toBeLessThanOrEqual(0.3);
    expect(ratio(headkv)).toBeLessThanOrEqual(ratio(duo));
    expect(headkv.accuracy).toBeGreaterThanOrEqual(duo.accuracy);
  }, 1_800_000);

  it('snapkv and longheads at the same budget, reported beside', async () => {
    const snap = await run('snapkv', { policy: 'snapkv', budget: BUDGET });
    expect(ratio(snap)).toBeLessThanOrEqual(0.3);
    if (!ALL) return;
    const lh = await run('longheads-static', { policy: 'longheads-static', budget: BUDGET });
    expect(ratio(lh)).toBeLessThanOrEqual(0.3);
    // per step: nothing freed, the budget read per step
    const step = await run('longheads', { policy: 'longheads', budget: BUDGET });
    expect(ratio(step)).toBeGreaterThanOrEqual(1);
    expect(step.kvAttendedRatio).toBeLessThanOrEqual(0.3);
    await run('headkv mix', { policy: 'headkv', budget: BUDGET, kvHeadScores: mixScores(retrieval, harm) });
    await run('headkv harm', { policy: 'headkv', budget: BUDGET, kvHeadScores: harm });
    await run('full', { policy: 'full' });
  }, 1_800_000);
});
