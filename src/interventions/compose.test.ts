import { describe as group, expect, it } from 'vitest';
import { combine, describe, describeHeads, removeIntervention, specToJson } from './compose.js';
import { SpecError, parseInterventionSpec } from './spec.js';

const model = { numLayers: 6, numHeads: 4, headDim: 2 };
const a = parseInterventionSpec({ version: 1, note: 'top-2', interventions: [{ op: 'ablate', heads: ['4:1', '5:3'] }] }, model);
const b = parseInterventionSpec(
  [
    { op: 'pasta', heads: ['2:*'], params: { spans: [{ text: 'Mary is a doctor.' }, { tokens: [3, 5] }] } },
    { op: 'act', heads: ['1:0', '1:2', '0:3'], note: 'calibrate' },
    { op: 'act', heads: ['5:0'], params: { minQueries: 4 } },
    { op: 'steer', heads: ['3:1'], params: { alpha: 2, vector: [3, 4] } },
    { op: 'scale', heads: '0:0', params: { factor: 0.5 } },
    { op: 'ablate', heads: ['1:1'], params: { mode: 'mean' } },
  ],
  model,
);

group('combine / removeIntervention', () => {
  it('concatenates in order, keeps notes, and leaves inputs alone', () => {
    const c = combine(a, b);
    expect(c.interventions.map((iv) => iv.op)).toEqual(['ablate', 'pasta', 'act', 'act', 'steer', 'scale', 'ablate']);
    expect(c.note).toBe('top-2');
    expect(a.interventions).toHaveLength(1);
    expect(Object.isFrozen(c.interventions)).toBe(true);
    expect(combine().interventions).toEqual([]);
  });

  it('removes by index without touching the input', () => {
    const c = combine(a, b);
    const d = removeIntervention(c, 1);
    expect(d.interventions.map((iv) => iv.op)).toEqual(['ablate', 'act', 'act', 'steer', 'scale', 'ablate']);
    expect(c.interventions).toHaveLength(7);
    expect(() => removeIntervention(a, 1)).toThrow(SpecError);
    expect(() => removeIntervention(a, 1)).toThrow('index: 1 is out of range (spec has 1 intervention)');
  });
});

group('describe', () => {
  it('gives one line per intervention', () => {
    expect(describe(combine(a, b)).split('\n')).toEqual([
      '[0] ablate (zero) 4:1, 5:3',
      '[1] pasta α=0.01 on text "Mary is a doctor.", tokens [3, 5) — 2:{0-3}',
      '[2] act τ=0.1 β=0.4 0:3, 1:{0,2}  # calibrate',
      '[3] act τ=0.1 β=0.4 minQueries=4 5:0',
      '[4] steer +2·v (|v|=5, 2 dims) 3:1',
      '[5] scale ×0.5 0:0',
      '[6] ablate (mean) 1:1',
    ]);
    expect(describe(combine())).toBe('(no interventions)');
  });

  it('compresses head runs', () => {
    const heads = [0, 1, 2, 5, 7, 8].map((head) => ({ layer: 2, head }));
    expect(describeHeads(heads)).toBe('2:{0-2,5,7,8}');
  });
});

group('specToJson', () => {
  it('writes heads as "L:H" and parses back to an equal spec', () => {
    const both = combine(a, b);
    const text = specToJson(both);
    expect(text).toContain('"4:1"');
    expect(parseInterventionSpec(text, model)).toEqual(both);
  });
});
