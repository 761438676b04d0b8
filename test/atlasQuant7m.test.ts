/**
 * The atlas under compact weights, small (16 needle prompts of 512 tokens, retrieval and accuracy
 * only) on the bundled ref-llama-7m: q8 and q4 find the same top retrieval heads as float32 with
 * every head's score close to it; the CLI's `--weights` reaches the atlas file's model block; bad
 * formats are refused in one line; `quant-report --json` prints the promised fields.
 * (The full-size acceptance, ref-llama-30m at 1024 tokens × 96 prompts, is in README "Weights".)
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AtlasFile } from '../src/atlas/file.js';
import { runAtlas } from '../src/atlas/run.js';
import { DEFAULT_MODEL } from '../src/cli/common.js';
import { weightOptions, type WeightFormat } from '../src/graph/quant.js';
import { Model } from '../src/runtime/model.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'headwise-atlasq-'));
process.env.HEADWISE_CACHE ??= path.join(tmp, 'cache');
const CLI = path.resolve('dist/cli/main.js');

function cli(args: string[]) {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', env: { ...process.env }, timeout: 120_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

const OPTS = { samples: 16, contextTokens: 512, harmSamples: 0, ablationSamples: 0, probes: 0, patternSamples: 0 };

async function atlasAt(format: WeightFormat): Promise<AtlasFile> {
  const m = await Model.load(DEFAULT_MODEL, { threads: 1, weights: weightOptions(format) });
  try {
    return await runAtlas(m, OPTS);
  } finally {
    await m.dispose();
  }
}

const maxDiff = (a: number[][], b: number[][]) => Math.max(...a.flatMap((row, l) => row.map((v, h) => Math.abs(v - b[l][h]))));
const top = (a: AtlasFile, k: number) => a.topHeads!.retrieval.slice(0, k).map((h) => `${h.layer}:${h.head}`);

describe('atlas with q8 / q4 weights on ref-llama-7m (16 prompts, 512 tokens)', () => {
  const atlases: Partial<Record<WeightFormat, AtlasFile>> = {};
  beforeAll(async () => {
    for (const f of ['f32', 'q8', 'q4'] as const) atlases[f] = await atlasAt(f);
  }, 240_000);
  afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

  it('records the weight format in the model block', () => {
    expect(atlases.f32!.model.weights).toBe('f32');
    expect(atlases.q8!.model.weights).toBe('q8b32');
    expect(atlases.q4!.model.weights).toBe('q4b32');
  });

  it('q8: top-2 retrieval heads as float32, every head within 0.03, accuracy within 1 prompt', () => {
    const [f, q] = [atlases.f32!, atlases.q8!];
    expect(top(q, 2)).toEqual(top(f, 2));
    expect(maxDiff(q.metrics.retrieval, f.metrics.retrieval)).toBeLessThanOrEqual(0.03);
    expect(Math.abs(q.niah!.accuracy - f.niah!.accuracy)).toBeLessThanOrEqual(1 / 16 + 1e-9);
  });

  it('q4: top-1 retrieval head as float32, every head within 0.08, accuracy within 2 prompts', () => {
    const [f, q] = [atlases.f32!, atlases.q4!];
    expect(top(q, 1)).toEqual(top(f, 1));
    expect(maxDiff(q.metrics.retrieval, f.metrics.retrieval)).toBeLessThanOrEqual(0.08);
    expect(Math.abs(q.niah!.accuracy - f.niah!.accuracy)).toBeLessThanOrEqual(2 / 16 + 1e-9);
  });

  it('the CLI: --weights q4 reaches the atlas file; a bad format or block size is refused in one line', () => {
    const out = path.join(tmp, 'a.json');
    const r = cli(['atlas', '--samples', '2', '--context', '256', '--weights', 'q4', '--threads', '1', '--out', out]);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(fs.readFileSync(out, 'utf8')).model.weights).toBe('q4b32');
    const bad = cli(['niah', '--weights', 'q3']);
    expect(bad.code).toBe(2);
    expect(bad.stderr.trim().split('\n')).toHaveLength(1);
    expect(bad.stderr).toMatch(/--weights.*q3.*f32, f16, q8, q4/);
    const block = cli(['generate', '--prompt', 'x', '--weights', 'q4', '--weights-block', '24']);
    // A flag value out of range is a usage error (exit 2, program.ts).
    expect(block.code).toBe(2);
    expect(block.stderr.trim()).toBe('headwise: error: weights block size 24: expected a power of two ≥ 16');
  });

  it('quant-report --json: per-matrix error, per-layer summary and logit KL per format', () => {
    const r = cli(['quant-report', '--tokens', '64', '--threads', '1', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const j = JSON.parse(r.stdout);
    expect(j.results.map((x: { weights: string }) => x.weights)).toEqual(['q8b32', 'q4b32']);
    const [q8, q4] = j.results;
    expect(q8.perLayer).toHaveLength(6);
    expect(q8.matrices).toHaveLength(43);
    expect(q8.logits.klMean).toBeGreaterThan(0);
    expect(q8.logits.klMean).toBeLessThan(q4.logits.klMean);
    expect(q4.logits.positions).toBe(64);
  });
});
