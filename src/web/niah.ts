/**
 * The needle sweep behind the "Needles & KV" view: pass-key accuracy over a context × depth grid with
 * full attention, and accuracy against the KV bytes kept by full, streaming (several windows) and duo
 * (several full-head shares, ranked by the atlas's retrieval score) at one context length. Samples
 * come from `eval/` (seeded, so a rerun gives the same prompts), policies from `kv/`, scoring from
 * `eval/match.ts`; this file only chooses the sizes a browser session can wait for and reports progress.
 */
import { HeadwiseError } from '../errors.js';
import { kvHeadScores, type AtlasFile } from '../atlas/file.js';
import { loadHaystack } from '../eval/haystack.js';
import { niahAccuracy, niahGrid, type NiahOutcome } from '../eval/grid.js';
import { exactMatch } from '../eval/match.js';
import type { NeedleSample } from '../eval/needle.js';
import { cacheSetup } from '../kv/policy.js';
import { generate, type CacheSetup } from '../runtime/generate.js';
import type { Model } from '../runtime/model.js';
import type { NiahView } from './api.js';
import type { ProgressReporter } from './jobs.js';

export interface NiahSweepOptions {
  quick: boolean;
  /** Supplies duo's per-KV-head scores; duo points are left out without one. */
  atlas?: AtlasFile | null;
  seed?: number;
}

/** Runs the sweep; `report` hears about every generated sample. */
export async function niahSweep(model: Model, opts: NiahSweepOptions, report: ProgressReporter): Promise<Omit<NiahView, 'source'>> {
  const tokenizer = model.tokenizer;
  if (!tokenizer) throw new HeadwiseError(`${model.ckpt.dir}: no tokenizer.json, cannot build needle prompts`);
  const c = model.config;
  const seed = opts.seed ?? 0;
  const fit = (xs: number[]) => xs.filter((n) => n + 16 <= c.maxPositions);
  const contexts = fit(opts.quick ? [128, 256, 512] : [128, 256, 512, 1024, 2048]);
  if (contexts.length === 0) throw new HeadwiseError(`the model's context of ${c.maxPositions} tokens is too short for a needle prompt`);
  const depths = opts.quick ? [0, 0.5, 1] : [0, 0.25, 0.5, 0.75, 1];
  const samplesPerCell = opts.quick ? 2 : 4;
  const kvContext = fit([opts.quick ? 256 : 512]).at(0) ?? contexts[contexts.length - 1];
  const haystack = loadHaystack();
  const needle = { variant: 'passKey' as const };

  const gridCells = niahGrid(tokenizer, haystack, { contextTokens: contexts, depths, samplesPerCell, seed, needle });
  const kvCells = niahGrid(tokenizer, haystack, { contextTokens: [kvContext], depths: [0, 0.25, 0.5, 0.75, 1], samplesPerCell: opts.quick ? 1 : samplesPerCell, seed: seed + 1, needle });
  const kvSamples = kvCells.flatMap((cell) => cell.samples);

  const settings: { policy: string; setting: string; setup: CacheSetup }[] = [{ policy: 'full', setting: 'full', setup: cacheSetup(c, { policy: 'full' }) }];
  for (const window of (opts.quick ? [16, 32, 64] : [16, 32, 64, 128, 256]).filter((w) => w < kvContext)) {
    settings.push({ policy: 'streaming', setting: `window ${window}`, setup: cacheSetup(c, { policy: 'streaming', sink: 4, window }) });
  }
  const scores = opts.atlas?.metrics.retrieval ? kvHeadScores(opts.atlas, 'retrieval', c) : null;
  if (scores) {
    for (const fullHeads of [0.25, 0.5]) {
      settings.push({ policy: 'duo', setting: `${fullHeads * 100}% full`, setup: cacheSetup(c, { policy: 'duo', sink: 4, window: 32, fullHeads, kvHeadScores: scores }) });
    }
  }

  const total = gridCells.reduce((n, cell) => n + cell.samples.length, 0) + settings.length * kvSamples.length;
  let done = 0;
  const answer = async (sample: NeedleSample, setup: CacheSetup) => {
    // The pass key is the first number of the answer; 8 tokens hold it for keys of up to 7 digits.
    const r = await generate(model, sample.inputIds, { maxNewTokens: 8, temperature: 0, cache: setup });
    done++;
    return r;
  };

  const outcomes: NiahOutcome[] = [];
  for (const cell of gridCells) {
    report(done / total, `needle grid: ${cell.contextTokens} tokens, depth ${cell.depth}`);
    for (const s of cell.samples) {
      const r = await answer(s, settings[0].setup);
      outcomes.push({ contextTokens: cell.contextTokens, depth: cell.depth, correct: exactMatch(r.text, s) });
    }
  }
  const acc = niahAccuracy(outcomes);

  const kv: NonNullable<NiahView['kv']> = [];
  for (const st of settings) {
    report(done / total, `KV sweep: ${st.policy} (${st.setting}) at ${kvContext} tokens`);
    let right = 0;
    let bytes = 0;
    let bytesFull = 0;
    for (const s of kvSamples) {
      const r = await answer(s, st.setup);
      if (exactMatch(r.text, s)) right++;
      bytes += r.kvBytes;
      bytesFull += r.kvBytesFull;
    }
    const n = kvSamples.length;
    kv.push({ policy: st.policy, setting: st.setting, kvBytes: bytes / n, kvBytesFull: bytesFull / n, accuracy: right / n, contextTokens: kvContext });
  }
  return {
    grid: {
      contextTokens: acc.contextTokens,
      depths: acc.depths,
      accuracy: acc.accuracy.map((row) => row.map((x) => (Number.isNaN(x) ? null : x))),
      samplesPerCell,
    },
    kv,
    settings: { variant: 'passKey', seed, samplesPerCell, kvContextTokens: kvContext, kvSamples: kvSamples.length, sink: 4, duoWindow: 32, duo: scores ? 'KV heads ranked by the atlas retrieval score' : 'left out (no atlas)' },
  };
}
