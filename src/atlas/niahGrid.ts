/**
 * More rows for an atlas's needle accuracy grid: the atlas measures accuracy at its own context length
 * only; `extendNiahGrid` runs the same needle mix greedily at other context lengths (`eval/niahRun.ts`)
 * and merges the rows in, so the report shows the usual context × depth picture.
 */
import { HeadwiseError } from '../errors.js';
import { loadHaystack } from '../eval/haystack.js';
import { niahSamples, type NeedleMix } from '../eval/niahSet.js';
import { runNiah, type NiahProgress } from '../eval/niahRun.js';
import type { HookBinder } from '../runtime/hookSet.js';
import type { Model } from '../runtime/model.js';
import type { AtlasFile, AtlasNiah } from './file.js';

export interface ExtendGridOptions {
  /** Samples per added context length (default: the atlas's). */
  samples?: number;
  haystack?: string;
  bindHooks?: HookBinder;
  onProgress?: (p: NiahProgress) => void;
}

/** Rows of `b` join `a`'s over the union of their depths; a context length in both keeps `a`'s row. */
export function mergeNiahGrids(a: AtlasNiah, b: AtlasNiah): AtlasNiah {
  const depths = [...new Set([...a.depths, ...b.depths])].sort((x, y) => x - y);
  const rows = new Map<number, { grid: number[]; counts: number[] }>();
  for (const g of [b, a]) {
    g.contextTokens.forEach((n, i) => {
      const grid = depths.map((d) => (g.depths.includes(d) ? g.grid[i][g.depths.indexOf(d)] : NaN));
      const counts = depths.map((d) => (g.depths.includes(d) ? g.counts[i][g.depths.indexOf(d)] : 0));
      rows.set(n, { grid, counts });
    });
  }
  const contextTokens = [...rows.keys()].sort((x, y) => x - y);
  const grid = contextTokens.map((n) => rows.get(n)!.grid);
  const counts = contextTokens.map((n) => rows.get(n)!.counts);
  let right = 0;
  let total = 0;
  grid.forEach((row, i) => row.forEach((acc, j) => {
    if (counts[i][j] > 0) {
      right += acc * counts[i][j];
      total += counts[i][j];
    }
  }));
  return { ...a, depths, contextTokens, grid, counts, samples: total, accuracy: total ? right / total : NaN };
}

/** Runs the atlas's needle mix at `contexts` and merges the rows into `atlas.niah` (in place). */
export async function extendNiahGrid(model: Model, atlas: AtlasFile, contexts: number[], opts: ExtendGridOptions = {}): Promise<AtlasNiah> {
  if (!atlas.niah) throw new HeadwiseError('the atlas has no needle grid to extend');
  const s = atlas.settings as { samples: number; seed: number; depths: number[]; mix?: NeedleMix; keyCount?: number };
  const c = model.config;
  for (const n of contexts) {
    if (n + 16 > c.maxPositions) throw new HeadwiseError(`--grid-contexts ${n} leaves no room for the answer in the model's context of ${c.maxPositions} tokens`);
  }
  const items = niahSamples(model.tokenizer!, opts.haystack ?? loadHaystack(), {
    contextTokens: contexts,
    depths: s.depths,
    samples: opts.samples ?? s.samples,
    seed: s.seed,
    mix: s.mix,
    keyCount: s.keyCount,
  });
  const r = await runNiah(model, items, { bindHooks: opts.bindHooks, onProgress: opts.onProgress });
  const added: AtlasNiah = { accuracy: r.accuracy, samples: r.samples, contextTokens: r.grid.contextTokens, depths: r.grid.depths, grid: r.grid.accuracy, counts: r.grid.counts };
  const merged = mergeNiahGrids(atlas.niah, added);
  // The headline accuracy stays the atlas's own (the prompts it measured heads on); the grid grows.
  atlas.niah = { ...merged, accuracy: atlas.niah.accuracy, samples: atlas.niah.samples, method: atlas.niah.method };
  return atlas.niah;
}
