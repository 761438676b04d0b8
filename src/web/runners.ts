/**
 * The long jobs `headwise serve` offers, as the server's runner functions: an atlas (`atlas/run.ts`,
 * small sample counts when quick) and the needle sweep (`niah.ts`). Progress from the runners is turned
 * into one line a person can read next to a progress bar.
 */
import { runAtlas, type AtlasOptions } from '../atlas/run.js';
import { niahSweep } from './niah.js';
import type { AtlasRunner, NiahRunner } from './server.js';

/** A quick atlas: seconds on the bundled model, enough to rank its heads. */
export const QUICK_ATLAS: AtlasOptions = { contextTokens: 256, samples: 20, patternSamples: 8, harmSamples: 4, ablationSamples: 2, probes: 4 };

export const atlasRunner: AtlasRunner = ({ model, quick }, report) => {
  const opts: AtlasOptions = quick ? { ...QUICK_ATLAS, contextTokens: Math.min(QUICK_ATLAS.contextTokens!, model.config.maxPositions - 16) } : {};
  report(0, 'compiling graphs');
  return runAtlas(model, {
    ...opts,
    onProgress: (p) => {
      const what = p.phase === 'needles' ? 'needle prompts' : 'induction probes';
      const acc = p.accuracy === undefined ? '' : `, answers right so far ${Math.round(p.accuracy * 100)}%`;
      report(p.done / p.total, `${what}: step ${p.done} of ${p.total}${acc}`);
    },
  });
};

export const niahRunner: NiahRunner = ({ model, quick, atlas }, report) => niahSweep(model, { quick, atlas }, report);
