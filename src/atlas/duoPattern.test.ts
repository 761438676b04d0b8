/**
 * DuoAttention pattern folders and head score files: what DuoAttention's binarisation keeps of an
 * exported folder (its thresholding, noise included, re-stated here on the written numbers), the
 * read-back, and one clear line for each malformed input.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { duoFullHeads, quantile, readDuoPattern, writeDuoPattern } from './duoPattern.js';
import { foldToKvHeads, parseHeadScores } from './headScores.js';
import { compareHeadScores } from './compare.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'headwise-duo-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

function folder(name: string, tsv: string | null, config: unknown): string {
  const dir = path.join(tmp, name);
  fs.mkdirSync(dir, { recursive: true });
  if (tsv !== null) fs.writeFileSync(path.join(dir, 'full_attention_heads.tsv'), tsv);
  if (config !== null) fs.writeFileSync(path.join(dir, 'config.json'), typeof config === 'string' ? config : JSON.stringify(config));
  return dir;
}

describe('DuoAttention pattern folders', () => {
  const L = 4;
  const G = 3;
  const scores = [[0.9, 0, 0], [0, 0, 0.2], [0, 0, 0], [0.1, 0.5, 0]];
  const full = new Set(['0:0', '3:1', '2:2']); // 2:2 scores 0: ties are headwise's to break, the gates must follow the set

  it('an exported folder binarises to exactly headwise\'s heads under DuoAttention\'s threshold and sparsity (with its noise)', () => {
    const dir = path.join(tmp, 'export');
    writeDuoPattern(dir, { full, scores, layers: L, kvHeads: G, sink: 4, recent: 64, provenance: { tool: 'headwise' } });
    const p = readDuoPattern(dir, L, G);
    expect(p).toMatchObject({ sinkSize: 4, recentSize: 64, threshold: 0.5, sparsity: 1 - 3 / 12 });
    const cfg = JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8'));
    expect(cfg.headwise.fullKvHeads).toEqual(['0:0', '2:2', '3:1']);
    expect(duoFullHeads(p.gates, { sparsity: p.sparsity })).toEqual(full);
    expect(duoFullHeads(p.gates, { threshold: p.threshold })).toEqual(full);
    // DuoAttention adds U(0, 1e-6) noise before the quantile: the result does not move
    for (let seed = 1; seed <= 20; seed++) {
      let a = seed;
      const noisy = p.gates.map((row) => row.map((v) => v + ((a = (a * 16807) % 2147483647) / 2147483647) * 1e-6));
      const t = quantile(noisy.flat(), p.sparsity!);
      const kept = new Set(noisy.flatMap((row, l) => row.flatMap((v, g) => (v >= t ? [`${l}:${g}`] : []))));
      expect(kept).toEqual(full);
    }
    // no head / every head full
    for (const set of [new Set<string>(), new Set(Array.from({ length: L * G }, (_, i) => `${Math.floor(i / G)}:${i % G}`))]) {
      writeDuoPattern(dir, { full: set, scores, layers: L, kvHeads: G, sink: 4, recent: 64, provenance: {} });
      expect(duoFullHeads(readDuoPattern(dir, L, G).gates, { sparsity: 1 - set.size / (L * G) })).toEqual(set);
    }
  });

  it('DuoAttention semantics: gates clipped to [0, 1], sparsity wins over threshold, the quantile interpolates like numpy', () => {
    const dir = folder('published', '1.5\t0\t0.6\n0.2\t-1\t0.7\n0\t0\t0\n0.4\t0.3\t0.9\n', { sink_size: 128, recent_size: 256, threshold: 0.5, sparsity: null });
    const p = readDuoPattern(dir, L, G);
    expect(p.gates[0][0]).toBe(1);
    expect(p.gates[1][1]).toBe(0);
    expect([...duoFullHeads(p.gates, p)].sort()).toEqual(['0:0', '0:2', '1:2', '3:2']);
    expect(quantile([0, 1, 2, 3], 0.5)).toBe(1.5);
    expect([...duoFullHeads(p.gates, { threshold: 0.5, sparsity: 0.75 })].sort()).toEqual(['0:0', '1:2', '3:2']);
    expect(duoFullHeads(p.gates, { sparsity: 1 }).size).toBe(0);
    expect(duoFullHeads(p.gates, { sparsity: 0 }).size).toBe(12);
  });

  it('malformed folders: one line naming the file and what is wrong', () => {
    const ok = '0\t0\t0\n'.repeat(4);
    const cfg = { sink_size: 4, recent_size: 64 };
    const cases: [string, string | null, unknown, RegExp][] = [
      ['no-tsv', null, cfg, /has no full_attention_heads\.tsv/],
      ['no-config', ok, null, /has no config\.json/],
      ['rows', '0\t0\t0\n'.repeat(3), cfg, /3 rows, the model has 4 layers/],
      ['cols', ok.replace(/^0\t0\t0/, '0\t0'), cfg, /row 1 has 2 values, the model has 3 KV heads/],
      ['nan', ok.replace(/^0\t0\t0/, '0\tx\t0'), cfg, /row 1, column 2: "x" is not a number/],
      ['json', ok, '{sink', /config\.json: not valid JSON/],
      ['sink', ok, { recent_size: 64 }, /sink_size must be a non-negative integer \(got undefined\)/],
      ['recent', ok, { sink_size: 4, recent_size: 'many' }, /recent_size must be a non-negative integer/],
      ['sparsity', ok, { ...cfg, sparsity: 'half' }, /sparsity must be a number or null/],
    ];
    for (const [name, tsv, config, message] of cases) {
      const dir = folder(name, tsv, config);
      expect(() => readDuoPattern(dir, L, G), name).toThrow(message);
      try {
        readDuoPattern(dir, L, G);
      } catch (e) {
        expect((e as Error).message.split('\n')).toHaveLength(1);
      }
    }
    expect(() => readDuoPattern(path.join(tmp, 'absent'), L, G)).toThrow(/not a DuoAttention pattern folder/);
    expect(() => duoFullHeads([[0]], {})).toThrow(/neither a threshold nor a sparsity/);
  });
});

describe('Retrieval_Head / HeadKV score files', () => {
  it('reads the mean of each list per query head and folds to KV heads by the max', () => {
    const text = JSON.stringify({ '0-0': [1, 0, 0.5], '0-1': [0], '1-0': [0.2, 0.4], '1-1': [0.9] });
    const t = parseHeadScores(text, 'f.json', 2, 2);
    expect(t).toEqual([[0.5, 0], [0.30000000000000004, 0.9]]);
    expect(foldToKvHeads(t, 1)).toEqual([[0.5], [0.9]]);
  });

  it('malformed files: one line each', () => {
    const cases: [string, RegExp][] = [
      ['{', /f\.json: not valid JSON/],
      ['[1, 2]', /expected an object/],
      [JSON.stringify({ 'L0H0': [1] }), /key "L0H0" is not "layer-head"/],
      [JSON.stringify({ '0-0': [1], '0-1': ['x'], '1-0': [1], '1-1': [1] }), /head 0-1 must be a non-empty list of numbers/],
      [JSON.stringify({ '0-0': [], '0-1': [1], '1-0': [1], '1-1': [1] }), /head 0-0 must be a non-empty list/],
      [JSON.stringify({ '0-0': [1], '0-1': [1], '1-0': [1] }), /1 of 4 heads missing \(first: 1-1\)/],
      [JSON.stringify({ '0-0': [1], '0-1': [1], '1-0': [1], '1-1': [1], '2-0': [1] }), /head 2-0 is outside the model \(2 layers × 2 heads\)/],
    ];
    for (const [text, message] of cases) expect(() => parseHeadScores(text, 'f.json', 2, 2)).toThrow(message);
  });

  it('compares with an atlas: Spearman and top-k overlap', () => {
    const ours = [[0.9, 0.1], [0.5, 0]];
    const c = compareHeadScores(ours, [[0.8, 0.2], [0.6, 0.1]], 2);
    expect(c.spearman).toBeCloseTo(1, 12);
    expect(c.topK).toEqual({ k: 2, overlap: 2, ours: ['0-0', '1-0'], theirs: ['0-0', '1-0'] });
    expect(compareHeadScores(ours, [[0, 0.2], [0.1, 0.9]], 1).topK.overlap).toBe(0);
    expect(() => compareHeadScores(ours, [[1]], 1)).toThrow(/the atlas has 2 × 2 heads, the file 1 × 1/);
  });
});
