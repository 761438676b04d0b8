/**
 * `headwise steer-profile`: rank heads by how much PASTA steering of each head alone makes the model
 * follow a highlighted needle over a conflicting one (interventions/steerProfile.ts), write a spec with
 * the top heads, and optionally check that spec on held-out prompts (share of greedy answers that follow
 * the highlighted needle, with and without steering).
 */
import { Command } from 'commander';
import { HeadwiseError, UsageError } from '../errors.js';
import { checkOutputFile, writeFileAtomic } from '../io/outputPath.js';
import {
  conflictingTasks,
  followRate,
  highlightSpec,
  parseHeadList,
  modelShape,
  steerProfile,
  steerProfileSpec,
  specToJson,
  STEER_PROFILE_DEFAULTS,
  type FollowRate,
} from '../interventions/index.js';
import { flagValue } from './interventionFlags.js';
import { floatArg, intArg, loadModel, modelOptions, printJson, progressBar, type ModelFlags } from './common.js';

interface Flags extends ModelFlags {
  samples: number;
  context: number;
  seed: number;
  alpha: number;
  top: number;
  heads?: string;
  out?: string;
  eval: number;
  evalSeed: number;
  json?: boolean;
}

export function steerProfileCommand(): Command {
  const d = STEER_PROFILE_DEFAULTS;
  const cmd = new Command('steer-profile')
    .description('rank heads by how much PASTA steering each alone helps on conflicting needles; write a spec with the top heads')
    .option('--samples <n>', 'conflicting-needle prompts to profile on', intArg(1, 10_000), d.samples)
    .option('--context <tokens>', 'prompt length in tokens', intArg(64), d.contextTokens)
    .option('--seed <n>', 'seed of the first profiling prompt (keep evaluation seeds apart)', intArg(0), d.seed)
    .option('--alpha <α>', 'PASTA α: attention outside the highlighted needle × α', floatArg(0, 1, { exclusiveMin: true }), d.alpha)
    .option('--top <n>', 'heads in the written spec', intArg(1), d.top)
    .option('--heads <heads>', 'candidate heads, e.g. "4:*,5:*" (default: every head)')
    .option('-o, --out <file>', 'write the spec (JSON) here')
    .option('--eval <n>', 'then check the spec on n held-out prompts: share of answers that follow the highlighted needle, steered vs not', intArg(0, 10_000), 0)
    .option('--eval-seed <n>', 'seed of the first held-out prompt', intArg(0), 0)
    .option('--json', 'print one JSON object');
  modelOptions(cmd);
  return cmd.action(async (flags: Flags) => {
    if (flags.out !== undefined) checkOutputFile(flags.out, '--out');
    const model = await loadModel(flags);
    try {
      if (!model.tokenizer) throw new HeadwiseError(`${model.ckpt.dir}: no tokenizer.json, needed to build needle prompts`);
      const shape = modelShape(model);
      const heads = flags.heads === undefined ? undefined : flagValue(() => parseHeadList(flags.heads!, shape, '--heads'));
      if (flags.top > (heads?.length ?? shape.numLayers * shape.numHeads)) {
        throw new UsageError(`--top: ${flags.top} is more than the ${heads?.length ?? shape.numLayers * shape.numHeads} candidate heads`);
      }
      if (flags.eval > 0 && rangesOverlap(flags.seed, flags.samples, flags.evalSeed, flags.eval)) {
        throw new UsageError(`--eval-seed: held-out seeds ${flags.evalSeed}..${flags.evalSeed + flags.eval - 1} overlap the profiling seeds ${flags.seed}..${flags.seed + flags.samples - 1}`);
      }
      const options = { samples: flags.samples, contextTokens: flags.context, seed: flags.seed, alpha: flags.alpha, heads };
      const candidates = heads?.length ?? shape.numLayers * shape.numHeads;
      const bar = progressBar('steer-profile', flags.samples * (candidates + 1));
      const profile = await steerProfile(model, { ...options, onProgress: (_done, _total, what) => bar.tick(1, what) });
      bar.stop();
      const spec = steerProfileSpec(model, profile, flags.top);
      const top = profile.heads.slice(0, flags.top);
      if (flags.out) writeFileAtomic(flags.out, specToJson(spec));

      let evaluation: { seed: number; samples: number; contextTokens: number; heads: string[]; unsteered: FollowRate; steered: FollowRate } | undefined;
      if (flags.eval > 0) {
        const tasks = conflictingTasks(model, { samples: flags.eval, contextTokens: flags.context, seed: flags.evalSeed });
        const evalBar = progressBar('evaluate', 2 * tasks.length);
        const unsteered = await followRate(model, tasks, null, () => evalBar.tick());
        const steered = await followRate(model, tasks, (task) => highlightSpec(model, top, task, flags.alpha), () => evalBar.tick());
        evalBar.stop();
        evaluation = { seed: flags.evalSeed, samples: tasks.length, contextTokens: flags.context, heads: top.map((h) => `${h.layer}:${h.head}`), unsteered, steered };
      }

      if (flags.json) {
        printJson({ model: model.name, ...profile, top: top.map((h) => `${h.layer}:${h.head}`), spec, out: flags.out ?? null, evaluation: evaluation ?? null });
        return;
      }
      const fmt = (x: number) => (x >= 0 ? '+' : '') + x.toFixed(2);
      const lines = [
        `steer-profile of ${model.name}: ${profile.settings.candidates} heads × ${profile.settings.samples} conflicting-needle prompts (${flags.context} tokens, seeds ${flags.seed}..${flags.seed + flags.samples - 1}, α=${flags.alpha})`,
        `baseline: margin ${fmt(profile.baseline.margin)} nats (highlighted value − other), highlighted preferred in ${pct(profile.baseline.prefer)}`,
        'rank  head  gain (nats)  margin  preferred',
        ...profile.heads.slice(0, Math.max(flags.top, 10)).map((h, i) =>
          `${String(i + 1).padStart(4)}  ${`${h.layer}:${h.head}`.padEnd(5)} ${fmt(h.gain).padStart(11)}  ${fmt(h.margin).padStart(6)}  ${pct(h.prefer).padStart(9)}${i < flags.top ? '  *' : ''}`,
        ),
      ];
      if (evaluation) {
        lines.push(
          `held-out (${evaluation.samples} prompts, seeds ${flags.evalSeed}..${flags.evalSeed + flags.eval - 1}): answers following the highlighted needle ` +
            `${pct(evaluation.unsteered.highlighted)} unsteered → ${pct(evaluation.steered.highlighted)} with PASTA on ${evaluation.heads.join(', ')}`,
        );
      }
      lines.push(flags.out ? `spec with the top ${flags.top} heads written to ${flags.out}` : `spec:\n${specToJson(spec).trimEnd()}`);
      process.stdout.write(lines.join('\n') + '\n');
    } finally {
      await model.dispose();
    }
  });
}

function pct(x: number): string {
  return `${Math.round(x * 100)}%`;
}

function rangesOverlap(a: number, n: number, b: number, m: number): boolean {
  return a < b + m && b < a + n;
}
