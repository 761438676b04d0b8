import { describe, expect, it } from 'vitest';
import { drawKeys, drawValues, KEY_WORDS, VALUE_MAX, VALUE_MIN } from './keyValues.js';
import { Random } from './random.js';

describe('KEY_WORDS', () => {
  it('are distinct lower-case words of 4 to 10 letters', () => {
    for (const w of KEY_WORDS) expect(w).toMatch(/^[a-z]{4,10}$/);
    expect(new Set(KEY_WORDS).size).toBe(KEY_WORDS.length);
    expect(KEY_WORDS.length).toBeGreaterThanOrEqual(100);
  });
});

describe('drawKeys / drawValues', () => {
  it('draw distinct keys, reproducibly', () => {
    const keys = drawKeys(new Random(5), 6);
    expect(new Set(keys).size).toBe(6);
    expect(drawKeys(new Random(5), 6)).toEqual(keys);
    expect(drawKeys(new Random(5), 2, ['alpha', 'bravo']).sort()).toEqual(['alpha', 'bravo']);
    expect(() => drawKeys(new Random(5), 3, ['alpha', 'bravo'])).toThrow(/cannot draw 3 distinct keys from 2 words/);
  });
  it('draw distinct integers in [10000, 9999999] as decimal strings', () => {
    const values = drawValues(new Random(1), 500);
    expect(new Set(values).size).toBe(500);
    for (const v of values) {
      expect(v).toMatch(/^[1-9]\d{4,6}$/);
      expect(Number(v) >= VALUE_MIN && Number(v) <= VALUE_MAX).toBe(true);
    }
    expect(drawValues(new Random(1), 3, 7, 9).sort()).toEqual(['7', '8', '9']);
    expect(() => drawValues(new Random(1), 4, 7, 9)).toThrow(/cannot draw 4 distinct values/);
  });
});
