/**
 * `headwise importance`: every head ablated on the caller's prompts (`patching/importance.ts`), the
 * metric's change with a 95% interval over prompts, largest first; `--json` prints the
 * `headwise.importance/1` object of `patching/format.ts`. This file parses flags and prints.
 */
import fs from 'node:fs';
import { Command, Option } from 'commander';
import { HeadwiseError } from '../errors.js';
import { modelShape } from '../interventions/index.js';
import { parseHeadList } from '../interventions/spec.js';
import { ABLATION_MODES, ABLATION_SCOPES, type AblationMode, type AblationScope } from '../patching/format.js';
import { headImportance, parseImportanceFile } from '../patching/importance.js';
import { METRICS, type MetricName } from '../patching/metrics.js';
import { intArg, loadModel, modelOptions, printJson, progressBar, type ModelFlags } from './common.js';

interface Flags extends ModelFlags {
  prompts: string;
  metric?: MetricName;
  ablation: AblationMode;
  scope: AblationScope;
  heads?: string;
  top: number;
  json?: boolean;
}

export function importanceCommand(): Command {
  const cmd = new Command('importance')
    .description('rank heads by how much ablating each one changes a metric on your prompts, with 95% intervals over prompts')
    .requiredOption('--prompts <file.jsonl>', 'one {"prompt","answer"[,"wrong"]} or {"clean","corrupt","answer","wrong"} object per line')
    .addOption(new Option('--metric <metric>', 'drop of the logit difference answer − wrong, drop of the answer log-prob, or KL of the output (default: logit-diff when every line has wrong, else logprob)').choices(METRICS as string[]))
    .addOption(new Option('--ablation <mode>', 'zero the head, set it to its mean output over the prompts, or resample it from the corrupt (or next) prompt').choices(ABLATION_MODES as string[]).default('zero'))
    .addOption(new Option('--scope <scope>', 'ablate at every position (exact head removal, one prefill per head) or only at the answer rows (shared prefix, fast)').choices(ABLATION_SCOPES as string[]).default('all'))
    .option('--heads <L:H,...>', 'heads to rank (default all)')
    .option('--top <n>', 'heads to print without --json', intArg(1), 10)
    .option('--json', 'print {"metric", "heads": [{layer, head, effect, ci}, ...]} and the run settings as one JSON object');
  return modelOptions(cmd).action(async (flags: Flags) => {
    let text: string;
    try {
      text = fs.readFileSync(flags.prompts, 'utf8');
    } catch (e) {
      throw new HeadwiseError(`--prompts ${flags.prompts}: cannot read (${(e as NodeJS.ErrnoException).code})`);
    }
    const items = parseImportanceFile(text, flags.prompts);
    const model = await loadModel(flags);
    try {
      const heads = flags.heads === undefined ? undefined : parseHeadList(flags.heads, modelShape(model), '--heads');
      const n = (heads?.length ?? model.config.numLayers * model.config.numHeads) * items.length;
      const bar = progressBar('importance', n);
      const result = await headImportance(model, items, { metric: flags.metric, ablation: flags.ablation, scope: flags.scope, heads, onProgress: () => bar.tick() });
      bar.stop();
      if (flags.json) return printJson(result);
      console.log(`${result.model}: ${result.metric}, ${result.ablation} ablation (${result.scope} positions), ${result.prompts} prompts, baseline ${result.baseline.toFixed(3)}, ${(result.elapsedMs / 1000).toFixed(1)} s`);
      console.log('head     effect    95% interval');
      for (const h of result.heads.slice(0, flags.top)) console.log(`${`${h.layer}:${h.head}`.padEnd(9)}${h.effect.toFixed(4).padStart(8)}  [${h.ci[0].toFixed(4)}, ${h.ci[1].toFixed(4)}]`);
    } finally {
      await model.dispose();
    }
  });
}
