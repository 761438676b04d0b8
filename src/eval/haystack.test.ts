import fs from 'node:fs';
import { describe, expect, it } from 'vitest';
import { DEFAULT_HAYSTACK_PATH, haystackWindow, insertionPoint, loadHaystack, sentenceBoundaries } from './haystack.js';
import { Random } from './random.js';

describe('loadHaystack', () => {
  it('loads the bundled KJV text from data/', () => {
    expect(DEFAULT_HAYSTACK_PATH.endsWith('data/kjv.txt')).toBe(true);
    const text = loadHaystack();
    expect(text.length).toBe(4298239);
    expect(text).toContain('In the beginning God created the heaven and the earth.');
  });
  it('says which file it could not read, and rejects an empty one', () => {
    expect(() => loadHaystack('/nonexistent/hay.txt')).toThrow(/\/nonexistent\/hay\.txt: cannot read haystack/);
    const empty = fs.mkdtempSync('/tmp/hay-') + '/empty.txt';
    fs.writeFileSync(empty, '  \n');
    expect(() => loadHaystack(empty)).toThrow(/the haystack is empty/);
  });
});

describe('haystackWindow', () => {
  const hay = Array.from({ length: 50 }, (_, i) => `  ${i} Line number ${i} of the text.`).join('\n');
  it('starts at a line start, without leading whitespace, reproducibly', () => {
    const w = haystackWindow(hay, new Random(4), 100);
    expect(w).toMatch(/^\d+ Line number \d+ of the text\./);
    expect(haystackWindow(hay, new Random(4), 100)).toBe(w);
    expect(w.length).toBeLessThanOrEqual(100);
    expect(w.length).toBeGreaterThan(90);
  });
  it('wraps around at the end but never repeats text', () => {
    for (let seed = 0; seed < 20; seed++) {
      const w = haystackWindow(hay, new Random(seed), 10 * hay.length);
      for (let i = 0; i < 50; i++) expect(w.split(`Line number ${i} `).length - 1).toBe(1);
    }
  });
});

describe('insertion points', () => {
  const text = 'One two. Three four! Five six? Seven eight';
  it('sentence boundaries are 0, the end, and after . ! ? before whitespace', () => {
    expect(sentenceBoundaries(text)).toEqual([0, 8, 20, 30, text.length]);
    expect(sentenceBoundaries('No end.')).toEqual([0, 7]);
  });
  it('depth 0 and 1 are the start and the end; others snap to the nearest sentence end', () => {
    expect(insertionPoint(text, 0)).toBe(0);
    expect(insertionPoint(text, 1)).toBe(text.length);
    expect(insertionPoint(text, 0.5)).toBe(20); // target 21
    expect(insertionPoint(text, 0.3)).toBe(8); // target 13
  });
  it('falls back to a gap between words when no sentence end is near', () => {
    const long = 'word '.repeat(200).trim();
    expect(insertionPoint(long, 0.5, 10)).toBe(499); // after "word" nearest to 499.5 → 499
    expect(long[499 - 1]).not.toMatch(/\s/);
    expect(long[499]).toMatch(/\s/);
  });
  it('rejects a depth outside [0, 1]', () => {
    expect(() => insertionPoint(text, 1.2)).toThrow(/depth 1\.2 is outside \[0, 1\]/);
  });
});
