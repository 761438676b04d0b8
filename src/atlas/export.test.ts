import { describe, expect, it } from 'vitest';
import { duoAttentionTsv, retrievalHeadJson } from './export.js';
import { testAtlas } from './testAtlas.js';

describe('DuoAttention full_attention_heads.tsv', () => {
  it('has one line per layer and one tab-separated value per KV head (retrieval: max over the group, as is)', () => {
    const tsv = duoAttentionTsv(testAtlas());
    expect(tsv).toBe('0.05\t0.2\n0.9\t0\n');
    const rows = tsv.trim().split('\n').map((l) => l.split('\t').map(Number));
    expect(rows).toHaveLength(2);
    expect(rows.every((r) => r.length === 2 && r.every((v) => v >= 0 && v <= 1))).toBe(true);
  });
  it('scales streaming harm (nats) so the largest KV head is 1', () => {
    expect(duoAttentionTsv(testAtlas(), 'streamingHarm')).toBe('0.01\t0.25\n1\t0\n');
  });
});

describe('Retrieval_Head scores', () => {
  it('is {"L-H": [score]} for every head, best first, NaN as 0', () => {
    const json = JSON.parse(retrievalHeadJson(testAtlas()));
    expect(Object.keys(json).slice(0, 4)).toEqual(['1-0', '0-3', '1-1', '0-1']);
    expect(json['1-0']).toEqual([0.9]);
    expect(json['1-2']).toEqual([0]);
    expect(Object.keys(json)).toHaveLength(8);
  });
  it('names a missing metric', () => {
    expect(() => retrievalHeadJson(testAtlas(), 'induction')).toThrow(/atlas has no metric "induction" \(has: retrieval, sink, streamingHarm\)/);
  });
});
