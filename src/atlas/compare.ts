/**
 * Compares an atlas with a reference head analysis (the PyTorch reference JSONs in
 * ../shared/reference: `retrieval`, `sink_score`, `prev_token`, `induction`, `streaming_harm` as
 * [layer][head] tables, `top_retrieval`, `base_accuracy`, `ablation`): the largest per-head retrieval
 * difference, whether the top heads agree, and Spearman rank correlations of the other metrics —
 * where the ranking of the heads matters more than the values. Pure.
 */
import { HeadwiseError } from '../errors.js';
import { spearman, topHeads } from '../heads/index.js';
import type { AtlasFile } from './file.js';

/** Reference field → atlas metric. */
export const REFERENCE_FIELDS: Record<string, string> = {
  retrieval: 'retrieval',
  sink_score: 'sink',
  prev_token: 'previousToken',
  induction: 'induction',
  streaming_harm: 'streamingHarm',
};

export interface ReferenceComparison {
  /** max over heads of |ours − reference| retrieval, and where. */
  retrievalMaxAbsDiff: { value: number; layer: number; head: number };
  /** Heads whose retrieval score is off by more than `tolerance`. */
  retrievalOutside: { layer: number; head: number; ours: number; reference: number }[];
  tolerance: number;
  /** Top-k retrieval heads, ours and the reference's, best first. */
  topRetrieval: { ours: { layer: number; head: number; score: number }[]; reference: { layer: number; head: number; score: number }[]; sameOrder: boolean };
  /** Spearman ρ per atlas metric present in both. */
  spearman: Record<string, number>;
  baseAccuracy?: { ours?: number; reference?: number };
  ablation?: { k: number; ours?: { top: number; random: number }; reference?: { top: number; random: number } };
}

function table(ref: Record<string, unknown>, field: string, layers: number): number[][] | null {
  const t = ref[field];
  if (!Array.isArray(t)) return null;
  if (t.length !== layers) throw new HeadwiseError(`reference ${field}: ${t.length} layers, the atlas has ${layers}`);
  return t as number[][];
}

/**
 * Checks, before any work, that a reference analysis fits a model: a retrieval table, and every table
 * it has is [layers][heads] of numbers (or null). `where` names the file.
 */
export function checkReferenceShape(ref: unknown, shape: { numLayers: number; numHeads: number }, where: string): Record<string, unknown> {
  if (ref === null || typeof ref !== 'object' || Array.isArray(ref)) throw new HeadwiseError(`${where}: must be a JSON object`);
  const r = ref as Record<string, unknown>;
  if (!Array.isArray(r.retrieval)) throw new HeadwiseError(`${where}: has no "retrieval" table`);
  for (const field of Object.keys(REFERENCE_FIELDS)) {
    const t = r[field];
    if (t === undefined) continue;
    if (!Array.isArray(t) || t.some((row) => !Array.isArray(row) || row.some((v) => v !== null && typeof v !== 'number'))) {
      throw new HeadwiseError(`${where}: "${field}" is not a [layer][head] table of numbers`);
    }
    const rows = t as unknown[][];
    if (rows.length !== shape.numLayers || rows.some((row) => row.length !== shape.numHeads)) {
      throw new HeadwiseError(`${where}: "${field}" is a ${rows.length}×${rows[0]?.length ?? 0} table, this model has ${shape.numLayers} layers × ${shape.numHeads} heads (reference of another model?)`);
    }
  }
  return r;
}

export function compareWithReference(atlas: AtlasFile, ref: Record<string, unknown>, opts: { tolerance?: number; topK?: number } = {}): ReferenceComparison {
  const tolerance = opts.tolerance ?? 0.05;
  const k = opts.topK ?? 2;
  const L = atlas.model.layers;
  const ours = atlas.metrics.retrieval;
  const theirs = table(ref, 'retrieval', L);
  if (!ours || !theirs) throw new HeadwiseError('reference comparison needs a retrieval table on both sides');
  let worst = { value: -1, layer: 0, head: 0 };
  const outside: ReferenceComparison['retrievalOutside'] = [];
  ours.forEach((row, layer) => row.forEach((v, head) => {
    const d = Math.abs(v - theirs[layer][head]);
    if (d > worst.value) worst = { value: d, layer, head };
    if (!(d <= tolerance)) outside.push({ layer, head, ours: v, reference: theirs[layer][head] });
  }));
  const top = (t: number[][]) => topHeads(t, k).map(({ layer, head }) => ({ layer, head, score: t[layer][head] }));
  const topOurs = top(ours);
  const topRef = top(theirs);
  const rho: Record<string, number> = {};
  for (const [field, metric] of Object.entries(REFERENCE_FIELDS)) {
    const r = table(ref, field, L);
    const m = atlas.metrics[metric];
    if (!r || !m) continue;
    const pairs = m.flat().map((v, i) => [v, r.flat()[i]] as const).filter(([a, b]) => Number.isFinite(a) && Number.isFinite(b));
    rho[metric] = spearman(pairs.map((p) => p[0]), pairs.map((p) => p[1]));
  }
  const out: ReferenceComparison = {
    retrievalMaxAbsDiff: worst,
    retrievalOutside: outside,
    tolerance,
    topRetrieval: { ours: topOurs, reference: topRef, sameOrder: topOurs.every((h, i) => h.layer === topRef[i]?.layer && h.head === topRef[i]?.head) },
    spearman: rho,
    baseAccuracy: { ours: atlas.niah?.accuracy, reference: typeof ref.base_accuracy === 'number' ? ref.base_accuracy : undefined },
  };
  const v = atlas.validation;
  const refAbl = (ref.ablation as Record<string, { top: number; random: number }> | undefined)?.[String(v?.k ?? k)];
  if (v || refAbl) out.ablation = { k: v?.k ?? k, ours: v ? { top: v.top.accuracy, random: v.random.accuracy } : undefined, reference: refAbl };
  return out;
}
