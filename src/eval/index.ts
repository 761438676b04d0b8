/**
 * Evaluation data: needle-in-a-haystack samples (pass key, multi-key, conflicting), their token spans,
 * exact-match scoring and the context × depth grid, the standard needle set (`niahSet.ts`) and when a
 * greedy answer is settled (`answer.ts`). Depends on a tokenizer only through `TextTokenizer`; runs no
 * model — `niahRun.ts` (not re-exported here) runs the samples through one.
 */
export * from './random.js';
export * from './textTokenizer.js';
export * from './tokenSpans.js';
export * from './templates.js';
export * from './keyValues.js';
export * from './haystack.js';
export * from './needle.js';
export * from './match.js';
export * from './grid.js';
export * from './niahSet.js';
export * from './answer.js';
export * from './passKeyPair.js';
