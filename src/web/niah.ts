/**
 * The needle sweep behind the "Needles & KV" view: accuracy over a context × depth grid with full
 * attention, and accuracy against the KV bytes kept by full, streaming (several windows) and duo
 * (several full-head shares) at one context length. The samples are the project's standard needle set
 * (`eval/niahSet.ts`), running and scoring them is `eval/niahRun.ts`, the policies are `kv/`'s, duo's
 * per-KV-head scores come from the atlas (or a quick on-the-fly run, `atlas/kvScores.ts`). This file
 * only chooses sizes a browser session can wait for, and reports progress.
 */
import { HeadwiseError } from '../errors.js';
import { kvHeadScores, type AtlasFile } from '../atlas/file.js';
import { computeKvHeadScores } from '../atlas/kvScores.js';
import { loadHaystack } from '../eval/haystack.js';
import { niahSamples } from '../eval/niahSet.js';
import { runNiah } from '../eval/niahRun.js';
import { cacheSetup, DEFAULT_SINK } from '../kv/policy.js';
import type { CacheSetup } from '../runtime/generate.js';
import type { Model } from '../runtime/model.js';
import type { NiahView } from './api.js';
import type { ProgressReporter } from './jobs.js';

export interface NiahSweepOptions {
  quick: boolean;
  /** Supplies duo's per-KV-head scores (its retrieval metric); without one they are computed. */
  atlas?: AtlasFile | null;
  seed?: number;
}

const DUO_WINDOW = 32;

/** Runs the sweep; `report` hears after every sample. */
export async function niahSweep(model: Model, opts: NiahSweepOptions, report: ProgressReporter): Promise<Omit<NiahView, 'source'>> {
  const tokenizer = model.tokenizer;
  if (!tokenizer) throw new HeadwiseError(`${model.ckpt.dir}: no tokenizer.json, cannot build needle prompts`);
  const c = model.config;
  const seed = opts.seed ?? 0;
  const fit = (xs: number[]) => xs.filter((n) => n + 16 <= c.maxPositions);
  const contexts = fit(opts.quick ? [128, 256, 512] : [256, 512, 1024, 2048]);
  if (contexts.length === 0) throw new HeadwiseError(`the model's context of ${c.maxPositions} tokens is too short for a needle prompt`);
  const depths = opts.quick ? [0, 0.5, 1] : [0, 0.25, 0.5, 0.75, 1];
  const perContext = opts.quick ? 6 : 20;
  const kvContext = fit([opts.quick ? 256 : 1024]).at(0) ?? contexts[contexts.length - 1];
  const kvDepths = [0, 0.25, 0.5, 0.75, 1];
  const kvSamples = opts.quick ? 10 : 40;
  const haystack = loadHaystack();

  const gridItems = niahSamples(tokenizer, haystack, { contextTokens: contexts, depths, samples: perContext, seed });
  const kvItems = niahSamples(tokenizer, haystack, { contextTokens: [kvContext], depths: kvDepths, samples: kvSamples, seed: seed + 1 });

  const settings: { policy: string; setting: string; setup: CacheSetup }[] = [{ policy: 'full', setting: 'full', setup: cacheSetup(c, { policy: 'full' }) }];
  for (const window of (opts.quick ? [16, 32, 64] : [16, 32, 64, 128, 256]).filter((w) => w < kvContext)) {
    settings.push({ policy: 'streaming', setting: `window ${window}`, setup: cacheSetup(c, { policy: 'streaming', window }) });
  }
  const duoShares = [0.25, 0.5];
  const total = gridItems.length + (settings.length + duoShares.length) * kvItems.length;
  let done = 0;
  const run = async (label: string, items: typeof gridItems, setup: CacheSetup) => {
    const before = done;
    return runNiah(model, items, {
      cache: setup,
      onProgress: (p) => {
        done = before + p.done;
        report(done / total, `${label}: ${p.done} of ${p.total} prompts`);
      },
    });
  };

  const grid = await run('needle grid, full attention', gridItems, settings[0].setup);

  let duoSource = 'KV heads ranked by the atlas retrieval score';
  let scores: number[][];
  if (opts.atlas?.metrics.retrieval) {
    scores = kvHeadScores(opts.atlas, 'retrieval', c);
  } else {
    report(done / total, 'duo: scoring KV heads (no atlas loaded)');
    scores = await computeKvHeadScores(model, 'retrieval', { samples: opts.quick ? 8 : 16, contextTokens: kvContext, seed });
    duoSource = 'KV heads ranked by a quick retrieval run';
  }
  for (const fullHeads of duoShares) {
    settings.push({ policy: 'duo', setting: `${fullHeads * 100}% full`, setup: cacheSetup(c, { policy: 'duo', window: DUO_WINDOW, fullHeads, kvHeadScores: scores }) });
  }

  const kv: NonNullable<NiahView['kv']> = [];
  for (const st of settings) {
    const r = await run(`KV sweep, ${st.policy} ${st.setting === st.policy ? '' : st.setting}`.trim(), kvItems, st.setup);
    kv.push({ policy: st.policy, setting: st.setting, kvBytes: r.kvBytesHeld, kvBytesFull: r.kvBytesFull, accuracy: r.accuracy, contextTokens: kvContext, samples: kvItems.length });
  }
  return {
    grid: {
      contextTokens: grid.grid.contextTokens,
      depths: grid.grid.depths,
      accuracy: grid.grid.accuracy.map((row) => row.map((x) => (Number.isNaN(x) ? null : x))),
      samplesPerCell: Math.round(perContext / depths.length),
    },
    kv,
    settings: { needles: 'mixed: one in three a pass key, the rest multi-key (4 keys)', seed, samplesPerContext: perContext, kvContextTokens: kvContext, kvSamples: kvItems.length, sink: DEFAULT_SINK, duoWindow: DUO_WINDOW, duo: duoSource },
  };
}
