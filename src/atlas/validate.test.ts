import { describe, expect, it } from 'vitest';
import { randomHeads } from './validate.js';

describe('randomHeads', () => {
  it('draws k distinct heads outside the excluded ones, seeded', () => {
    const top = [{ layer: 6, head: 6 }, { layer: 6, head: 0 }];
    const a = randomHeads(8, 8, 2, 0, top);
    expect(a).toHaveLength(2);
    expect(a).toEqual(randomHeads(8, 8, 2, 0, top));
    expect(new Set(a.map((h) => `${h.layer}:${h.head}`)).size).toBe(2);
    for (let seed = 0; seed < 50; seed++) {
      for (const h of randomHeads(8, 8, 4, seed, top)) expect(top.some((t) => t.layer === h.layer && t.head === h.head)).toBe(false);
    }
    expect(new Set(Array.from({ length: 20 }, (_, s) => JSON.stringify(randomHeads(8, 8, 2, s, top)))).size).toBeGreaterThan(10);
  });
  it('fails when too few heads are left', () => {
    expect(() => randomHeads(1, 2, 2, 0, [{ layer: 0, head: 0 }])).toThrow(/cannot draw 2 random heads: only 1 heads are left/);
  });
});
