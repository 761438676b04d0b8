/**
 * Compiled (never run) by `spec.test.ts`: every line marked `// error TSnnnn` must fail to type-check
 * with that code, and every other line must type-check. Not part of the build.
 */
import type { InterventionInput, InterventionSpecInput } from '../../src/interventions/spec.js';
import type { RunOptions } from '../../src/index.js';

// Well-formed specs type-check, in every form the parser reads.
export const ok: InterventionSpecInput = {
  version: 1,
  interventions: [
    { op: 'ablate', heads: ['6:6', { layer: 6, head: 0 }] },
    { op: 'ablate', heads: '5:*', params: { mode: 'mean' } },
    { op: 'scale', heads: ['*:0'], params: { factor: 0.5 } },
    { op: 'pasta', heads: '2:*', params: { spans: [{ text: 'Mary' }, { tokens: [3, 9] }] } },
    { op: 'act', heads: ['1:1'], params: { beta: 0.4 }, note: 'hidden sinks' },
    { op: 'steer', heads: ['0:0'], params: { alpha: 2, vector: [0.1, 0.2] } },
  ],
};
export const bare: InterventionSpecInput = [{ op: 'ablate', heads: ['1:2'] }];
export const viaRun: RunOptions = { interventions: [{ op: 'scale', heads: ['1:2'], params: { factor: 0 } }] };

// A misspelled op.
export const badOp: InterventionInput = { op: 'ablaet', heads: ['6:6'] }; // error TS2820
export const badOpInRun: RunOptions = { interventions: [{ op: 'ablaet', heads: ['6:6'] }] }; // error TS2820
// A misspelled field of an intervention, and of a spec.
export const badField: InterventionInput = { op: 'ablate', haeds: ['6:6'] }; // error TS2561
export const badSpecField: InterventionSpecInput = { version: 1, interventons: [] }; // error TS2353
// A misspelled parameter, a parameter of another op, a bad value of an enum parameter.
export const badParam: InterventionInput = { op: 'scale', heads: ['6:6'], params: { factr: 2 } }; // error TS2353
export const otherOpsParam: InterventionInput = { op: 'ablate', heads: ['6:6'], params: { factor: 2 } }; // error TS2322
export const badMode: InterventionInput = { op: 'ablate', heads: ['6:6'], params: { mode: 'zeros' } }; // error TS2820
// A required parameter left out, a wrong value type, a head that is not L:H.
export const missingFactor: InterventionInput = { op: 'scale', heads: ['6:6'], params: {} }; // error TS2322
export const stringFactor: InterventionInput = { op: 'scale', heads: ['6:6'], params: { factor: '2' } }; // error TS2322
export const badHead: InterventionInput = { op: 'ablate', heads: ['six:six'] }; // error TS2322
