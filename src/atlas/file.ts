/**
 * The atlas file: a versioned JSON record of what every head of a model does. Layout:
 * ```
 * { "format": "headwise-atlas", "version": 1,
 *   "model": { name, family, layers, heads, kvHeads, headDim, vocab, weights? },   // weights: "f32", "q8b32", "q4b32", "f16", …
 *   "settings": { contextTokens, samples, seed, ... },
 *   "metrics": { "<name>": number[layer][head] | number[layer][kvHead] },
 *   "metricInfo": { "<name>": { "per": "head" | "kvHead", "samples": n, "description": "..." } },
 *   "sampleCounts": { "<name>": number[layer][head] },        // samples behind each value
 *   "topHeads": { "<name>": [{ layer, head, score }] },        // best first
 *   "niah": { accuracy, samples, contextTokens, depths, grid, counts, method },
 *   "validation": { k, seed, samples, base, top: { heads, accuracy }, random: { heads, accuracy } },
 *   "timing": { totalMs, ... },
 *   "runId": "uuid", "runFiles": { "<export file name>": "sha256" } }   // the set written together (outputs.ts)
 * ```
 * Every field after `metricInfo` is optional (version 1 readers ignore what they do not know). A value
 * that could not be measured (NaN) is written as null and read back as NaN. Readers check the format,
 * version and the model's shape, and fail with one clear line.
 */
import fs from 'node:fs';
import { HeadwiseError } from '../errors.js';
import { writeFileAtomic } from '../io/outputPath.js';
import type { ModelConfig } from '../hf/config.js';

export const ATLAS_FORMAT = 'headwise-atlas';
export const ATLAS_VERSION = 1;

export interface AtlasModelInfo {
  name: string;
  family: string;
  layers: number;
  heads: number;
  kvHeads: number;
  headDim: number;
  vocab: number;
  /** Weight format the atlas was measured with (`weightKey`: f32, f16, q8b32, q4b32, `e0` = float32 embeddings); absent = f32. */
  weights?: string;
}

export interface MetricInfo {
  per: 'head' | 'kvHead';
  samples: number;
  description: string;
  /** Where the model makes the metric ill-defined on some layers (e.g. sliding windows shorter than the prompt). */
  caveat?: string;
}

export interface AtlasTopHead {
  layer: number;
  head: number;
  score: number;
}

/** Needle accuracy of the atlas's own prompts, per (context length, depth) cell. */
export interface AtlasNiah {
  accuracy: number;
  samples: number;
  contextTokens: number[];
  depths: number[];
  /** grid[i][j] for contextTokens[i], depths[j]. */
  grid: number[][];
  counts: number[][];
  method?: string;
}

/** Causal check: needle accuracy with the top-k heads of a metric zeroed, and with k random heads zeroed. */
export interface AtlasValidation {
  metric: string;
  k: number;
  seed: number;
  samples: number;
  /** Accuracy with nothing ablated. */
  base: number;
  top: { heads: { layer: number; head: number }[]; accuracy: number; grid?: number[][] };
  random: { heads: { layer: number; head: number }[]; accuracy: number; grid?: number[][] };
}

export interface AtlasFile {
  format: typeof ATLAS_FORMAT;
  version: number;
  createdAt: string;
  model: AtlasModelInfo;
  settings: Record<string, unknown>;
  metrics: Record<string, number[][]>;
  metricInfo: Record<string, MetricInfo>;
  sampleCounts?: Record<string, number[][]>;
  topHeads?: Record<string, AtlasTopHead[]>;
  niah?: AtlasNiah;
  validation?: AtlasValidation;
  timing?: Record<string, number>;
  /** One id per atlas run, shared with the report and exports written with it (`outputs.ts`). */
  runId?: string;
  /** SHA-256 of each export written with this atlas, by file name. */
  runFiles?: Record<string, string>;
  [extra: string]: unknown;
}

/** JSON text of an atlas: NaN (not measured) becomes null. */
export function atlasJson(atlas: AtlasFile, indent?: number): string {
  return JSON.stringify(atlas, (_k, v) => (typeof v === 'number' && !Number.isFinite(v) ? null : v), indent);
}

/** Writes an atlas file atomically (a reader never sees half a file). */
export function writeAtlas(file: string, atlas: AtlasFile): void {
  writeFileAtomic(file, atlasJson(atlas, 1) + '\n');
}

/** null cells of metric tables back to NaN. */
function nullToNaN(tables: Record<string, unknown> | undefined): void {
  if (!tables) return;
  for (const t of Object.values(tables)) {
    if (Array.isArray(t)) for (const row of t) if (Array.isArray(row)) row.forEach((v, i) => (row[i] = v === null ? NaN : v));
  }
}

export type KvScoreMetric = 'retrieval' | 'streamingHarm';

export function readAtlas(file: string, config?: ModelConfig): AtlasFile {
  let raw: unknown;
  try {
    raw = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new HeadwiseError(`${file}: ${code ? `cannot read (${code})` : `not valid JSON (${(e as Error).message})`}`);
  }
  const a = raw as AtlasFile;
  if (!a || a.format !== ATLAS_FORMAT) throw new HeadwiseError(`${file}: not a headwise atlas (format must be "${ATLAS_FORMAT}")`);
  if (a.version !== ATLAS_VERSION) throw new HeadwiseError(`${file}: atlas version ${a.version} is not supported (expected ${ATLAS_VERSION})`);
  if (!a.metrics || typeof a.metrics !== 'object') throw new HeadwiseError(`${file}: missing "metrics"`);
  for (const [name, m] of Object.entries(a.metrics)) {
    if (!Array.isArray(m) || m.some((row) => !Array.isArray(row) || row.some((v) => v !== null && typeof v !== 'number'))) {
      throw new HeadwiseError(`${file}: metrics.${name} is not a [layer][head] table of numbers`);
    }
  }
  nullToNaN(a.metrics);
  nullToNaN(a.sampleCounts);
  if (config && (a.model?.layers !== config.numLayers || a.model?.heads !== config.numHeads || a.model?.kvHeads !== config.numKvHeads)) {
    throw new HeadwiseError(
      `${file}: atlas is for a model of ${a.model?.layers}×${a.model?.heads} heads (${a.model?.kvHeads} KV), this model has ${config.numLayers}×${config.numHeads} (${config.numKvHeads} KV)`,
    );
  }
  return a;
}

/** Per-KV-head scores for the duo policy: KV-head metrics as is, query-head metrics as max over the group (NaN ignored). */
export function kvHeadScores(atlas: AtlasFile, metric: KvScoreMetric, config: Pick<ModelConfig, 'numHeads' | 'numKvHeads'>): number[][] {
  const m = atlas.metrics[metric];
  if (!m) throw new HeadwiseError(`atlas has no metric "${metric}" (has: ${Object.keys(atlas.metrics).join(', ')})`);
  const rep = config.numHeads / config.numKvHeads;
  const per = atlas.metricInfo?.[metric]?.per ?? (m[0]?.length === config.numKvHeads ? 'kvHead' : 'head');
  if (per === 'kvHead') return m.map((row) => row.slice());
  // Heads without a value (NaN) do not count; a group with none stays NaN.
  return m.map((row) => Array.from({ length: config.numKvHeads }, (_, g) => {
    const vals = row.slice(g * rep, (g + 1) * rep).filter((v) => !Number.isNaN(v));
    return vals.length ? Math.max(...vals) : NaN;
  }));
}
