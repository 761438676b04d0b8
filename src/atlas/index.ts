/**
 * The public face of `atlas/`: run an atlas (`run.ts`) and check it causally (`validate.ts`), compute
 * per-KV-head scores for the duo KV policy without a file (`kvScores.ts`), read and write the atlas
 * file (`file.ts`), compare it with a reference analysis (`compare.ts`), and turn it into an HTML
 * report (`report.ts`) or the DuoAttention / Retrieval_Head formats (`export.ts`); write a run's files as
 * one set with one run id and check that paired files match (`outputs.ts`). `gather.ts` and
 * `variants.ts` are the run's internals (captures → metric samples; head-changed re-runs).
 *
 * @example
 * const atlas = await runAtlas(model, { samples: 96, contextTokens: 1024, onProgress: (p) => console.log(p.done, p.total) });
 * atlas.validation = await validateAtlas(model, atlas, { k: 2 });
 * writeAtlas('atlas.json', atlas);
 * writeReport('atlas.html', atlas);
 */
export * from './file.js';
export { runAtlas, atlasNeedleSet, probeSequence, ATLAS_DEFAULTS, type AtlasOptions, type AtlasProgress } from './run.js';
export { validateAtlas, randomHeads, type ValidateOptions } from './validate.js';
export { computeKvHeadScores, type QuickScoreOptions } from './kvScores.js';
export { checkReferenceShape, compareWithReference, REFERENCE_FIELDS, type ReferenceComparison } from './compare.js';
export { checkSameRun, writeAtlasOutputs, type AtlasOutputs } from './outputs.js';
export { reportHtml, reportRunId, writeReport, loadReportBundles, METRIC_DISPLAY, type ReportBundles } from './report.js';
export { duoAttentionTsv, retrievalHeadJson, writeExport } from './export.js';
