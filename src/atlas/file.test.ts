import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { ModelConfig } from '../hf/config.js';
import { atlasJson, kvHeadScores, readAtlas, writeAtlas } from './file.js';
import { testAtlas } from './testAtlas.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'headwise-atlas-file-'));
const config = { numLayers: 2, numHeads: 4, numKvHeads: 2 } as ModelConfig;

describe('atlas file', () => {
  it('round-trips through writeAtlas / readAtlas, NaN as null', () => {
    const file = path.join(tmp, 'a.json');
    const atlas = testAtlas();
    writeAtlas(file, atlas);
    const text = fs.readFileSync(file, 'utf8');
    expect(JSON.parse(text).metrics.retrieval[1][2]).toBeNull();
    const back = readAtlas(file, config);
    expect(back.metrics.retrieval[1][2]).toBeNaN();
    expect(back).toEqual(atlas);
    expect(fs.readdirSync(tmp).filter((f) => f.endsWith('.tmp'))).toEqual([]);
  });
  it('atlasJson writes non-finite numbers as null', () => {
    expect(JSON.parse(atlasJson({ ...testAtlas(), timing: { totalMs: Infinity } })).timing.totalMs).toBeNull();
  });
  it('fails with one clear line on a bad file', () => {
    const bad = (name: string, content: string) => {
      const f = path.join(tmp, name);
      fs.writeFileSync(f, content);
      return f;
    };
    expect(() => readAtlas(path.join(tmp, 'missing.json'))).toThrow(/missing\.json: cannot read \(ENOENT\)/);
    expect(() => readAtlas(bad('x.json', '{'))).toThrow(/not valid JSON/);
    expect(() => readAtlas(bad('y.json', '{"format":"other"}'))).toThrow(/not a headwise atlas/);
    expect(() => readAtlas(bad('z.json', JSON.stringify({ ...testAtlas(), version: 9 })))).toThrow(/atlas version 9 is not supported/);
    expect(() => readAtlas(bad('t.json', JSON.stringify({ ...testAtlas(), metrics: { retrieval: [[0, 'a']] } })))).toThrow(/metrics\.retrieval is not a \[layer\]\[head\] table/);
    const f = path.join(tmp, 'ok.json');
    writeAtlas(f, testAtlas());
    expect(() => readAtlas(f, { numLayers: 3, numHeads: 4, numKvHeads: 2 } as ModelConfig)).toThrow(/atlas is for a model of 2×4 heads \(2 KV\), this model has 3×4 \(2 KV\)/);
  });
  it('kvHeadScores folds query heads by the max over each GQA group and keeps KV-head metrics', () => {
    const a = testAtlas();
    expect(kvHeadScores(a, 'retrieval', config)).toEqual([[0.05, 0.2], [0.9, 0]]);
    expect(kvHeadScores(a, 'streamingHarm', config)).toEqual([[0.02, 0.5], [2.0, 0.0]]);
  });
});
