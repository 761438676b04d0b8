/** The research-results format: every kind parses, and bad files fail with the field named. */
import { describe, expect, it } from 'vitest';
import { parseResults, resultShape } from './researchResult.js';

describe('research results', () => {
  it('parses each kind, bare, as an array and in the envelope', () => {
    const patch = { kind: 'patch-head', values: [[0.1, -0.2], [0.9, 0]], metric: 'logit difference restored' };
    const pos = { kind: 'patch-head-pos', values: [[[0, 1, 0], [0, 0, 0]], [[1, 0, 0.5], [0, 0, 0]]], tokens: ['a', 'b', 'c'] };
    const dla = { kind: 'dla', values: [[1.5, -0.3]], target: ' 7' };
    const lens = { kind: 'logit-lens', tokens: ['x', 'y'], prob: [[0.1, 0.2], [0.3, 0.9]], top: [['a', 'b'], ['c', 'd']] };
    expect(parseResults(patch)).toHaveLength(1);
    expect(parseResults([patch, pos, dla, lens]).map((r) => r.kind)).toEqual(['patch-head', 'patch-head-pos', 'dla', 'logit-lens']);
    expect(parseResults({ format: 'headwise-results', version: 1, results: [lens] })[0].kind).toBe('logit-lens');
    expect(resultShape(parseResults(pos)[0])).toEqual({ layers: 2, heads: 2 });
    expect(resultShape(parseResults(lens)[0])).toEqual({ layers: 2, heads: null });
    const importance = { kind: 'head-importance', values: [[0.5, null]], ci: [[[0.1, 0.9], null]], scale: 'log' };
    expect(resultShape(parseResults(importance)[0])).toEqual({ layers: 1, heads: 2 });
  });

  it('names the field that is wrong', () => {
    expect(() => parseResults({ kind: 'patching' })).toThrow(/^result\.kind: must be one of patch-head/);
    expect(() => parseResults([{ kind: 'dla', values: [[1, 2], [3]] }])).toThrow('results[0].values[1]: has 1 entries, results[0].values[0] has 2');
    expect(() => parseResults({ kind: 'dla', values: [[1, 'x']] })).toThrow('result.values[0][1]: must be a finite number or null');
    expect(() => parseResults({ kind: 'patch-head-pos', values: [[[1, 2]]], tokens: ['a'] })).toThrow('result.tokens: has 1 tokens, values has 2 positions');
    expect(() => parseResults({ format: 'other', results: [] })).toThrow(/^format:/);
    expect(() => parseResults({ kind: 'head-importance', values: [[1, null]], ci: [[[0, 2]]] })).toThrow('result.ci[0]: must have one entry per head, like values[0] (2)');
    expect(() => parseResults({ kind: 'head-importance', values: [[1]], ci: [[[2, 0]]] })).toThrow('result.ci[0][0]: must be [lo, hi] with lo ≤ hi, or null (got [2,0])');
    expect(() => parseResults({ kind: 'head-importance', values: [[1]], ci: [[null]], scale: 'linear' })).toThrow('result.scale: must be "diverging" or "log"');
    expect(() => parseResults({ kind: 'patch-head-pos', values: [[[1, 2]]], tokens: ['a', 'b'], positions: [3] })).toThrow('result.positions: must be 2 prompt positions');
  });
});
