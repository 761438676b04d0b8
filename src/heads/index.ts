/**
 * Head metrics: pure functions from captured attention (`runtime/capture.ts`) or logits to numbers,
 * one concept per file, plus the per-head accumulators that average them over samples. Nothing here
 * runs a model.
 */
export * from './rows.js';
export * from './retrieval.js';
export * from './sink.js';
export * from './hiddenSinks.js';
export * from './patterns.js';
export * from './locality.js';
export * from './kl.js';
export * from './aggregate.js';
export * from './stats.js';
