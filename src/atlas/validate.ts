/**
 * Causal validation of an atlas (methods.md §1): zero the outputs of the top-k heads of a metric
 * (retrieval by default) and of k random heads (seeded, never one of the top k), re-run the atlas's
 * needle prompts greedily (the outcome read off one teacher-forced pass per prompt, as the atlas reads
 * its own, `eval/niahRun.ts`), and compare needle accuracy with the unablated model. Zeroing the top
 * retrieval heads should break retrieval; zeroing random heads should not.
 */
import { HeadwiseError } from '../errors.js';
import type { HookOptions } from '../graph/hooks.js';
import { topHeads } from '../heads/index.js';
import type { NiahItem } from '../eval/niahSet.js';
import { runNiah, type NiahProgress } from '../eval/niahRun.js';
import { deriveSeed, Random } from '../eval/random.js';
import type { HeadId } from '../runtime/capture.js';
import type { HookProvider } from '../runtime/forward.js';
import { combineHookProviders, unionHookOptions, zeroHeads, type HookBinder } from '../runtime/hookSet.js';
import type { Model } from '../runtime/model.js';
import type { AtlasFile, AtlasValidation } from './file.js';
import { atlasNeedleSet } from './run.js';

export interface ValidateOptions {
  /** Heads to zero in each arm (default 2). */
  k?: number;
  /** Seed of the random arm (default: the atlas's seed). */
  seed?: number;
  /** Metric whose top heads are zeroed (default retrieval). */
  metric?: string;
  /** Needle prompts (default: the atlas's own). */
  items?: NiahItem[];
  /** Unablated accuracy on `items`; default the atlas's own NIAH accuracy when neither the atlas nor this run has hooks, else measured. */
  base?: number;
  /** A caller's hooks (an intervention), applied in every arm. */
  hookOptions?: HookOptions;
  hooks?: HookProvider;
  /** Hooks bound to each prompt (an intervention with prompt spans), applied before the zeroed heads. */
  bindHooks?: HookBinder;
  onProgress?: (p: NiahProgress & { arm: 'base' | 'top' | 'random' }) => void;
}

/** k random heads of the model, none of them in `exclude`, from a seeded draw. */
export function randomHeads(numLayers: number, numHeads: number, k: number, seed: number, exclude: HeadId[]): HeadId[] {
  const taken = new Set(exclude.map((h) => `${h.layer}:${h.head}`));
  const pool: HeadId[] = [];
  for (let layer = 0; layer < numLayers; layer++) for (let head = 0; head < numHeads; head++) if (!taken.has(`${layer}:${head}`)) pool.push({ layer, head });
  if (k > pool.length) throw new HeadwiseError(`cannot draw ${k} random heads: only ${pool.length} heads are left outside the top ${exclude.length}`);
  return new Random(deriveSeed(seed, 0x7a11d)).sample(pool, k).sort((a, b) => a.layer - b.layer || a.head - b.head);
}

export async function validateAtlas(model: Model, atlas: AtlasFile, opts: ValidateOptions = {}): Promise<AtlasValidation> {
  const c = model.config;
  const k = opts.k ?? 2;
  const metric = opts.metric ?? 'retrieval';
  const seed = opts.seed ?? Number(atlas.settings.seed ?? 0);
  const table = atlas.metrics[metric];
  if (!table) throw new HeadwiseError(`atlas has no metric "${metric}" to validate`);
  if (!Number.isInteger(k) || k < 1 || k > c.numLayers * c.numHeads) throw new HeadwiseError(`--top-k must be from 1 to ${c.numLayers * c.numHeads} (got ${k})`);
  const items = opts.items ?? atlasNeedleSet(model, atlas);
  const top = topHeads(table, k);
  const random = randomHeads(c.numLayers, c.numHeads, k, seed, top);
  const hookOptions = unionHookOptions(opts.hookOptions, { capturePattern: [], captureZ: [], headHooks: true, scoreBias: [], act: [] });
  const arm = async (which: 'base' | 'top' | 'random', heads: HeadId[]) =>
    runNiah(model, items, {
      hookOptions: heads.length ? hookOptions : opts.hookOptions,
      hooks: heads.length ? combineHookProviders(opts.hooks, zeroHeads(heads, c.numHeads)) : opts.hooks,
      bindHooks: opts.bindHooks,
      readout: 'teacherForced',
      onProgress: (p) => opts.onProgress?.({ ...p, arm: which }),
    });
  const sameRun = opts.items === undefined && !opts.hooks && !opts.bindHooks && !atlas.settings.interventions;
  const base = opts.base ?? (sameRun ? atlas.niah?.accuracy : undefined) ?? (await arm('base', [])).accuracy;
  const topRun = await arm('top', top);
  const randomRun = await arm('random', random);
  return {
    metric,
    k,
    seed,
    samples: items.length,
    base,
    top: { heads: top, accuracy: topRun.accuracy, grid: topRun.grid.accuracy },
    random: { heads: random, accuracy: randomRun.accuracy, grid: randomRun.grid.accuracy },
  };
}
