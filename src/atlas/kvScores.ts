/**
 * Per-KV-head scores for the duo KV policy when no atlas file is given: a quick atlas run on a few
 * needle prompts (retrieval alone, or streaming harm), folded to KV heads as `file.ts`'s
 * `kvHeadScores` does for a saved atlas (max over each KV head's query heads).
 */
import type { Model } from '../runtime/model.js';
import { kvHeadScores, type KvScoreMetric } from './file.js';
import { runAtlas, type AtlasProgress } from './run.js';

export interface QuickScoreOptions {
  /** Needle prompts (default 16). */
  samples?: number;
  /** Prompt length (default 1024, or the model's context if shorter). */
  contextTokens?: number;
  seed?: number;
  onProgress?: (p: AtlasProgress) => void;
}

/** [layer][kvHead] scores, higher = more in need of the full cache. */
export async function computeKvHeadScores(model: Model, metric: KvScoreMetric, opts: QuickScoreOptions = {}): Promise<number[][]> {
  const samples = opts.samples ?? 16;
  const atlas = await runAtlas(model, {
    samples,
    contextTokens: opts.contextTokens,
    seed: opts.seed,
    patternSamples: 0,
    probes: 0,
    ablationSamples: 0,
    harmSamples: metric === 'streamingHarm' ? samples : 0,
    onProgress: opts.onProgress,
  });
  return kvHeadScores(atlas, metric, model.config);
}
