import { describe, expect, it } from 'vitest';
import { argmax, copiesAt, copiesToken, RetrievalAccumulator, retrievalStep } from './retrieval.js';
import { attentionFromRows } from './rows.js';

//           pos:  0   1   2   3   4   5   6
const tokens = [0, 11, 12, 13, 14, 15, 16];
const needle = { start: 2, end: 5 }; // tokens 12, 13, 14

describe('argmax', () => {
  it('breaks ties toward the earliest key', () => {
    expect(argmax([0.2, 0.4, 0.4])).toBe(1);
  });
  it('throws on an empty row', () => {
    expect(() => argmax([])).toThrow(/empty attention row/);
  });
});

describe('copiesToken', () => {
  it('copies when the top key is in the needle and holds the emitted token', () => {
    expect(copiesToken([0.1, 0.1, 0.1, 0.6, 0.05, 0.05, 0], needle, tokens, 13)).toBe(true);
  });
  it('does not copy when the top key holds another token', () => {
    expect(copiesToken([0.1, 0.1, 0.1, 0.6, 0.05, 0.05, 0], needle, tokens, 14)).toBe(false);
  });
  it('does not copy when the top key is outside the needle, even with the right token', () => {
    expect(copiesToken([0.1, 0.1, 0.1, 0.1, 0.05, 0.55, 0], needle, tokens, 15)).toBe(false);
    expect(copiesToken([0.1, 0.1, 0.1, 0.1, 0.05, 0.55, 0], { start: 2, end: 6 }, tokens, 15)).toBe(true);
  });
  it('treats the span end as exclusive', () => {
    const row = [0, 0, 0, 0, 0, 1, 0];
    expect(copiesToken(row, { start: 2, end: 5 }, tokens, 15)).toBe(false);
    expect(copiesToken(row, { start: 5, end: 6 }, tokens, 15)).toBe(true);
  });
  it('throws on an empty span, a span outside the row, and too few tokens', () => {
    const row = [0, 0, 1];
    expect(() => copiesToken(row, { start: 2, end: 2 }, tokens, 12)).toThrow(/needle span \[2, 2\) is empty/);
    expect(() => copiesToken(row, { start: 1, end: 4 }, tokens, 12)).toThrow(/outside the 3 keys/);
    expect(() => copiesToken(row, { start: 0, end: 1 }, [0, 11], 12)).toThrow(/2 given/);
  });
});

describe('copiesAt', () => {
  it('reads the row of an absolute query position in a window (rowOffset > 0)', () => {
    // Rows are queries 5 and 6 of a 7-token sequence; query 6 looks at key 3 (token 13).
    const a = attentionFromRows(
      [
        [0.5, 0, 0, 0, 0, 0.5],
        [0.1, 0, 0, 0.8, 0, 0, 0.1],
      ],
      5,
    );
    expect(copiesAt(a, 6, needle, tokens, 13)).toBe(true);
    expect(copiesAt(a, 5, needle, tokens, 11)).toBe(false); // ties 0 and 5: key 0, outside the needle
    expect(() => copiesAt(a, 4, needle, tokens, 13)).toThrow(/not in the rows present/);
  });
});

describe('retrievalStep', () => {
  it('scores every head of every layer at one answer step and feeds the accumulator', () => {
    const look = (k: number) => {
      const row = new Array<number>(7).fill(0.05);
      row[k] = 0.7;
      return attentionFromRows([row], 6);
    };
    // Layer 0: heads look at keys 3 and 0; layer 1: keys 4 and 3. Query 6 emits token 13 (key 3).
    const copied = retrievalStep([[look(3), look(0)], [look(4), look(3)]], 6, needle, tokens, 13);
    expect(copied).toEqual([[true, false], [false, true]]);
    const acc = new RetrievalAccumulator(2, 2);
    acc.addStep(copied);
    acc.endPrompt();
    expect(acc.scores().mean).toEqual([[1, 0], [0, 1]]);
  });
});

describe('RetrievalAccumulator', () => {
  // One layer, two heads. Prompt A: 2 answer steps, head 0 copies both, head 1 none.
  // Prompt B: 4 answer steps, head 0 copies 1, head 1 copies 4. Prompt C: nothing scored.
  function fill(acc: RetrievalAccumulator): void {
    acc.addStep([[true, false]]);
    acc.addStep([[true, false]]);
    acc.endPrompt();
    acc.addPrompt([[1, 4]], 4);
    acc.endPrompt();
  }

  it("'prompt' averaging: mean of per-prompt copy rates, prompts without scored steps skipped", () => {
    const acc = new RetrievalAccumulator(1, 2, 'prompt');
    fill(acc);
    const s = acc.scores();
    expect(s.mean[0][0]).toBeCloseTo((1 + 0.25) / 2, 12);
    expect(s.mean[0][1]).toBeCloseTo((0 + 1) / 2, 12);
    expect(s.samples).toEqual([[2, 2]]);
    expect(acc.prompts).toBe(2);
    expect(acc.answerTokens).toBe(6);
    expect(acc.score({ layer: 0, head: 0 })).toBeCloseTo(0.625, 12);
  });

  it("'pooled' averaging (the default, as in the reference analysis): total copies over total answer tokens", () => {
    const acc = new RetrievalAccumulator(1, 2);
    fill(acc);
    const s = acc.scores();
    expect(s.mean[0][0]).toBeCloseTo(3 / 6, 12);
    expect(s.mean[0][1]).toBeCloseTo(4 / 6, 12);
    expect(s.samples).toEqual([[6, 6]]);
  });

  it('gives NaN with zero samples before anything is scored, on both paths', () => {
    for (const averaging of ['prompt', 'pooled'] as const) {
      const acc = new RetrievalAccumulator(1, 1, averaging);
      acc.endPrompt();
      expect(acc.scores().mean[0][0]).toBeNaN();
      expect(acc.scores().samples[0][0]).toBe(0);
    }
  });

  it('rejects malformed counts', () => {
    const acc = new RetrievalAccumulator(1, 2);
    expect(() => acc.addPrompt([[3, 0]], 2)).toThrow(/copies of head 0\.0 = 3 is not in 0\.\.2/);
    expect(() => acc.addStep([[true]])).toThrow(/layer 0 has 1 heads, expected 2/);
    acc.addStep([[true, true]]);
    expect(() => acc.addPrompt([[0, 0]], 1)).toThrow(/middle of a prompt/);
  });
});
