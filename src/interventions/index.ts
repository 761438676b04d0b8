/**
 * The public face of `interventions/`: write or parse a spec (spec.ts), bind PASTA spans to a prompt
 * (spans.ts), list and compose specs (compose.ts), lower a spec to the graph's per-head hook parameters
 * (lower.ts), and the reference math every hook is tested against (reference.ts).
 */

export * from './spec.js';
export * from './spans.js';
export * from './compose.js';
export * from './lower.js';
export * from './reference.js';
