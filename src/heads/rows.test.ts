import { describe, expect, it } from 'vitest';
import { HeadwiseError } from '../errors.js';
import { attentionFromRows, checkAttention, checkTokens, queryPositions, rowAt } from './rows.js';

describe('attentionFromRows', () => {
  it('pads a lower triangle to a square', () => {
    const a = attentionFromRows([[1], [0.25, 0.75]]);
    expect(a).toMatchObject({ rows: 2, cols: 2, rowOffset: 0 });
    expect(Array.from(a.data)).toEqual([1, 0, 0.25, 0.75]);
  });

  it('keeps absolute positions for a window', () => {
    const a = attentionFromRows([[0.5, 0, 0.5], [0, 0, 0.5, 0.5]], 2);
    expect(a.cols).toBe(4);
    expect(queryPositions(a)).toEqual([2, 3]);
    expect(Array.from(rowAt(a, 3))).toEqual([0, 0, 0.5, 0.5]);
    expect(() => rowAt(a, 1)).toThrow(/not in the rows present \(2\.\.3\)/);
  });
});

describe('checkAttention', () => {
  it('accepts a well-formed window and an empty matrix', () => {
    expect(() => checkAttention(attentionFromRows([[0, 1, 0]], 2))).not.toThrow();
    expect(() => checkAttention({ rows: 0, cols: 0, rowOffset: 0, data: new Float32Array(0) })).not.toThrow();
  });

  it('rejects a data length that does not match rows × cols', () => {
    expect(() => checkAttention({ rows: 2, cols: 2, rowOffset: 0, data: new Float32Array(3) })).toThrow(HeadwiseError);
    expect(() => checkAttention({ rows: 2, cols: 2, rowOffset: 0, data: new Float32Array(3) })).toThrow(/3 values, expected rows × cols = 2 × 2/);
  });

  it('rejects query rows past the last key', () => {
    expect(() => checkAttention({ rows: 2, cols: 2, rowOffset: 1, data: new Float32Array(4) })).toThrow(/only 2 columns/);
  });

  it('rejects a negative row offset', () => {
    expect(() => checkAttention({ rows: 1, cols: 2, rowOffset: -1, data: new Float32Array(2) })).toThrow(/rowOffset/);
  });

  it('checkTokens wants one id per key', () => {
    const a = attentionFromRows([[1], [0, 1], [0, 0, 1]]);
    expect(() => checkTokens(a, [1, 2])).toThrow(/2 given, the attention matrix has 3 key positions/);
    expect(() => checkTokens(a, [1, 2, 3])).not.toThrow();
  });
});
