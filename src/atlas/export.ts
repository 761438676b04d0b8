/**
 * Exports an atlas in the formats other engines read:
 * - DuoAttention `full_attention_heads.tsv`: one line per layer, one tab-separated value per KV head,
 *   in [0, 1], higher = keep the full cache (DuoAttention stores its learned gates α this way and
 *   thresholds them at load time). Query-head metrics are folded to KV heads by the max over each
 *   group; retrieval (a share) is written as is, streaming harm (in nats) divided by its maximum.
 * - Retrieval_Head (Wu et al.) head scores: `{"L-H": [score]}`, heads best first.
 * Pure: formatting only; `writeExport` writes a file atomically.
 */
import { HeadwiseError } from '../errors.js';
import { writeFileAtomic } from '../io/outputPath.js';
import type { ModelConfig } from '../hf/config.js';
import { kvHeadScores, type AtlasFile, type KvScoreMetric } from './file.js';

function num(v: number): string {
  return String(Number((Number.isFinite(v) ? v : 0).toFixed(6)));
}

type Shape = Pick<ModelConfig, 'numHeads' | 'numKvHeads'>;

function shapeOf(atlas: AtlasFile): Shape {
  return { numHeads: atlas.model.heads, numKvHeads: atlas.model.kvHeads };
}

/** DuoAttention-style gate table (`full_attention_heads.tsv`) from a retrieval-like or harm metric. */
export function duoAttentionTsv(atlas: AtlasFile, metric: KvScoreMetric = 'retrieval'): string {
  const scores = kvHeadScores(atlas, metric, shapeOf(atlas));
  // Retrieval is already a share in [0, 1]; other metrics are scaled so the largest is 1.
  const max = Math.max(0, ...scores.flat().filter(Number.isFinite));
  const scale = metric === 'retrieval' || max === 0 ? 1 : 1 / max;
  return scores.map((row) => row.map((v) => num(Math.min(1, Math.max(0, v * scale)))).join('\t')).join('\n') + '\n';
}

/** Retrieval_Head-style head scores `{"L-H": [score]}`, best first (ties in layer-major order). */
export function retrievalHeadJson(atlas: AtlasFile, metric = 'retrieval'): string {
  const table = atlas.metrics[metric];
  if (!table) throw new HeadwiseError(`atlas has no metric "${metric}" (has: ${Object.keys(atlas.metrics).join(', ')})`);
  const heads = table.flatMap((row, layer) => row.map((score, head) => ({ key: `${layer}-${head}`, score: Number.isFinite(score) ? score : 0 })));
  heads.sort((a, b) => b.score - a.score);
  return JSON.stringify(Object.fromEntries(heads.map((h) => [h.key, [Number(h.score.toFixed(6))]]))) + '\n';
}

export function writeExport(file: string, text: string): void {
  writeFileAtomic(file, text);
}
