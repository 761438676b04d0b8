import { describe, expect, it } from 'vitest';
import { loadHaystack } from './haystack.js';
import { depthOf, niahSamples } from './niahSet.js';
import { refTokenizer } from './testTokenizers.js';

const hay = loadHaystack();
const tok = refTokenizer();

describe('niahSamples', () => {
  it('spreads the samples over the depths in contiguous blocks', () => {
    expect(Array.from({ length: 10 }, (_, i) => depthOf(i, 10, [0, 0.5, 1]))).toEqual([0, 0, 0, 0, 0.5, 0.5, 0.5, 1, 1, 1]);
    expect(Array.from({ length: 2 }, (_, i) => depthOf(i, 2, [0, 0.5, 1]))).toEqual([0, 0.5]);
  });
  it('mixes one pass key in three with 4-key prompts alternating the two key/value phrasings', () => {
    const items = niahSamples(tok, hay, { contextTokens: [200], depths: [0, 0.5, 1], samples: 6, seed: 3 });
    expect(items.map((i) => i.sample.variant)).toEqual(['passKey', 'multiKey', 'multiKey', 'passKey', 'multiKey', 'multiKey']);
    expect(items.filter((i) => i.sample.variant === 'multiKey').map((i) => i.sample.template.name)).toEqual(['magic-number', 'secret-code', 'magic-number', 'secret-code']);
    for (const i of items) {
      expect(i.sample.inputIds.length).toBeLessThanOrEqual(200);
      expect(i.sample.needles).toHaveLength(i.sample.variant === 'passKey' ? 1 : 4);
      expect(i.sample.needles[i.sample.target].depth).toBe(i.depth);
    }
  });
  it('is deterministic per (seed, context, depth, index), and honours mix and keyCount', () => {
    const a = niahSamples(tok, hay, { contextTokens: [160, 200], depths: [0.5], samples: 2, seed: 9, mix: 'multiKey', keyCount: 2 });
    const b = niahSamples(tok, hay, { contextTokens: [200], depths: [0.5], samples: 2, seed: 9, mix: 'multiKey', keyCount: 2 });
    expect(a.map((i) => i.contextTokens)).toEqual([160, 160, 200, 200]);
    expect(a.slice(2).map((i) => i.sample.prompt)).toEqual(b.map((i) => i.sample.prompt));
    expect(a.every((i) => i.sample.variant === 'multiKey' && i.sample.needles.length === 2)).toBe(true);
    expect(niahSamples(tok, hay, { contextTokens: [200], depths: [0], samples: 3, seed: 1, mix: 'passKey' }).every((i) => i.sample.variant === 'passKey')).toBe(true);
  });
  it('rejects an empty set', () => {
    expect(() => niahSamples(tok, hay, { contextTokens: [200], depths: [0], samples: 0, seed: 1 })).toThrow(/samples must be a positive integer/);
    expect(() => niahSamples(tok, hay, { contextTokens: [], depths: [0], samples: 1, seed: 1 })).toThrow(/at least one context length/);
  });
});
