/**
 * The public face of `interventions/`: write or parse a spec (spec.ts), bind PASTA spans to a prompt
 * (spans.ts), list and compose specs (compose.ts), lower a spec to the graph's per-head hook parameters
 * (lower.ts), and the reference math every hook is tested against (reference.ts). Running them: bind a
 * spec to a prompt on a model (bind.ts), mean head outputs for mean ablation (means.ts), and choosing
 * PASTA heads by profiling (steerProfile.ts).
 */

export * from './spec.js';
export * from './spans.js';
export * from './compose.js';
export * from './lower.js';
export * from './reference.js';
export * from './bind.js';
export * from './means.js';
export * from './steerProfile.js';
