/**
 * The research CLI's JSON as web-app results, on real outputs of `headwise patch|attribute|importance
 * --json` for the bundled ref-llama-7m (testdata/researchCli/, commands in its README): every value lands
 * in the cell of its head (and position), the totals agree with the file, the modes without a view and
 * files of another model are refused by field, and the results format still reads.
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { AttributionResult, ImportanceResult, PatchingResult } from '../patching/format.js';
import { readResultsFile } from './researchCliResults.js';
import { parseResults } from './researchResult.js';

const DIR = path.join(import.meta.dirname, 'testdata', 'researchCli');
const load = <T>(name: string): T => JSON.parse(fs.readFileSync(path.join(DIR, name), 'utf8')) as T;
const SHAPE = { name: 'ref-llama-7m', layers: 6, heads: 4 };

describe('research CLI JSON → results', () => {
  it('patch --mode head: one patch-head grid of the restored shares', () => {
    const raw = load<PatchingResult>('patch-head.json');
    const [r] = readResultsFile(raw, SHAPE);
    if (r.kind !== 'patch-head') throw new Error(r.kind);
    expect(raw.cells).toHaveLength(24);
    for (const c of raw.cells) expect(r.values[c.layer!][c.head!]).toBe(c.restored);
    // The two heads that restore most, as the CLI's table ranks them.
    const top = r.values.flatMap((row, l) => row.map((v, h) => ({ l, h, v: v! }))).sort((a, b) => b.v - a.v).slice(0, 2);
    expect(top.map((t) => `${t.l}:${t.h}`)).toEqual(['5:1', '5:3']);
    expect(r.target).toBe(' mat');
    expect(r.metric).toBe('share of the gap in logit(" mat") − logit(" bed") restored');
    expect(r.prompts?.corrupted).toContain('on the bed.');
    expect(r.note).toContain('position 12 " the"');
    // The converted result is itself a valid result (what the server sends the page).
    expect(parseResults(JSON.parse(JSON.stringify([r])))[0]).toEqual(r);
  });

  it('patch --mode head-pos: layers × heads × the patched positions, with their tokens', () => {
    const raw = load<PatchingResult>('patch-head-pos-diff.json');
    const [r] = readResultsFile(raw, SHAPE);
    if (r.kind !== 'patch-head-pos') throw new Error(r.kind);
    expect(r.positions).toEqual([6, 12]);
    expect(r.tokens).toEqual([' mat', ' the']);
    expect(raw.cells).toHaveLength(48);
    for (const c of raw.cells) expect(r.values[c.layer!][c.head!][raw.positions.indexOf(c.position!)]).toBe(c.restored);
  });

  it('attribute: a DLA grid whose terms add up to the logit difference, and the logit lens at that position', () => {
    const raw = load<AttributionResult>('attribution.json');
    const [dla, lens] = readResultsFile(raw, SHAPE);
    if (dla.kind !== 'dla' || lens.kind !== 'logit-lens') throw new Error(`${dla.kind}, ${lens.kind}`);
    for (const h of raw.heads) expect(dla.values[h.layer][h.head]).toBe(h.attribution);
    const heads = dla.values.flat().reduce<number>((a, v) => a + v!, 0);
    const total = heads + raw.embed + raw.mlp.reduce((a, b) => a + b, 0) + raw.attnBias.reduce((a, b) => a + b, 0) + raw.lmHeadBias;
    expect(total).toBeCloseTo(raw.logitDiff, 4);
    expect(dla.note).toContain(`heads ${heads.toPrecision(3)}`);
    expect(lens.tokens).toEqual([`position ${raw.position}`]);
    expect(lens.prob.map((p) => p[0])).toEqual(raw.logitLens.map((e) => Math.exp(e.answerLogProb)));
    expect(lens.prob.flat().every((p) => p > 0 && p < 1)).toBe(true);
  });

  it('importance: effects with their intervals; heads not ranked are empty cells; KL on a log scale', () => {
    const raw = load<ImportanceResult>('importance.json');
    const [r] = readResultsFile(raw, SHAPE);
    if (r.kind !== 'head-importance') throw new Error(r.kind);
    for (const h of raw.heads) {
      expect(r.values[h.layer][h.head]).toBe(h.effect);
      expect(r.ci[h.layer][h.head]).toEqual(h.ci);
    }
    expect(r.n).toBe(4);
    expect(r.scale).toBe('diverging');
    const kl = load<ImportanceResult>('importance-kl.json');
    const [k] = readResultsFile(kl, SHAPE);
    if (k.kind !== 'head-importance') throw new Error(k.kind);
    expect(k.scale).toBe('log');
    expect(k.unit).toBe('nats');
    expect(k.values.flat().filter((v) => v !== null)).toHaveLength(4);
    expect(k.values[2][2]).toBeNull();
    expect(k.note).toContain('; 20 heads not ranked are blank.');
    expect(k.ci[2][2]).toBeNull();
    expect(k.values[5][1]).toBe(kl.heads.find((h) => h.layer === 5 && h.head === 1)!.effect);
  });

  it('reads an array mixing CLI outputs and results, and the results format alone', () => {
    const mixed = readResultsFile([load('patch-head.json'), load('attribution.json'), { kind: 'dla', values: Array.from({ length: 6 }, () => [0, 1, 2, 3]) }], SHAPE);
    expect(mixed.map((r) => r.kind)).toEqual(['patch-head', 'dla', 'logit-lens', 'dla']);
    expect(readResultsFile({ format: 'headwise-results', version: 1, results: [{ kind: 'dla', values: Array.from({ length: 6 }, () => [0, 1, 2, 3]) }] }, SHAPE)).toHaveLength(1);
  });

  it('refuses, naming the field: modes without a view, another model, broken cells', () => {
    expect(() => readResultsFile(load('patch-attn-out.json'), SHAPE)).toThrow(/^mode: "attn-out" has no view in the web app .*--report/);
    expect(() => readResultsFile(load('patch-head.json'), { ...SHAPE, name: 'other' })).toThrow('model: "ref-llama-7m": computed on another model than the one shown ("other")');
    expect(() => readResultsFile(load('patch-head.json'), { layers: 4, heads: 4 })).toThrow(/^cells\[16\]\.layer: must be an integer from 0 to 3 \(the model has 4 layers/);
    expect(() => readResultsFile(load('attribution.json'), { layers: 6, heads: 8 })).toThrow(/^heads: attribution covers every head, but 0:4, 0:5, 0:6, 0:7, … are missing/);
    const raw = load<PatchingResult>('patch-head.json');
    expect(() => readResultsFile({ ...raw, cells: [...raw.cells, raw.cells[0]] }, SHAPE)).toThrow('cells[24]: head 0:0 appears twice');
    expect(() => readResultsFile([{ ...raw, cells: [{ ...raw.cells[0], restored: 'x' }] }], SHAPE)).toThrow('results[0]: cells[0].restored: must be a finite number or null (got "x")');
    expect(() => readResultsFile({ ...raw, format: 'headwise.patching/2' }, SHAPE)).toThrow(/^format: "headwise.patching\/2" is not one the web app reads/);
    expect(() => readResultsFile({ kind: 'dla', values: [[1, 2]] }, SHAPE)).toThrow('result 0 (dla): is for 1 layers × 2 heads, the model has 6 × 4');
  });
});
