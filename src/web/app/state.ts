/**
 * What the views share: the model's shape and limits, the atlas (when there is one), the example
 * prompts, and the user's working prompt and head selection, so moving between views keeps them.
 */
import type { AtlasView, ExamplePrompt, ModelInfo, ServerStatus } from '../api.js';
import type { ResearchResult } from '../../atlas/researchResult.js';
import type { HeadRef } from './route.js';

export interface AppState {
  model: ModelInfo;
  atlas: AtlasView | null;
  examples: ExamplePrompt[];
  /** Metric shown in the atlas grid. */
  metric: string | null;
  /** Prompt of the Head view. */
  headPrompt: string;
  /** Prompt of the Playground. */
  playPrompt: string;
  /** Heads the Playground intervenes on. */
  playHeads: HeadRef[];
  /** What the server holds (`GET /api/status`), so views ask only for what exists. */
  status: ServerStatus;
  /** Most bins per axis in the head and compare views. */
  bins: number;
  /** Second prompt of the Compare view. */
  comparePrompt: string;
  /** Research results: loaded by the server, or uploaded in this page. */
  results: ResearchResult[];
}

export const state = {} as AppState;

/** Metrics in a stable order: the usual suspects first, then the rest alphabetically. */
export function metricNames(atlas: AtlasView | null): string[] {
  if (!atlas) return [];
  const first = ['retrieval', 'streamingHarm', 'sink', 'previousToken', 'induction'];
  const names = Object.keys(atlas.metrics);
  return [...first.filter((m) => names.includes(m)), ...names.filter((m) => !first.includes(m)).sort()];
}

/** A metric's value for one head: per-KV-head metrics are read at the head's KV head. */
export function metricAt(atlas: AtlasView, metric: string, layer: number, head: number, model: ModelInfo): number | null {
  const grid = atlas.metrics[metric];
  if (!grid) return null;
  const col = isKvMetric(atlas, metric, model) ? Math.floor(head / (model.heads / model.kvHeads)) : head;
  const v = grid[layer]?.[col];
  return typeof v === 'number' && Number.isFinite(v) ? v : null;
}

export function isKvMetric(atlas: AtlasView, metric: string, model: ModelInfo): boolean {
  const per = atlas.metricInfo?.[metric]?.per;
  if (per) return per === 'kvHead';
  return model.kvHeads !== model.heads && atlas.metrics[metric]?.[0]?.length === model.kvHeads;
}

/** Rank (1 = highest) of a head's value among all cells of the metric. */
export function rankOf(atlas: AtlasView, metric: string, value: number | null): { rank: number; of: number } | null {
  if (value === null) return null;
  const xs = atlas.metrics[metric].flat().filter((x) => typeof x === 'number' && Number.isFinite(x));
  return { rank: xs.filter((x) => x > value).length + 1, of: xs.length };
}
