/**
 * Selection policies: the scoring functions on hand-made attention, and on real graphs (ref-llama-7m):
 * every policy is bit-identical to full attention when its budget covers the whole context, and below
 * that it frees memory for real — the buffers allocate the budget, per head where budgets differ.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fullCache, generate, prefill } from '../runtime/generate.js';
import { SELECTED_POSITION } from '../runtime/kvCache.js';
import { Model } from '../runtime/model.js';
import { cacheSetup } from './policy.js';
import { chunkScores, classBudgets, headBudgets, longheadsRows, scoreClasses, snapkvRows, snapkvVotes } from './selection.js';

process.env.HEADWISE_CACHE ??= fs.mkdtempSync(path.join(os.tmpdir(), 'headwise-test-'));

describe('selection scoring (hand-made attention)', () => {
  it('SnapKV votes sum the observation rows and the KV head\'s query heads, then max-pool', () => {
    // 2 query heads × 2 rows × 6 keys
    const p = Float32Array.from([
      0.1, 0.0, 0.5, 0.0, 0.0, 0.4, /**/ 0.0, 0.2, 0.0, 0.0, 0.0, 0.8,
      0.0, 0.0, 0.0, 0.3, 0.0, 0.7, /**/ 0.0, 0.0, 0.0, 0.0, 0.1, 0.9,
    ]);
    expect(Array.from(snapkvVotes(p, [0], 2, 6, 5, 1))).toEqual([0.1, 0.2, 0.5, 0, 0].map((x) => Math.fround(x)));
    const both = Array.from(snapkvVotes(p, [0, 1], 2, 6, 5, 1));
    expect(both.map((x) => +x.toFixed(6))).toEqual([0.1, 0.2, 0.5, 0.3, 0.1]);
    expect(Array.from(snapkvVotes(p, [0, 1], 2, 6, 5, 3)).map((x) => +x.toFixed(6))).toEqual([0.2, 0.5, 0.5, 0.5, 0.3]);
  });

  it('SnapKV keeps sinks, the window and the best-voted rows between, ascending', () => {
    const votes = Float64Array.from([9, 0, 5, 1, 7, 0, 0, 0]);
    // n = 10, sink 1, window 2: candidates 1..7, keep 5 → row 0, rows 4 and 2, rows 8, 9
    expect(snapkvRows(votes, 10, 1, 2, 5)).toEqual([0, 2, 4, 8, 9]);
    expect(snapkvRows(votes, 10, 1, 2, 10)).toEqual([...Array(10).keys()]);
    // ties go to the earlier row
    expect(snapkvRows(new Float64Array(8), 10, 0, 2, 4)).toEqual([0, 1, 8, 9]);
  });

  it('HeadKV budgets: the total is fixed, each head gets the minimum, the rest goes by score, none past n', () => {
    expect(headBudgets([[1, 0]], 0.5, 100, 10)).toEqual([[90, 10]]);
    expect(headBudgets([[1, 3]], 0.5, 100, 10)).toEqual([[30, 70]]);
    // a capped head's surplus goes to the others; all-zero scores share evenly
    expect(headBudgets([[100, 1, 0]], 0.6, 100, 10)).toEqual([[100, 70, 10]]);
    expect(headBudgets([[0, 0], [NaN, -1]], 0.25, 100, 4)).toEqual([[25, 25], [25, 25]]);
    const b = headBudgets([[0.3, 0.1, 0.05], [0, 0.7, 0.2]], 0.3, 1000, 68);
    expect(b.flat().reduce((a, x) => a + x, 0)).toBe(6 * 300);
    expect(Math.min(...b.flat())).toBe(68);
  });

  it('LongHeads scores chunks by the mean log attention (= q·mean(k) up to a constant) and keeps first, last and best chunks', () => {
    const keys = 8;
    const p = Float32Array.from([0.05, 0.05, 0.3, 0.3, 0.01, 0.01, 0.14, 0.14]);
    const s = chunkScores(p, [0], keys, 2);
    expect(s.length).toBe(4);
    expect(s[1]).toBeGreaterThan(s[3]);
    expect(s[3]).toBeGreaterThan(s[0]);
    // 12 tokens, chunks of 2, sink 1, window 2, keep 6: chunk 0, chunk 5, then the best middle ones
    const scores = Float64Array.from([0, 1, 5, 2, 4, 0]);
    expect(longheadsRows(scores, 12, 2, 1, 2, 6)).toEqual([0, 1, 4, 5, 10, 11]);
    expect(longheadsRows(scores, 12, 2, 1, 2, 8)).toEqual([0, 1, 4, 5, 8, 9, 10, 11]);
  });
});

describe('headkv size classes (hand-made scores)', () => {
  it('scoreClasses cuts the sorted scores where the squared deviation is least', () => {
    expect(scoreClasses([[0, 0, 5, 6]], 2)).toEqual([[0, 0, 1, 1]]);
    expect(scoreClasses([[0, 1, 0], [10, 11, 30]], 3)).toEqual([[0, 0, 0], [1, 1, 2]]);
    // NaN and negatives count 0; equal scores are not split whatever the class count
    expect(scoreClasses([[NaN, -1, 0, 0]], 3)).toEqual([[0, 0, 0, 0]]);
    // no more classes than heads
    expect(scoreClasses([[3, 1]], 5)).toEqual([[1, 0]]);
  });

  it('classBudgets gives each head its class\'s mean budget, rounded down: the total never grows', () => {
    expect(classBudgets([[10, 20, 31]], [[0, 1, 1]])).toEqual([[10, 25, 25]]);
    const budgets = headBudgets([[0.9, 0.1, 0], [0.5, 0.45, 0.05]], 0.3, 1000, 68);
    const classes = scoreClasses([[0.9, 0.1, 0], [0.5, 0.45, 0.05]], 3);
    const shared = classBudgets(budgets, classes);
    const total = (b: number[][]) => b.flat().reduce((a, x) => a + x, 0);
    expect(total(shared)).toBeLessThanOrEqual(total(budgets));
    expect(total(budgets) - total(shared)).toBeLessThan(3);
    expect(new Set(shared.flat()).size).toBeLessThanOrEqual(3);
    expect(Math.min(...shared.flat())).toBeGreaterThanOrEqual(68);
  });
});

function tokens(model: Model, n: number, seed = 3): number[] {
  let a = seed;
  return Array.from({ length: n }, () => {
    a = (a * 1103515245 + 12345) % 2 ** 31;
    return 1 + (a % (model.config.vocabSize - 1));
  });
}

describe('selection policies on ref-llama-7m', () => {
  let model: Model;
  let scores: number[][];
  beforeAll(async () => {
    model = await Model.load(path.resolve('models/ref-llama-7m'));
    const c = model.config;
    scores = Array.from({ length: c.numLayers }, (_, l) => Array.from({ length: c.numKvHeads }, (_, g) => ((l * 5 + g * 3) % 7) / 7));
  });
  afterAll(async () => model?.dispose());

  const setupOf = (policy: 'snapkv' | 'headkv' | 'longheads-static', budget: number) =>
    cacheSetup(model.config, { policy, budget, kvHeadScores: scores, window: 32, observe: 32 });

  it('each policy is bit-identical to full attention when its budget covers the whole context', async () => {
    const ids = tokens(model, 300);
    const opts = { maxNewTokens: 12, stopAtEos: false, prefillChunk: 128 };
    const full = await prefill(model, ids, opts);
    const ref = await generate(model, ids, opts);
    for (const policy of ['snapkv', 'headkv', 'longheads-static'] as const) {
      const setup = setupOf(policy, 1);
      const p = await prefill(model, ids, { ...opts, cache: setup });
      expect(Array.from(p.logits)).toEqual(Array.from(full.logits));
      const g = await generate(model, ids, { ...opts, cache: setup });
      expect(g.tokens).toEqual(ref.tokens);
      expect(g.kvBytes).toBe(ref.kvBytes);
    }
  });

  it('below that, each head keeps its budget and the buffers free the rest', async () => {
    const c = model.config;
    const ids = tokens(model, 600, 5);
    const room = 7;
    const opts = { maxNewTokens: room + 1, prefillChunk: 256 };
    const rowBytes = 2 * c.headDim * 4;
    for (const policy of ['snapkv', 'headkv', 'longheads-static'] as const) {
      const { cache } = await prefill(model, ids, { ...opts, cache: setupOf(policy, 0.25) });
      const held = cache.buffers.flat().reduce((a, b) => a + b.heads * b.capacity, 0);
      expect(cache.kvBytes).toBe(held * rowBytes);
      const share = cache.kvBytes / (c.numLayers * c.numKvHeads * (ids.length + room) * rowBytes);
      expect(share).toBeLessThanOrEqual(0.25);
      expect(share).toBeGreaterThan(0.2);
      // every head holds the sinks and its window, in ascending order
      for (const heads of cache.headPositions.values()) for (const pos of heads) {
        expect(pos.slice(0, 4)).toEqual([0, 1, 2, 3]);
        expect(pos.slice(-32)).toEqual(Array.from({ length: 32 }, (_, i) => ids.length - 32 + i));
        expect([...pos].sort((a, b) => a - b)).toEqual(pos);
      }
      for (const [, positions] of cache.positions) expect(positions.every((p) => p === SELECTED_POSITION)).toBe(true);
      if (policy === 'headkv') {
        // budgets follow the scores: heads hold different row counts, one per size class (4), and the
        // heads of a class in a layer share a group
        const counts = new Set(cache.buffers.flat().map((b) => b.length));
        expect(counts.size).toBeGreaterThan(1);
        expect(counts.size).toBeLessThanOrEqual(4);
        expect(cache.layout.some((groups) => groups.some((g) => g.kvHeads.length > 1))).toBe(true);
      }
    }
    // and decoding on the selected cache runs
    const g = await generate(model, ids, { maxNewTokens: 4, stopAtEos: false, cache: setupOf('snapkv', 0.25) });
    expect(g.tokens.length).toBe(4);
    expect(fullCache(model).selection).toBeUndefined();
  });
});
