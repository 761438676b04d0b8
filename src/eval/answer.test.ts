import { describe, expect, it } from 'vitest';
import { answerVerdict, finalVerdict } from './answer.js';
import { exactMatch } from './match.js';

describe('answerVerdict', () => {
  it('settles once the first number is complete', () => {
    expect(answerVerdict(' 4829371.', '4829371')).toBe('correct');
    expect(answerVerdict(' 4829371 is', '4829371')).toBe('correct');
    expect(answerVerdict(' 482937.', '4829371')).toBe('wrong');
    expect(answerVerdict(' the key is 4829371,', '4829371')).toBe('correct');
  });
  it('is open while the digits so far are a prefix of the value, or none came yet', () => {
    expect(answerVerdict(' 48', '4829371')).toBe('open');
    expect(answerVerdict(' 4829371', '4829371')).toBe('open');
    expect(answerVerdict(' the', '4829371')).toBe('open');
    expect(answerVerdict('', '4829371')).toBe('open');
  });
  it('is wrong as soon as the digits leave the value', () => {
    expect(answerVerdict(' 49', '4829371')).toBe('wrong');
    expect(answerVerdict(' 48293710', '4829371')).toBe('wrong');
  });
  it('agrees with exact match on every prefix of a continuation, once settled', () => {
    for (const text of [' 4829371.', ' 48293712', ' no idea', ' 4829371 and 5', ' 48 29']) {
      const final = finalVerdict(text, '4829371');
      expect(final).toBe(exactMatch(text, { value: '4829371' }) ? 'correct' : 'wrong');
      for (let i = 0; i <= text.length; i++) {
        const v = answerVerdict(text.slice(0, i), '4829371');
        if (v !== 'open') expect(v).toBe(final);
      }
    }
  });
});
