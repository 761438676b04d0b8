import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { AttentionMatrix } from '../runtime/capture.js';
import { combine } from './compose.js';
import { buildActInputs, buildGroupScoreBias, buildScoreBias, hookProvider, isNoop, lowerSpec } from './lower.js';
import { applyAct, applyActMasked, applyPasta, causalSoftmax } from './reference.js';
import { resolveSpans } from './spans.js';
import { SpecError, parseInterventionSpec } from './spec.js';

const model = { numLayers: 3, numHeads: 2, headDim: 2 };
const parse = (json: unknown, m = model) => parseInterventionSpec(json, m);

function expectSpecError(f: () => unknown, path: string, fragment: string): void {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(SpecError);
    expect((e as SpecError).path).toBe(path);
    expect((e as Error).message.startsWith(`${path}: `)).toBe(true);
    expect((e as Error).message).toContain(fragment);
    return;
  }
  expect.fail(`expected a SpecError at ${path}`);
}

const positions = (n: number, from = 0) => Int32Array.from({ length: n }, (_, i) => from + i);

describe('lowerSpec: output hooks', () => {
  it('an empty spec lowers to the identity', () => {
    const p = lowerSpec(parse([]), model);
    expect(p.headScale.map((s) => Array.from(s))).toEqual([[1, 1], [1, 1], [1, 1]]);
    expect(p.headAdd).toEqual([null, null, null]);
    expect(p.pasta).toEqual([]);
    expect(p.act).toEqual([]);
    expect(isNoop(p)).toBe(true);
  });

  it('zero-ablation sets the scale to 0 and adds nothing', () => {
    const p = lowerSpec(parse([{ op: 'ablate', heads: ['1:1'] }]), model);
    expect(Array.from(p.headScale[1])).toEqual([1, 0]);
    expect(p.headAdd).toEqual([null, null, null]);
    expect(isNoop(p)).toBe(false);
  });

  it('scales compose multiplicatively', () => {
    const p = lowerSpec(
      parse([
        { op: 'scale', heads: ['2:0', '2:1'], params: { factor: 2 } },
        { op: 'scale', heads: ['2:0'], params: { factor: 3 } },
      ]),
      model,
    );
    expect(Array.from(p.headScale[2])).toEqual([6, 2]);
  });

  it('steering adds α·v in the head’s slice of its layer only', () => {
    const p = lowerSpec(parse([{ op: 'steer', heads: ['0:1'], params: { alpha: 2, vector: [1, -0.5] } }]), model);
    expect(Array.from(p.headScale[0])).toEqual([1, 1]);
    expect(Array.from(p.headAdd[0]!)).toEqual([0, 0, 2, -1]);
    expect(p.headAdd[1]).toBeNull();
  });

  it('composes in spec order as affine maps', () => {
    const steer = { op: 'steer', heads: ['0:0'], params: { alpha: 1, vector: [1, 2] } };
    const zero = { op: 'ablate', heads: ['0:0'] };
    const steerThenZero = lowerSpec(parse([steer, zero]), model);
    expect(steerThenZero.headScale[0][0]).toBe(0);
    expect(Array.from(steerThenZero.headAdd[0]!)).toEqual([0, 0, 0, 0]);
    const zeroThenSteer = lowerSpec(parse([zero, steer]), model);
    expect(zeroThenSteer.headScale[0][0]).toBe(0);
    expect(Array.from(zeroThenSteer.headAdd[0]!)).toEqual([1, 2, 0, 0]);
    // z ↦ 3·(z + v) = 3z + 3v
    const steerThenScale = lowerSpec(parse([steer, { op: 'scale', heads: ['0:0'], params: { factor: 3 } }]), model);
    expect(steerThenScale.headScale[0][0]).toBe(3);
    expect(Array.from(steerThenScale.headAdd[0]!)).toEqual([3, 6, 0, 0]);
  });

  it('mean-ablation uses the provided means, with scale 0', () => {
    const means = [new Float32Array([1, 2, 3, 4]), new Float32Array([5, 6, 7, 8]), new Float32Array(4)];
    const spec = parse([
      { op: 'ablate', heads: ['1:1'], params: { mode: 'mean' } },
      { op: 'scale', heads: ['1:1'], params: { factor: 2 } },
    ]);
    const p = lowerSpec(spec, model, { means });
    expect(Array.from(p.headScale[1])).toEqual([1, 0]);
    expect(Array.from(p.headAdd[1]!)).toEqual([0, 0, 14, 16]);
    expect(Array.from(means[1])).toEqual([5, 6, 7, 8]); // caller's means untouched
  });

  it('mean-ablation without means is a clear error', () => {
    const spec = parse([{ op: 'act', heads: ['0:0'] }, { op: 'ablate', heads: ['1:1'], params: { mode: 'mean' } }]);
    expectSpecError(() => lowerSpec(spec, model), 'interventions[1] (ablate mean on 1:1)', 'lowering needs options.means');
    expectSpecError(() => lowerSpec(spec, model, { means: [new Float32Array(4)] }), 'options.means', 'has 1 layers, expected 3');
    const short = [new Float32Array(4), new Float32Array(3), new Float32Array(4)];
    expectSpecError(() => lowerSpec(spec, model, { means: short }), 'options.means[1]', 'has 3 values, expected 4');
    const nan = [new Float32Array(4), new Float32Array([0, 0, NaN, 0]), new Float32Array(4)];
    expectSpecError(() => lowerSpec(spec, model, { means: nan }), 'options.means[1]', 'not finite');
  });

  it('re-checks heads and vector length against the model it lowers for', () => {
    const big = { numLayers: 8, numHeads: 8, headDim: 3 };
    expectSpecError(() => lowerSpec(parse([{ op: 'ablate', heads: ['1:1', '5:0'] }], big), model), 'interventions[0].heads[1].layer', '5 is out of range (model has 3 layers)');
    expectSpecError(() => lowerSpec(parse([{ op: 'ablate', heads: ['1:7'] }], big), model), 'interventions[0].heads[0].head', '7 is out of range (model has 2 heads per layer)');
    const steer = parse([{ op: 'steer', heads: ['0:0'], params: { alpha: 1, vector: [1, 2, 3] } }], big);
    expectSpecError(() => lowerSpec(steer, model), 'interventions[0].params.vector', 'has 3 entries, expected 2');
  });

  it('lowers the ablate-top2 example for ref-llama-7m', () => {
    const ref = { numLayers: 6, numHeads: 4, headDim: 64 };
    const spec = parseInterventionSpec(readFileSync(new URL('./examples/ablate-top2.json', import.meta.url), 'utf8'), ref);
    const p = lowerSpec(spec, ref);
    expect(p.headScale.map((s) => Array.from(s))).toEqual([
      [1, 1, 1, 1], [1, 1, 1, 1], [1, 1, 1, 1], [1, 1, 1, 1], [1, 0, 1, 1], [1, 1, 1, 0],
    ]);
  });
});

describe('lowerSpec + buildScoreBias: PASTA', () => {
  const spec = parse([
    { op: 'pasta', heads: ['1:0'], params: { alpha: 0.5, spans: [{ tokens: [3, 5] }, { tokens: [1, 2] }, { tokens: [4, 6] }] } },
  ]);

  it('describes each steered head with merged spans, ln α and the prompt end', () => {
    const p = lowerSpec(spec, model, { promptTokens: 8 });
    expect(p.pasta).toEqual([{ layer: 1, head: 0, logAlpha: Math.log(0.5), keySpans: [[1, 2], [3, 6]], keyEnd: 8 }]);
    expect(Array.from(p.headScale[1])).toEqual([1, 1]);
  });

  it('needs resolved spans and the prompt length', () => {
    const text = parse([{ op: 'act', heads: ['0:0'] }, { op: 'pasta', heads: ['1:0'], params: { spans: [{ tokens: [0, 1] }, { text: 'x' }] } }]);
    expectSpecError(() => lowerSpec(text, model, { promptTokens: 4 }), 'interventions[1].params.spans[1]', 'call resolveSpans');
    expectSpecError(() => lowerSpec(spec, model), 'interventions[0] (pasta)', 'options.promptTokens');
    expectSpecError(() => lowerSpec(spec, model, { promptTokens: 5 }), 'interventions[0].params.spans[2].tokens', 'runs past the prompt (5 tokens)');
  });

  it('builds a dense [heads, queries, keys] bias: ln α off-span, 0 on-span, 0 on generated keys', () => {
    const p = lowerSpec(spec, model, { promptTokens: 7 });
    expect(buildScoreBias(p, 0, 2, positions(3), positions(3))).toBeNull();
    const keys = positions(9);
    const bias = buildScoreBias(p, 1, 2, Int32Array.from([6, 7]), keys)!;
    expect(bias.length).toBe(2 * 2 * 9);
    const la = Math.fround(Math.log(0.5));
    const row = [la, 0, la, 0, 0, 0, la, 0, 0];
    expect(Array.from(bias.subarray(0, 9))).toEqual(row);
    expect(Array.from(bias.subarray(9, 18))).toEqual(row);
    expect(Array.from(bias.subarray(18))).toEqual(new Array(18).fill(0)); // head 1 untouched
    expect(() => buildScoreBias(p, 1, 3, keys, keys)).toThrow(/numHeads 3/);
    expect(() => buildScoreBias(p, 3, 2, keys, keys)).toThrow(/layer 3 is out of range/);
    expect(() => buildGroupScoreBias(p, 1, [2], keys, keys)).toThrow(/head 2 is out of range/);
  });

  it('two PASTA interventions on one head add their biases', () => {
    const two = combine(spec, parse([{ op: 'pasta', heads: ['1:0'], params: { alpha: 0.25, spans: [{ tokens: [0, 1] }] } }]));
    const p = lowerSpec(two, model, { promptTokens: 8 });
    const bias = buildScoreBias(p, 1, 2, positions(1), positions(3))!;
    expect(bias[0]).toBeCloseTo(Math.log(0.5), 6); // key 0: outside the first, inside the second
    expect(bias[1]).toBeCloseTo(Math.log(0.25), 6); // key 1: inside the first, outside the second
    expect(bias[2]).toBeCloseTo(Math.log(0.5) + Math.log(0.25), 6);
  });

  it('softmax(scores + bias) equals the reference applyPasta, through resolveSpans', () => {
    const prompt = 'ab cd ef';
    const offsets = [[0, 2], [2, 5], [5, 8]] as const;
    const resolved = resolveSpans(parse([{ op: 'pasta', heads: ['2:1'], params: { alpha: 0.1, spans: [{ text: 'cd' }] } }]), prompt, offsets);
    const p = lowerSpec(resolved, model, { promptTokens: 3 });
    const scores: AttentionMatrix = { rows: 4, cols: 4, rowOffset: 0, data: Float32Array.from([0.2, 0, 0, 0, 1, -1, 0, 0, 0.5, 0.1, 2, 0, -0.3, 0.8, 0.4, 1.1]) };
    const bias = buildScoreBias(p, 2, 2, positions(4), positions(4))!;
    const biased = { ...scores, data: scores.data.map((x, i) => x + bias[16 + i]) };
    const reference = applyPasta(scores, [[1, 2]], 0.1, 3);
    Array.from(causalSoftmax(biased).data).forEach((x, i) => expect(x).toBeCloseTo(reference.data[i], 6));
  });
});

describe('lowerSpec + buildActInputs: ACT', () => {
  const pattern: AttentionMatrix = {
    rows: 4,
    cols: 4,
    rowOffset: 0,
    data: Float32Array.from([1, 0, 0, 0, 0.5, 0.5, 0, 0, 0.2, 0.6, 0.2, 0, 0.1, 0.5, 0.2, 0.2]),
  };

  it('α = 1 PASTA and β = 1 ACT count as no-ops', () => {
    const p = lowerSpec(
      parse([
        { op: 'pasta', heads: ['0:0'], params: { alpha: 1, spans: [{ tokens: [0, 1] }] } },
        { op: 'act', heads: ['0:0'], params: { beta: 1 } },
      ]),
      model,
      { promptTokens: 2 },
    );
    expect(isNoop(p)).toBe(true);
  });

  it('lists each calibrated head', () => {
    const p = lowerSpec(parse([{ op: 'act', heads: ['2:0', '0:1'], params: { tau: 0.3, beta: 0.5 } }]), model);
    expect(p.act).toEqual([
      { layer: 2, head: 0, tau: 0.3, beta: 0.5, minQueries: 1 },
      { layer: 0, head: 1, tau: 0.3, beta: 0.5, minQueries: 1 },
    ]);
    expect(isNoop(p)).toBe(false);
  });

  it('a head takes at most one ACT', () => {
    const spec = parse([{ op: 'act', heads: ['2:0'] }, { op: 'act', heads: ['1:1', '2:0'] }]);
    expectSpecError(() => lowerSpec(spec, model), 'interventions[1].heads', 'head 2:0 already has an act calibration from interventions[0]');
  });

  it('builds mask and β inputs; uncalibrated heads get mask 0, β 1', () => {
    const p = lowerSpec(parse([{ op: 'act', heads: ['2:1'], params: { tau: 0.3, beta: 0.5 } }]), model);
    const patternOf = (head: number) => (head === 1 ? pattern : undefined);
    expect(buildActInputs(p, 0, [0, 1], positions(4), patternOf)).toBeNull();
    expect(buildActInputs(p, 2, [0], positions(4), patternOf)).toBeNull(); // group without the ACT head
    const inputs = buildActInputs(p, 2, [0, 1], positions(5), patternOf)!;
    expect(Array.from(inputs.beta)).toEqual([1, 0.5]);
    expect(Array.from(inputs.mask)).toEqual([0, 0, 0, 0, 0, 0, 1, 0, 0, 0]); // key 4 is past the capture: 0
    // the graph's formula with these inputs reproduces the reference
    const viaInputs = applyActMasked(pattern, inputs.mask.subarray(5, 9), inputs.beta[1]);
    expect(Array.from(viaInputs.data)).toEqual(Array.from(applyAct(pattern, 0.3, 0.5).data));
    expect(() => buildActInputs(p, 2, [0, 1], positions(4), () => undefined)).toThrow(/act on 2:1 needs that head's captured pattern/);
  });

  it('passes minQueries through to the mask', () => {
    const p = lowerSpec(parse([{ op: 'act', heads: ['2:1'], params: { tau: 0.1, beta: 0.5, minQueries: 2 } }]), model);
    expect(Array.from(buildActInputs(p, 2, [1], positions(4), () => pattern)!.mask)).toEqual([0, 1, 1, 0]);
    const loose = lowerSpec(parse([{ op: 'act', heads: ['2:1'], params: { tau: 0.1, beta: 0.5 } }]), model);
    expect(Array.from(buildActInputs(loose, 2, [1], positions(4), () => pattern)!.mask)).toEqual([0, 1, 1, 1]);
  });

  it('follows the order of the group’s heads and non-dense key positions', () => {
    const p = lowerSpec(parse([{ op: 'act', heads: ['2:1'], params: { tau: 0.3, beta: 0.5 } }]), model);
    const inputs = buildActInputs(p, 2, [1, 0], Int32Array.from([0, 1, 3]), () => pattern)!;
    expect(Array.from(inputs.beta)).toEqual([0.5, 1]);
    expect(Array.from(inputs.mask)).toEqual([0, 1, 0, 0, 0, 0]);
  });
});

describe('hookProvider', () => {
  it('serves the lowered parameters per layer and per KV-head group', () => {
    const spec = parse([
      { op: 'ablate', heads: ['0:1'] },
      { op: 'steer', heads: ['1:0'], params: { alpha: 1, vector: [1, 2] } },
      { op: 'pasta', heads: ['1:1'], params: { alpha: 0.5, spans: [{ tokens: [0, 1] }] } },
      { op: 'act', heads: ['2:0'], params: { tau: 0.3, beta: 0.5 } },
    ]);
    const p = lowerSpec(spec, model, { promptTokens: 2 });
    const pattern: AttentionMatrix = { rows: 2, cols: 2, rowOffset: 0, data: Float32Array.from([1, 0, 0.3, 0.7]) };
    const hooks = hookProvider(p, (layer, head) => (layer === 2 && head === 0 ? pattern : undefined));
    expect(Array.from(hooks.headScale!(0)!)).toEqual([1, 0]);
    expect(hooks.headAdd!(0)).toBeNull();
    expect(Array.from(hooks.headAdd!(1)!)).toEqual([1, 2, 0, 0]);
    expect(hooks.scoreBias!(0, [0, 1], positions(1, 2), positions(3))).toBeNull();
    // group of head 1 only: [1 head, 1 query, 3 keys]; key 0 highlighted, key 1 not, key 2 generated
    const bias = hooks.scoreBias!(1, [1], positions(1, 2), positions(3))!;
    expect(Array.from(bias)).toEqual([0, Math.fround(Math.log(0.5)), 0]);
    // all-heads form agrees with the group form
    expect(Array.from(buildGroupScoreBias(p, 1, [0, 1], positions(1, 2), positions(3))!)).toEqual(
      Array.from(buildScoreBias(p, 1, 2, positions(1, 2), positions(3))!),
    );
    const act = hooks.act!(2, [0, 1], positions(2))!;
    expect(Array.from(act.mask)).toEqual([0, 1, 0, 0]);
    expect(Array.from(act.beta)).toEqual([0.5, 1]);
    expect(hooks.act!(1, [0, 1], positions(2))).toBeNull();
  });
});
