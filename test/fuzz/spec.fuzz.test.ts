/**
 * Fuzz: intervention specs and head lists. Random specs of every op (valid ones and ones with any field
 * replaced, dropped or added), specs nested up to 20 000 deep (as objects and as JSON text), and random
 * head-list strings; every case parses or is refused with one clean line (a SpecError names the field).
 */
import { expect, it } from 'vitest';
import { MAX_SPEC_DEPTH, parseHeadList, parseInterventionSpec } from '../../src/interventions/spec.js';
import { clean, deeplyNested, edgeValue, mutate, newTally, record, seeded, type Rng } from './fuzz.js';

const shape = { numLayers: 6, numHeads: 4, headDim: 8 };

function heads(rng: Rng): unknown {
  const layer = () => (rng.chance(0.9) ? rng.int(0, 5) : rng.pick([-1, 6, 7]));
  const head = () => (rng.chance(0.9) ? rng.int(0, 3) : rng.pick([-1, 4, 5]));
  const one = () => (rng.chance(0.5) ? `${layer()}:${rng.chance(0.1) ? '*' : head()}` : { layer: layer(), head: head() });
  return rng.chance(0.2) ? '2:*' : Array.from({ length: rng.int(1, 4) }, one);
}

function intervention(rng: Rng): Record<string, unknown> {
  const op = rng.chance(0.9) ? rng.pick(['ablate', 'scale', 'pasta', 'act', 'steer']) : rng.pick(['ablat', 'constructor', '__proto__']);
  const table: Record<string, unknown> = {
    ablate: { mode: rng.pick(['zero', 'mean', 'x']) },
    scale: { factor: rng.pick([0.5, 2, -1, 0]) },
    pasta: { alpha: rng.pick([0.01, 1, 0, 2]), spans: [rng.pick([{ text: 'cat' }, { chars: [0, 3] }, { tokens: [1, 4] }, { tokens: [4, 1] }])] },
    act: { tau: rng.pick([0.1, 0, 1]), beta: rng.pick([0.4, 1, -1]), minQueries: rng.pick([1, 2, 1.5]) },
    steer: { alpha: 1, vector: Array.from({ length: rng.pick([8, 7]) }, () => rng.next()) },
  };
  const params = Object.hasOwn(table, op) ? table[op] : {};
  return { op, heads: heads(rng), params };
}

it('fuzz: 2 500 random and mutated intervention specs parse or are refused with one clean line', () => {
  const rng = seeded(41);
  const tally = newTally();
  for (let i = 0; i < 2500; i++) {
    const spec = { version: 1, interventions: Array.from({ length: rng.int(1, 3) }, () => intervention(rng)) };
    const doc = rng.chance(0.5) ? mutate(spec, rng, { keys: ['op', 'heads', 'params', 'note', 'version', 'interventions'] }) : spec;
    const input = rng.chance(0.3) ? JSON.stringify(doc) : rng.chance(0.1) ? (doc as { interventions: unknown }).interventions : doc;
    clean(tally, `spec case ${i}`, () => void parseInterventionSpec(input, shape));
  }
  record('intervention specs', tally);
  expect(tally.cases).toBe(2500);
  expect(tally.accepted).toBeGreaterThan(50);
});

it('fuzz: 60 specs nested from 30 to 20 000 levels deep (objects and JSON text) are refused cleanly', () => {
  const tally = newTally();
  for (const depth of [30, 33, 40, 100, 1000, 5000, 10_000, 20_000]) {
    for (const kind of ['array', 'object'] as const) {
      const deep = deeplyNested(depth, kind);
      const inputs: unknown[] = [
        { version: 1, interventions: [{ op: 'ablate', heads: ['1:1'], params: { mode: deep } }] },
        { version: 1, interventions: [{ op: 'steer', heads: ['1:1'], params: { alpha: 1, vector: deep } }] },
        { version: 1, note: deep, interventions: [] },
        deep,
      ];
      for (const input of inputs) {
        const text = '{"version":1,"interventions":[{"op":"ablate","heads":' + '['.repeat(depth) + ']'.repeat(depth) + '}]}';
        for (const x of [input, text]) {
          const outcome = clean(tally, `depth ${depth} ${kind}`, () => void parseInterventionSpec(x, shape));
          if (depth > MAX_SPEC_DEPTH + 2) expect(outcome).toBe('refused');
        }
      }
    }
  }
  record('deep specs', tally);
  expect(tally.cases).toBeGreaterThanOrEqual(60);
});

it('fuzz: 1 000 random head-list strings parse or are refused with one clean line', () => {
  const rng = seeded(42);
  const tally = newTally();
  const atoms = ['0', '1', '5', '6', '9', '-1', '*', ':', ',', ' ', 'a', '1.5', '1e3', '0x1', '٣', '', '3:*', '*:2', '999999999999999999999'];
  for (let i = 0; i < 1000; i++) {
    const text = Array.from({ length: rng.int(0, 8) }, () => rng.pick(atoms)).join('');
    clean(tally, `head list ${JSON.stringify(text)}`, () => void parseHeadList(rng.chance(0.02) ? (edgeValue(rng) as string) : text, shape, '--ablate'));
  }
  record('head lists', tally);
  expect(tally.cases).toBe(1000);
});
