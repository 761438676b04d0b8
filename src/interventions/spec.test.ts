import { readFileSync } from 'node:fs';
import { describe as group, expect, it } from 'vitest';
import { HeadwiseError } from '../errors.js';
import { SpecError, parseHeadList, parseInterventionSpec } from './spec.js';

const model = { numLayers: 8, numHeads: 4, headDim: 3 };
const refLlama = { numLayers: 6, numHeads: 4, headDim: 64 };

/** Asserts a SpecError whose path is `path`, whose message starts with it, and contains `fragment`. */
function expectSpecError(f: () => unknown, path: string, fragment: string): void {
  const err = catchError(f);
  expect(err).toBeInstanceOf(SpecError);
  expect((err as SpecError).path).toBe(path);
  expect((err as SpecError).message).toMatch(new RegExp(`^${escape(path)}: `));
  expect((err as SpecError).message).toContain(fragment);
}
function catchError(f: () => unknown): unknown {
  try {
    f();
  } catch (e) {
    return e;
  }
  return undefined;
}
const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

const one = (iv: unknown) => ({ version: 1, interventions: [iv] });

group('parseInterventionSpec: accepted forms', () => {
  it('fills defaults and normalises heads', () => {
    const spec = parseInterventionSpec(
      {
        version: 1,
        interventions: [
          { op: 'ablate', heads: ['6:1', { layer: 2, head: 3 }] },
          { op: 'scale', heads: '1:0, 1:2', params: { factor: 0.5 } },
          { op: 'pasta', heads: ['0:0'], params: { spans: [{ text: 'x' }, { chars: [1, 3] }, { tokens: [0, 2] }] } },
          { op: 'act', heads: ['7:3'] },
          { op: 'steer', heads: ['3:2'], params: { alpha: 2, vector: [1, 0, -1] }, note: 'why' },
        ],
      },
      model,
    );
    expect(spec.interventions.map((iv) => iv.op)).toEqual(['ablate', 'scale', 'pasta', 'act', 'steer']);
    expect(spec.interventions[0].heads).toEqual([{ layer: 6, head: 1 }, { layer: 2, head: 3 }]);
    expect(spec.interventions[0].params).toEqual({ mode: 'zero' });
    expect(spec.interventions[1].heads).toEqual([{ layer: 1, head: 0 }, { layer: 1, head: 2 }]);
    expect(spec.interventions[2].params).toEqual({
      alpha: 0.01,
      spans: [{ text: 'x', occurrence: 0 }, { chars: [1, 3] }, { tokens: [0, 2] }],
    });
    expect(spec.interventions[3].params).toEqual({ tau: 0.1, beta: 0.4, minQueries: 1 });
    expect(spec.interventions[4].note).toBe('why');
  });

  it('accepts a bare array and a JSON string', () => {
    const a = parseInterventionSpec([{ op: 'ablate', heads: ['1:1'], params: { mode: 'mean' } }], model);
    const b = parseInterventionSpec('{"version":1,"interventions":[{"op":"ablate","heads":["1:1"],"params":{"mode":"mean"}}]}', model);
    expect(a).toEqual(b);
    expect(a.version).toBe(1);
  });

  it('expands "*" for all heads of a layer, all layers of a head, and dedupes', () => {
    const spec = parseInterventionSpec(one({ op: 'ablate', heads: ['2:*', '2:1', { layer: '*', head: 0 }] }), model);
    const heads = spec.interventions[0].heads.map((h) => `${h.layer}:${h.head}`);
    expect(heads).toEqual(['2:0', '2:1', '2:2', '2:3', '0:0', '1:0', '3:0', '4:0', '5:0', '6:0', '7:0']);
  });

  it('is frozen and round-trips through JSON', () => {
    const spec = parseInterventionSpec(one({ op: 'steer', heads: ['3:2'], params: { alpha: 2, vector: [1, 0, -1] } }), model);
    expect(Object.isFrozen(spec)).toBe(true);
    expect(Object.isFrozen(spec.interventions[0].heads[0])).toBe(true);
    expect(Object.isFrozen((spec.interventions[0].params as { vector: readonly number[] }).vector)).toBe(true);
    expect(parseInterventionSpec(JSON.stringify(spec), model)).toEqual(spec);
  });

  it('does not keep references to the input', () => {
    const input = one({ op: 'scale', heads: ['1:1'], params: { factor: 2 } });
    const spec = parseInterventionSpec(input, model);
    (input.interventions[0] as { params: { factor: number } }).params.factor = 3;
    expect(spec.interventions[0].params).toEqual({ factor: 2 });
  });

  it('parses the example files against ref-llama-7m', () => {
    const ablate = parseInterventionSpec(readFileSync(new URL('./examples/ablate-top2.json', import.meta.url), 'utf8'), refLlama);
    expect(ablate.interventions[0].heads).toEqual([{ layer: 4, head: 1 }, { layer: 5, head: 3 }]);
    const pasta = parseInterventionSpec(readFileSync(new URL('./examples/pasta.json', import.meta.url), 'utf8'), refLlama);
    expect(pasta.interventions[0].heads).toHaveLength(5);
  });
});

group('parseInterventionSpec: errors name the field', () => {
  const cases: [string, unknown, string, string][] = [
    ['not JSON', '{"version": 1,', 'spec', 'not valid JSON'],
    ['not an object', 42, 'spec', 'got 42'],
    ['wrong version', { version: 2, interventions: [] }, 'version', 'unsupported version 2'],
    ['missing interventions', { version: 1 }, 'interventions', 'missing'],
    ['interventions not an array', { version: 1, interventions: {} }, 'interventions', 'must be an array'],
    ['unknown top-level field', { version: 1, interventions: [], interventoins: [] }, 'interventoins', 'did you mean "interventions"'],
    ['intervention not an object', { version: 1, interventions: ['ablate'] }, 'interventions[0]', 'must be an object'],
    ['missing op', one({ heads: ['1:1'] }), 'interventions[0].op', 'missing'],
    ['unknown op', one({ op: 'ablat', heads: ['1:1'] }), 'interventions[0].op', 'unknown op "ablat" (expected one of ablate, scale, pasta, act, steer); did you mean "ablate"?'],
    ['op not a string', one({ op: 3, heads: ['1:1'] }), 'interventions[0].op', 'unknown op 3'],
    ['unknown intervention field', one({ op: 'act', heads: ['1:1'], parms: {} }), 'interventions[0].parms', 'did you mean "params"'],
    ['missing heads', one({ op: 'act' }), 'interventions[0].heads', 'missing'],
    ['heads not an array', one({ op: 'act', heads: 3 }), 'interventions[0].heads', 'must be an array'],
    ['empty heads', one({ op: 'act', heads: [] }), 'interventions[0].heads', 'at least one head'],
    ['head not parseable', one({ op: 'act', heads: ['1:1', '6-1'] }), 'interventions[0].heads[1]', '"6-1" is not a head'],
    ['head item wrong type', one({ op: 'act', heads: [7] }), 'interventions[0].heads[0]', 'must be "L:H" or {layer, head}'],
    ['layer out of range', one({ op: 'act', heads: [{ layer: 12, head: 0 }] }), 'interventions[0].heads[0].layer', '12 is out of range (model has 8 layers)'],
    ['head out of range', one({ op: 'act', heads: [{ layer: 1, head: 4 }] }), 'interventions[0].heads[0].head', '4 is out of range (model has 4 heads per layer)'],
    ['negative layer', one({ op: 'act', heads: [{ layer: -1, head: 0 }] }), 'interventions[0].heads[0].layer', 'integer ≥ 0'],
    ['fractional head', one({ op: 'act', heads: [{ layer: 1, head: 0.5 }] }), 'interventions[0].heads[0].head', 'integer ≥ 0'],
    ['missing head field', one({ op: 'act', heads: [{ layer: 1 }] }), 'interventions[0].heads[0].head', 'missing'],
    ['string layer out of range', one({ op: 'act', heads: ['9:0'] }), 'interventions[0].heads[0]', 'layer 9 is out of range (model has 8 layers)'],
    ['params not an object', one({ op: 'act', heads: ['1:1'], params: [] }), 'interventions[0].params', 'must be an object'],
    ['unknown param', one({ op: 'scale', heads: ['1:1'], params: { facter: 2 } }), 'interventions[0].params.facter', 'did you mean "factor"'],
    ['ablate mode', one({ op: 'ablate', heads: ['1:1'], params: { mode: 'mena' } }), 'interventions[0].params.mode', 'must be "zero" or "mean"'],
    ['scale factor missing', one({ op: 'scale', heads: ['1:1'] }), 'interventions[0].params.factor', 'must be a number (got nothing)'],
    ['scale factor string', one({ op: 'scale', heads: ['1:1'], params: { factor: '2' } }), 'interventions[0].params.factor', 'must be a number (got "2")'],
    ['scale factor infinite', one({ op: 'scale', heads: ['1:1'], params: { factor: Infinity } }), 'interventions[0].params.factor', 'must be a finite number (got Infinity)'],
    ['scale factor NaN', one({ op: 'scale', heads: ['1:1'], params: { factor: NaN } }), 'interventions[0].params.factor', 'must be a finite number (got NaN)'],
    ['pasta alpha 0', one({ op: 'pasta', heads: ['1:1'], params: { alpha: 0, spans: [{ text: 'a' }] } }), 'interventions[0].params.alpha', 'must be > 0 (got 0)'],
    ['pasta alpha negative', one({ op: 'pasta', heads: ['1:1'], params: { alpha: -0.5, spans: [{ text: 'a' }] } }), 'interventions[0].params.alpha', 'must be > 0 (got -0.5)'],
    ['pasta alpha above 1', one({ op: 'pasta', heads: ['1:1'], params: { alpha: 2, spans: [{ text: 'a' }] } }), 'interventions[0].params.alpha', 'must be ≤ 1 (got 2)'],
    ['pasta no spans', one({ op: 'pasta', heads: ['1:1'], params: {} }), 'interventions[0].params.spans', 'missing'],
    ['pasta empty spans', one({ op: 'pasta', heads: ['1:1'], params: { spans: [] } }), 'interventions[0].params.spans', 'at least one span'],
    ['span not an object', one({ op: 'pasta', heads: ['1:1'], params: { spans: ['hi'] } }), 'interventions[0].params.spans[0]', 'must be {text}'],
    ['span with two kinds', one({ op: 'pasta', heads: ['1:1'], params: { spans: [{ text: 'a', chars: [0, 1] }] } }), 'interventions[0].params.spans[0]', 'has text and chars; give exactly one'],
    ['span with no kind', one({ op: 'pasta', heads: ['1:1'], params: { spans: [{ txt: 'a' }] } }), 'interventions[0].params.spans[0]', 'needs one of text, chars, tokens'],
    ['empty text span', one({ op: 'pasta', heads: ['1:1'], params: { spans: [{ text: '' }] } }), 'interventions[0].params.spans[0].text', 'non-empty string'],
    ['bad occurrence', one({ op: 'pasta', heads: ['1:1'], params: { spans: [{ text: 'a', occurrence: -1 }] } }), 'interventions[0].params.spans[0].occurrence', 'integer ≥ 0'],
    ['reversed token span', one({ op: 'pasta', heads: ['1:1'], params: { spans: [{ tokens: [5, 3] }] } }), 'interventions[0].params.spans[0].tokens', 'start < end'],
    ['malformed char span', one({ op: 'pasta', heads: ['1:1'], params: { spans: [{ chars: [1] }] } }), 'interventions[0].params.spans[0].chars', 'must be [start, end]'],
    ['act tau out of range', one({ op: 'act', heads: ['1:1'], params: { tau: 1.5 } }), 'interventions[0].params.tau', 'must be in (0, 1)'],
    ['act beta out of range', one({ op: 'act', heads: ['1:1'], params: { beta: -0.1 } }), 'interventions[0].params.beta', 'must be in [0, 1]'],
    ['act minQueries not an integer', one({ op: 'act', heads: ['1:1'], params: { minQueries: 0.5 } }), 'interventions[0].params.minQueries', 'integer ≥ 1 (got 0.5)'],
    ['act minQueries zero', one({ op: 'act', heads: ['1:1'], params: { minQueries: 0 } }), 'interventions[0].params.minQueries', 'integer ≥ 1 (got 0)'],
    ['steer alpha missing', one({ op: 'steer', heads: ['1:1'], params: { vector: [1, 2, 3] } }), 'interventions[0].params.alpha', 'missing'],
    ['steer vector missing', one({ op: 'steer', heads: ['1:1'], params: { alpha: 1 } }), 'interventions[0].params.vector', 'missing'],
    ['steer vector not array', one({ op: 'steer', heads: ['1:1'], params: { alpha: 1, vector: 'abc' } }), 'interventions[0].params.vector', 'must be an array'],
    ['steer vector length', one({ op: 'steer', heads: ['1:1'], params: { alpha: 1, vector: [1, 2] } }), 'interventions[0].params.vector', 'has 2 entries, expected 3'],
    ['steer vector entry', one({ op: 'steer', heads: ['1:1'], params: { alpha: 1, vector: [1, null, 3] } }), 'interventions[0].params.vector[1]', 'must be a number (got null)'],
    ['note not a string', one({ op: 'act', heads: ['1:1'], note: 5 }), 'interventions[0].note', 'must be a string'],
  ];
  it.each(cases)('%s', (_name, input, path, fragment) => {
    expectSpecError(() => parseInterventionSpec(input, model), path, fragment);
  });

  it('indexes the failing intervention', () => {
    const spec = {
      version: 1,
      interventions: [
        { op: 'act', heads: ['1:1'] },
        { op: 'act', heads: [{ layer: 12, head: 0 }] },
      ],
    };
    expectSpecError(() => parseInterventionSpec(spec, model), 'interventions[1].heads[0].layer', '12 is out of range (model has 8 layers)');
  });

  it('is a HeadwiseError, so the CLI reports it as bad input', () => {
    expect(catchError(() => parseInterventionSpec(42, model))).toBeInstanceOf(HeadwiseError);
  });

  it('rejects a bad model shape', () => {
    expectSpecError(() => parseInterventionSpec([], { numLayers: 0, numHeads: 4, headDim: 3 }), 'model.numLayers', 'positive integer');
  });
});

group('parseHeadList', () => {
  it('parses the CLI shorthand', () => {
    expect(parseHeadList('6:6,6:0', { numLayers: 8, numHeads: 8, headDim: 4 })).toEqual([
      { layer: 6, head: 6 },
      { layer: 6, head: 0 },
    ]);
    expect(parseHeadList(' 1:2 , 0:* ', model)).toHaveLength(5);
  });

  it('names the source and item in errors', () => {
    expectSpecError(() => parseHeadList('', model, '--ablate'), '--ablate', 'no heads given');
    expectSpecError(() => parseHeadList('1:1,,2:2', model, '--ablate'), '--ablate', 'item 2 is empty');
    expectSpecError(() => parseHeadList('1:1,6:x', model, '--ablate'), '--ablate', 'item 2 "6:x" is not a head; write L:H');
    expectSpecError(() => parseHeadList('12:0', model, '--ablate'), '--ablate', 'item 1 "12:0": layer 12 is out of range (model has 8 layers)');
    expectSpecError(() => parseHeadList('1:9', model, '--ablate'), '--ablate', 'head 9 is out of range (model has 4 heads per layer)');
  });
});
