import { describe, expect, it } from 'vitest';
import { gridSampleSeed, niahAccuracy, niahGrid } from './grid.js';
import { loadHaystack } from './haystack.js';
import { exactMatch } from './match.js';
import { refTokenizer } from './testTokenizers.js';

const hay = loadHaystack();
const tok = refTokenizer();

describe('niahGrid', () => {
  const spec = { contextTokens: [256, 512], depths: [0, 0.5, 1], samplesPerCell: 2, seed: 7, needle: { variant: 'passKey' as const } };

  it('gives every (context length × depth) cell, context lengths outermost', () => {
    const cells = niahGrid(tok, hay, spec);
    expect(cells.map((c) => [c.contextTokens, c.depth])).toEqual([
      [256, 0], [256, 0.5], [256, 1],
      [512, 0], [512, 0.5], [512, 1],
    ]);
    for (const c of cells) {
      expect(c.samples).toHaveLength(2);
      for (const s of c.samples) {
        expect(s.contextTokens).toBe(c.contextTokens);
        expect(s.needles[s.target].depth).toBe(c.depth);
        expect(s.inputIds.length).toBeLessThanOrEqual(c.contextTokens);
      }
      expect(c.samples[0].seed).not.toBe(c.samples[1].seed);
    }
  });

  it("a cell's samples do not depend on the rest of the grid", () => {
    const big = niahGrid(tok, hay, spec);
    const one = niahGrid(tok, hay, { ...spec, contextTokens: [512], depths: [0.5] });
    expect(one[0]).toEqual(big[4]);
    expect(one[0].samples[1].seed).toBe(gridSampleSeed(7, 512, 0.5, 1));
  });

  it('passes the variant options through', () => {
    const cells = niahGrid(tok, hay, { ...spec, contextTokens: [512], depths: [0.25], samplesPerCell: 1, needle: { variant: 'multiKey', keyCount: 3 } });
    const s = cells[0].samples[0];
    expect(s.variant).toBe('multiKey');
    expect(s.needles).toHaveLength(3);
    expect(s.needles[s.target].depth).toBe(0.25);
  });

  it('rejects an empty grid or a bad sample count', () => {
    expect(() => niahGrid(tok, hay, { ...spec, depths: [] })).toThrow(/at least one context length and one depth/);
    expect(() => niahGrid(tok, hay, { ...spec, samplesPerCell: 0 })).toThrow(/samplesPerCell must be a positive integer/);
  });
});

describe('niahAccuracy', () => {
  it('tabulates accuracy per cell, per context length, per depth and overall', () => {
    const o = (contextTokens: number, depth: number, correct: boolean) => ({ contextTokens, depth, correct });
    const acc = niahAccuracy([
      o(512, 0, true), o(512, 0, false), o(512, 1, true),
      o(256, 0, true), o(256, 1, false), o(256, 1, false), o(256, 1, true),
    ]);
    expect(acc.contextTokens).toEqual([256, 512]);
    expect(acc.depths).toEqual([0, 1]);
    expect(acc.accuracy).toEqual([[1, 1 / 3], [0.5, 1]]);
    expect(acc.counts).toEqual([[1, 3], [2, 1]]);
    expect(acc.byContext).toEqual([2 / 4, 2 / 3]);
    expect(acc.byDepth).toEqual([2 / 3, 2 / 4]);
    expect(acc.overall).toBe(4 / 7);
  });

  it('is NaN for empty cells and for no outcomes', () => {
    const acc = niahAccuracy([{ contextTokens: 256, depth: 0, correct: true }, { contextTokens: 512, depth: 1, correct: false }]);
    expect(acc.accuracy[0][1]).toBeNaN();
    expect(acc.accuracy[1][0]).toBeNaN();
    expect(niahAccuracy([]).overall).toBeNaN();
  });

  it('scores generated text with exactMatch end to end', () => {
    const cells = niahGrid(tok, hay, { contextTokens: [256], depths: [0.5], samplesPerCell: 2, seed: 1, needle: { variant: 'passKey' } });
    const outcomes = cells.flatMap((c) =>
      c.samples.map((s, i) => ({ contextTokens: c.contextTokens, depth: c.depth, correct: exactMatch(i === 0 ? s.answer : ' 1.', s) })),
    );
    expect(niahAccuracy(outcomes).overall).toBe(0.5);
  });
});
