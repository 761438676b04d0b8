/**
 * The atlas and NIAH on the bundled ref-llama-7m, small (8 needle prompts of 512 tokens): the top
 * retrieval head is layer 5 head 3 (the model README's reference: L5H3 0.93, L5H1 0.33), the atlas
 * JSON has the documented shape and reads back, zeroing the top 2 heads breaks retrieval, and the
 * `atlas` / `niah` commands write and print what they promise.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readAtlas, type AtlasFile } from '../src/atlas/file.js';
import { runAtlas } from '../src/atlas/run.js';
import { validateAtlas } from '../src/atlas/validate.js';
import { DEFAULT_MODEL } from '../src/cli/common.js';
import { Model } from '../src/runtime/model.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'headwise-atlas7m-'));
process.env.HEADWISE_CACHE ??= path.join(tmp, 'cache');
const CLI = path.resolve('dist/cli/main.js');

function cli(args: string[]) {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', env: { ...process.env }, timeout: 300_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('atlas on ref-llama-7m (8 prompts, 512 tokens)', () => {
  let model: Model;
  let atlas: AtlasFile;
  const progress: number[] = [];
  beforeAll(async () => {
    model = await Model.load(DEFAULT_MODEL);
    atlas = await runAtlas(model, { samples: 8, contextTokens: 512, harmSamples: 4, ablationSamples: 1, probes: 4, patternSamples: 4, onProgress: (p) => progress.push(p.done) });
  });
  afterAll(async () => model?.dispose());

  it('finds L5H3 as the top retrieval head, then L5H1', () => {
    const top = atlas.topHeads!.retrieval;
    expect(top[0]).toMatchObject({ layer: 5, head: 3 });
    expect(top[0].score).toBeGreaterThan(0.7);
    expect(top[1]).toMatchObject({ layer: 5, head: 1 });
    for (const h of top.slice(2)) expect(h.score).toBeLessThan(0.1);
  });

  it('has the documented shape', () => {
    expect(atlas).toMatchObject({ format: 'headwise-atlas', version: 1, model: { name: 'ref-llama-7m', family: 'llama', layers: 6, heads: 4, kvHeads: 4, headDim: 64, vocab: 8192 } });
    expect(atlas.settings).toMatchObject({ contextTokens: 512, samples: 8, seed: 0, harmSamples: 4, ablationSamples: 1, probes: 4 });
    const names = ['retrieval', 'sink', 'hiddenSinks', 'previousToken', 'duplicateToken', 'induction', 'reach', 'waad', 'entropy', 'streamingHarm', 'ablationKl'];
    expect(Object.keys(atlas.metrics).sort()).toEqual([...names].sort());
    for (const name of names) {
      const t = atlas.metrics[name];
      expect(t, name).toHaveLength(6);
      for (const row of t) {
        expect(row).toHaveLength(4);
        for (const v of row) expect(Number.isFinite(v), `${name} ${v}`).toBe(true);
      }
      expect(atlas.metricInfo[name].per).toBe(name === 'streamingHarm' ? 'kvHead' : 'head');
      expect(atlas.metricInfo[name].samples).toBeGreaterThan(0);
      expect(atlas.metricInfo[name].description.length).toBeGreaterThan(20);
      expect(atlas.sampleCounts![name]).toHaveLength(6);
    }
    expect(atlas.metricInfo.retrieval.samples).toBe(atlas.sampleCounts!.retrieval[0][0]);
    expect(atlas.niah!.samples).toBe(8);
    expect(atlas.niah!.depths).toEqual([0, 0.25, 0.5, 0.75, 1]);
    expect(atlas.niah!.accuracy).toBeGreaterThan(0.5);
    expect(progress).toEqual(Array.from({ length: 12 }, (_, i) => i + 1));
    // Streaming hurts the retrieval head's KV head most.
    const harm = atlas.metrics.streamingHarm;
    expect(harm[5][3]).toBe(Math.max(...harm.flat()));
  });

  it('writes and reads back', async () => {
    const { writeAtlas } = await import('../src/atlas/file.js');
    const file = path.join(tmp, 'atlas.json');
    writeAtlas(file, atlas);
    expect(readAtlas(file, model.config).metrics).toEqual(atlas.metrics);
  });

  it('zeroing the top 2 retrieval heads breaks retrieval; 2 random heads do not', async () => {
    const v = await validateAtlas(model, atlas, { k: 2 });
    expect(v.top.heads).toEqual([{ layer: 5, head: 3 }, { layer: 5, head: 1 }]);
    expect(v.base).toBe(atlas.niah!.accuracy);
    expect(v.top.accuracy).toBeLessThanOrEqual(0.125);
    expect(v.random.heads.some((h) => h.layer === 5 && (h.head === 3 || h.head === 1))).toBe(false);
  });
});

describe('NIAH readouts', () => {
  it('teacher-forced readout gives the greedy outcome of token-by-token decoding', async () => {
    const { niahSamples } = await import('../src/eval/niahSet.js');
    const { loadHaystack } = await import('../src/eval/haystack.js');
    const { runNiah } = await import('../src/eval/niahRun.js');
    const { zeroHeads } = await import('../src/runtime/hookSet.js');
    const { NO_HOOKS } = await import('../src/graph/hooks.js');
    const model = await Model.load(DEFAULT_MODEL);
    try {
      const items = niahSamples(model.tokenizer!, loadHaystack(), { contextTokens: [256], depths: [0, 0.5, 1], samples: 9, seed: 5 });
      for (const ablate of [[], [{ layer: 5, head: 1 }]]) {
        const hooks = ablate.length ? { hookOptions: { ...NO_HOOKS, headHooks: true }, hooks: zeroHeads(ablate, 4) } : {};
        const decode = await runNiah(model, items, { ...hooks, readout: 'decode' });
        const forced = await runNiah(model, items, { ...hooks, readout: 'teacherForced' });
        expect(forced.outcomes.map((o) => o.correct)).toEqual(decode.outcomes.map((o) => o.correct));
        expect(decode.accuracy).toBeGreaterThan(0);
      }
    } finally {
      await model.dispose();
    }
  });
});

describe('atlas and niah commands', () => {
  it('atlas writes the atlas, the report and both exports', () => {
    const files = ['a.json', 'a.html', 'duo', 'ret.json'].map((f) => path.join(tmp, f));
    const r = cli(['atlas', '--samples', '3', '--context', '256', '--harm-samples', '1', '--ablation-samples', '0', '--probes', '1', '--pattern-samples', '1',
      '--out', files[0], '--report', files[1], '--export-duo', files[2], '--export-retrieval', files[3]]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/top retrieval heads: L5H3/);
    const atlas = JSON.parse(fs.readFileSync(files[0], 'utf8'));
    expect(atlas.metrics.ablationKl).toBeUndefined();
    expect(fs.readFileSync(files[1], 'utf8')).toMatch(/^<!doctype html>/);
    const tsv = fs.readFileSync(path.join(files[2], 'full_attention_heads.tsv'), 'utf8').trim().split('\n');
    expect(tsv).toHaveLength(6);
    expect(tsv.every((l) => l.split('\t').length === 4)).toBe(true);
    const duo = JSON.parse(fs.readFileSync(path.join(files[2], 'config.json'), 'utf8'));
    expect(duo).toMatchObject({ sink_size: 4, recent_size: 64, threshold: 0.5, sparsity: 1 - 6 / 24 });
    expect(duo.headwise.fullKvHeads).toHaveLength(6);
    expect(Object.keys(JSON.parse(fs.readFileSync(files[3], 'utf8')))[0]).toBe('5-3');
  });

  it('niah --json prints accuracy, KV bytes and the grid; --ablate of the top heads breaks it', () => {
    const base = cli(['niah', '--samples', '4', '--context', '256', '--depths', '0,1', '--json']);
    expect(base.code, base.stderr).toBe(0);
    const out = JSON.parse(base.stdout);
    expect(out).toMatchObject({ samples: 4, grid: { contextTokens: [256], depths: [0, 1], counts: [[2, 2]] } });
    expect(out.accuracy).toBeGreaterThanOrEqual(0.5);
    expect(out.kvBytesFull).toBeGreaterThan(0);
    expect(out.kvBytes).toBeGreaterThanOrEqual(out.kvBytesHeld);
    const ablated = JSON.parse(cli(['niah', '--samples', '4', '--context', '256', '--depths', '0,1', '--ablate', '5:3,5:1', '--json']).stdout);
    expect(ablated.accuracy).toBe(0);
    expect(ablated.interventions.join(' ')).toMatch(/ablate/);
  });

  it('niah --kv streaming keeps fewer KV bytes than full attention', () => {
    const r = cli(['niah', '--samples', '2', '--context', '512', '--kv', 'streaming', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.kv).toMatchObject({ policy: 'streaming', sink: 4, window: 64 });
    expect(out.kvBytesHeld).toBeLessThan(out.kvBytesFull / 4);
  });

  it('niah --kv duo without an atlas ranks KV heads by a quick retrieval atlas', () => {
    const r = cli(['niah', '--samples', '2', '--context', '512', '--kv', 'duo', '--full-heads', '0.25', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.kv).toMatchObject({ policy: 'duo', source: 'computed (16 needle prompts)' });
    expect(out.kv.fullKvHeads[5]).toContain(3);
    expect(out.kvBytesHeld).toBeLessThan(out.kvBytesFull / 2);
  });

  it.each([
    [['atlas', '--samples', '0'], /--samples.*'0' is invalid/],
    [['atlas', '--reference', path.join(tmp, 'nope.json')], /--reference .*nope\.json: cannot read \(ENOENT\)/],
    [['atlas', '--export-duo', 'x', '--duo-metric', 'streamingHarm', '--harm-samples', '0'], /--duo-metric streamingHarm needs streaming harm/],
    [['niah', '--context', '4000'], /--context 4000 leaves no room for the answer in the model's context of 2048 tokens/],
    [['niah', '--depths', '0,2'], /--depths.*expected depths from 0 to 1/],
    [['niah', '--ablate', '9:9'], /--ablate: item 1 "9:9": layer 9 is out of range/],
    [['niah', '--context', 'x'], /--context.*expected positive integers/],
    [['niah', '--kv', 'duo', '--pattern', path.join(tmp, 'no-such-folder')], /no-such-folder: not a DuoAttention pattern folder/],
    [['niah', '--kv', 'headkv', '--head-scores', path.join(tmp, 'nope.json')], /nope\.json: cannot read \(ENOENT\)/],
    [['atlas', '--compare-with', path.join(tmp, 'nope.json')], /nope\.json: cannot read \(ENOENT\)/],
    [['niah', '--kv', 'snapkv', '--kv-budget', '0'], /--kv-budget/],
  ])('%j fails with one clear line', (args, message) => {
    const r = cli(args as string[]);
    expect(r.code).not.toBe(0);
    const lines = r.stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^headwise: error: /);
    expect(lines[0]).toMatch(message as RegExp);
  });
});
