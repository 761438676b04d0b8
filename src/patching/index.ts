/**
 * The public face of `patching/`: activation patching of head outputs between a clean and a corrupted
 * prompt (`patch.ts`), head importance by ablation over a prompt file (`importance.ts`), direct logit
 * attribution and the logit lens (`attribution.ts`), the metrics and intervals they report
 * (`metrics.ts`, `stats.ts`) and the JSON they produce (`format.ts`). `patchedRun.ts` is the exact
 * segmented runner under the first two.
 */
export * from './format.js';
export * from './metrics.js';
export { meanInterval, t975, type MeanInterval } from './stats.js';
export { activationPatching, type PatchingOptions } from './patch.js';
export { headImportance, parseImportanceFile, type ImportanceItem, type ImportanceOptions } from './importance.js';
export { directLogitAttribution, attributionRefusal, type AttributionOptions } from './attribution.js';
export { PatchedRunner, headZ, type HeadPatch } from './patchedRun.js';
