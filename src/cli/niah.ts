/**
 * `headwise niah`: needle-in-a-haystack accuracy of a model over a context × depth grid, greedy exact
 * match, with a KV cache policy (`--kv`) and interventions (`--ablate L:H,...`, `--intervene FILE`,
 * `--highlight TEXT`, bound to each prompt). Building the samples and running them is
 * `eval/niahSet.ts` and `eval/niahRun.ts`; this file parses flags and prints.
 */
import { Command, InvalidArgumentError, Option } from 'commander';
import { HeadwiseError, UsageError } from '../errors.js';
import { loadHaystack } from '../eval/haystack.js';
import { DEFAULT_DEPTHS, NEEDLE_MIXES, niahSamples, type NeedleMix } from '../eval/niahSet.js';
import { runNiah } from '../eval/niahRun.js';
import { intArg, loadModel, modelOptions, printJson, progressBar, type ModelFlags } from './common.js';
import { interventionOptions, type InterventionFlags } from './interventionFlags.js';
import { interventionBinder } from './promptHooks.js';
import { kvOptions, kvReport, resolveCacheSetup, type KvFlags } from './kvFlags.js';
import type { Model } from '../runtime/model.js';

interface Flags extends ModelFlags, KvFlags, InterventionFlags {
  context?: number[];
  samples: number;
  depths: number[];
  seed: number;
  mix: NeedleMix;
  keys: number;
  maxNewTokens: number;
  haystack?: string;
  json?: boolean;
}

/** "512,1024" → [512, 1024]: positive integers, comma-separated. */
export function intListArg(value: string): number[] {
  const items = value.split(',').map((s) => s.trim());
  if (items.some((s) => !/^\d+$/.test(s) || Number(s) < 1)) throw new InvalidArgumentError('expected positive integers separated by commas, e.g. 512,1024');
  return items.map(Number);
}

/** "0,0.5,1" → [0, 0.5, 1]: numbers in [0, 1], comma-separated. */
export function depthListArg(value: string): number[] {
  const items = value.split(',').map((s) => s.trim());
  const nums = items.map(Number);
  if (items.some((s) => s === '') || nums.some((n) => !Number.isFinite(n) || n < 0 || n > 1)) {
    throw new InvalidArgumentError('expected depths from 0 to 1 separated by commas, e.g. 0,0.5,1');
  }
  return nums;
}

function pct(x: number): string {
  return Number.isNaN(x) ? '  n/a' : `${(100 * x).toFixed(0).padStart(4)}%`;
}

export function niahCommand(): Command {
  const cmd = new Command('niah')
    .description('needle-in-a-haystack accuracy over a context × depth grid (greedy, exact match of the value)')
    .option('-c, --context <n,...>', 'prompt length(s) in tokens (default 1024, or the model context if shorter)', intListArg)
    .option('-s, --samples <n>', 'samples per context length, spread evenly over the depths', intArg(1, 100_000), 96)
    .option('--depths <d,...>', 'needle depths, 0 = start of the haystack, 1 = right before the question', depthListArg, [...DEFAULT_DEPTHS])
    .option('--seed <n>', 'seed of the needle prompts', intArg(0), 0)
    .addOption(new Option('--mix <mix>', 'needle variants: mixed = one in three pass key, the rest multi-key').choices(NEEDLE_MIXES as string[]).default('mixed'))
    .option('--keys <n>', 'needles in a multi-key prompt', intArg(1, 64), 4)
    .option('-n, --max-new-tokens <n>', 'most tokens to decode per answer (decoding stops once the value is settled)', intArg(1, 256), 12)
    .option('--haystack <file>', 'haystack text file (default: the bundled King James Bible)')
    .option('--json', 'print one JSON object');
  modelOptions(cmd);
  kvOptions(cmd);
  interventionOptions(cmd);
  return cmd.action(async (flags: Flags) => {
    const model = await loadModel(flags);
    try {
      const c = model.config;
      if (!model.tokenizer) throw new HeadwiseError(`${model.ckpt.dir}: no tokenizer.json, cannot build needle prompts`);
      const contexts = flags.context ?? [Math.min(1024, c.maxPositions - 16)];
      for (const n of contexts) {
        if (n + 16 > c.maxPositions) throw new UsageError(`--context ${n} leaves no room for the answer in the model's context of ${c.maxPositions} tokens`);
      }
      const intervention = interventionBinder(model, flags);
      const cache = await resolveCacheSetup(model, flags);
      const items = niahSamples(model.tokenizer, loadHaystack(flags.haystack), {
        contextTokens: contexts,
        depths: flags.depths,
        samples: flags.samples,
        seed: flags.seed,
        mix: flags.mix,
        keyCount: flags.keys,
      });
      const bar = progressBar('niah', items.length);
      const t0 = performance.now();
      const result = await runNiah(model, items, {
        cache: cache.setup,
        bindHooks: intervention?.bind(cache.setup),
        maxNewTokens: flags.maxNewTokens,
        onProgress: (p) => bar.tick(1, `acc ${(100 * p.correct / p.done).toFixed(0)}%`),
      });
      bar.stop();
      const seconds = (performance.now() - t0) / 1000;
      const { grid } = result;
      if (flags.json) {
        printJson({
          model: model.name,
          accuracy: result.accuracy,
          samples: result.samples,
          // per prompt (means): bytes the KV buffers allocate and hold (measured), full attention's for the
          // same tokens, their ratio and r + (1 − r)(S + W)/N at the mean prompt length
          ...kvReport(model, flags, cache.setup, result.kvBytes, meanTokens(model, result.kvBytesFull), result.kvBytesFull, { ratio: result.kvAttendedRatio }),
          kvBytesHeld: result.kvBytesHeld,
          kv: cache.describe,
          interventions: intervention?.describe ?? [],
          grid: { contextTokens: grid.contextTokens, depths: grid.depths, accuracy: grid.accuracy, counts: grid.counts, byContext: grid.byContext, byDepth: grid.byDepth },
          settings: { samplesPerContext: flags.samples, seed: flags.seed, mix: flags.mix, keys: flags.keys, maxNewTokens: flags.maxNewTokens },
          seconds: Math.round(seconds * 10) / 10,
        });
        return;
      }
      const lines = [
        `${model.name}: needle accuracy ${pct(result.accuracy).trim()} over ${result.samples} prompts (${seconds.toFixed(1)} s)` +
          (intervention ? `, with ${intervention.describe.join('; ')}` : ''),
        `KV cache ${flags.kv}: ${(result.kvBytesHeld / 2 ** 20).toFixed(2)} MiB held per prompt vs ${(result.kvBytesFull / 2 ** 20).toFixed(2)} MiB with full attention`,
        '',
        `context \\ depth ${grid.depths.map((d) => d.toFixed(2).padStart(5)).join(' ')}   all`,
        ...grid.contextTokens.map((n, i) => `${String(n).padStart(15)} ${grid.accuracy[i].map(pct).join(' ')} ${pct(grid.byContext[i])}`),
      ];
      process.stdout.write(lines.join('\n') + '\n');
    } finally {
      await model.dispose();
    }
  });
}

/** Tokens whose full-attention KV cache takes `fullBytes`. */
function meanTokens(model: Model, fullBytes: number): number {
  const c = model.config;
  return fullBytes / (2 * c.numLayers * c.numKvHeads * c.headDim * 4);
}
