import { describe, expect, it } from 'vitest';
import { exactMatch, firstNumber, matchedNeedle } from './match.js';

describe('firstNumber / exactMatch', () => {
  const sample = { value: '4829371' };
  it('accepts the value as the first number of the continuation', () => {
    expect(exactMatch(' 4829371.', sample)).toBe(true);
    expect(exactMatch('4829371, and then 12', sample)).toBe(true);
    expect(exactMatch(' the number 4829371', sample)).toBe(true);
  });
  it('rejects a longer number, a grouped number, another first number and no number', () => {
    expect(exactMatch(' 48293712.', sample)).toBe(false);
    expect(exactMatch(' 4,829,371', sample)).toBe(false);
    expect(exactMatch(' 12 then 4829371', sample)).toBe(false);
    expect(exactMatch(' unknown', sample)).toBe(false);
    expect(firstNumber('none')).toBeNull();
    expect(firstNumber('a 007 b')).toBe('007');
  });
});

describe('matchedNeedle', () => {
  const sample = { needles: [{ value: '111111' }, { value: '222222' }] };
  it('names the needle whose value the model gave, or −1', () => {
    expect(matchedNeedle(' 222222.', sample as never)).toBe(1);
    expect(matchedNeedle(' 111111.', sample as never)).toBe(0);
    expect(matchedNeedle(' 333333.', sample as never)).toBe(-1);
    expect(matchedNeedle(' none', sample as never)).toBe(-1);
  });
});
