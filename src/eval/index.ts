/**
 * Evaluation data: needle-in-a-haystack samples (pass key, multi-key, conflicting), their token spans,
 * exact-match scoring and the context × depth grid. Depends on a tokenizer only through
 * `TextTokenizer`; runs no model.
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
