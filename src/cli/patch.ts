/**
 * `headwise patch`: activation patching of head outputs from a clean prompt into a corrupted one
 * (`patching/patch.ts`), printed as a ranked table or as JSON (`--json`, the `headwise.patching/1`
 * format of `patching/format.ts`), with an HTML heatmap (`--report`). This file parses flags and prints.
 */
import fs from 'node:fs';
import { Command, Option } from 'commander';
import { writePatchReport } from '../atlas/patchReport.js';
import { HeadwiseError } from '../errors.js';
import { parseHeadList } from '../interventions/spec.js';
import { modelShape } from '../interventions/index.js';
import { PATCH_MODES, type PatchMode } from '../patching/format.js';
import { METRICS, type MetricName } from '../patching/metrics.js';
import { activationPatching } from '../patching/patch.js';
import { loadModel, modelOptions, printJson, progressBar, type ModelFlags } from './common.js';

interface Flags extends ModelFlags {
  clean?: string;
  cleanFile?: string;
  corrupt?: string;
  corruptFile?: string;
  answer: string;
  wrong?: string;
  metric?: MetricName;
  mode: PatchMode;
  positions?: string;
  heads?: string;
  json?: boolean;
  report?: string;
}

function text(flags: Flags, which: 'clean' | 'corrupt'): string {
  const inline = flags[which];
  const file = flags[`${which}File`];
  if (inline !== undefined && file !== undefined) throw new HeadwiseError(`give either --${which} or --${which}-file, not both`);
  if (file !== undefined) {
    try {
      return fs.readFileSync(file, 'utf8');
    } catch (e) {
      throw new HeadwiseError(`--${which}-file ${file}: cannot read (${(e as NodeJS.ErrnoException).code})`);
    }
  }
  if (inline === undefined) throw new HeadwiseError(`missing --${which} TEXT or --${which}-file FILE`);
  return inline;
}

function positionsArg(value: string | undefined): 'last' | 'diff' | 'all' | number[] | undefined {
  if (value === undefined || value === 'last' || value === 'diff' || value === 'all') return value;
  const items = value.split(',').map((s) => s.trim());
  if (items.some((s) => !/^\d+$/.test(s))) throw new HeadwiseError(`--positions: expected last, diff, all or token indices separated by commas (got ${JSON.stringify(value)})`);
  return items.map(Number);
}

export function patchCommand(): Command {
  const cmd = new Command('patch')
    .description('activation patching: head outputs (hook_z) from a clean prompt patched into a corrupted one, and how much of the clean answer each restores')
    .option('--clean <text>', 'the clean prompt')
    .option('--clean-file <file>', 'read the clean prompt from a file')
    .option('--corrupt <text>', 'the corrupted prompt (same number of tokens)')
    .option('--corrupt-file <file>', 'read the corrupted prompt from a file')
    .requiredOption('--answer <text>', 'the clean answer (its first token is read at the last position)')
    .option('--wrong <text>', "the corrupted prompt's answer (for --metric logit-diff)")
    .addOption(new Option('--metric <metric>', 'logit difference answer − wrong, answer log-prob, or KL from the clean output (default: logit-diff with --wrong, else logprob)').choices(METRICS as string[]))
    .addOption(new Option('--mode <mode>', 'per head at --positions, per head × position, all heads of a layer per position (= hook_attn_out), --heads together, or per layer × position the residual stream entering the block (hook_resid_pre) or the MLP output (hook_mlp_out)').choices(PATCH_MODES as string[]).default('head'))
    .option('--positions <p>', 'last, diff (where the prompts differ, and the last), all, or indices (default: last for head/joint, diff otherwise)')
    .option('--heads <L:H,...>', 'heads to patch (default all; required for --mode joint)')
    .option('--json', 'print the result as one JSON object (headwise.patching/1)')
    .option('--report <file.html>', 'write an HTML heatmap');
  return modelOptions(cmd).action(async (flags: Flags) => {
    const clean = text(flags, 'clean');
    const corrupt = text(flags, 'corrupt');
    const model = await loadModel(flags);
    try {
      const heads = flags.heads === undefined ? undefined : parseHeadList(flags.heads, modelShape(model), '--heads');
      let bar: ReturnType<typeof progressBar> | undefined;
      const result = await activationPatching(model, {
        clean, corrupt, answer: flags.answer, wrong: flags.wrong, metric: flags.metric, mode: flags.mode,
        positions: positionsArg(flags.positions), heads, onProgress: (_, total) => (bar ??= progressBar('patch', total)).tick(),
      });
      bar?.stop();
      if (flags.report) writePatchReport(flags.report, result);
      if (flags.json) return printJson(result);
      const w = (s: string, n: number) => s.padEnd(n);
      console.log(`${result.model}: ${result.metric} clean ${result.cleanValue.toFixed(3)}, corrupt ${result.corruptValue.toFixed(3)}; ${result.cells.length} patched runs in ${(result.elapsedMs / 1000).toFixed(1)} s`);
      console.log(`${w('patched', 28)}${w('position', 10)}${w('metric', 10)}restored`);
      for (const c of [...result.cells].sort((a, b) => b.restored - a.restored).slice(0, 20)) {
        const what = c.heads.length === 0 ? `L${c.layer} ${result.hook.replace(/^blocks\.\{layer\}\./, '')}` : c.heads.length > 4 ? `L${c.layer} (all heads)` : c.heads.map((h) => `${h.layer}:${h.head}`).join(',');
        console.log(`${w(what, 28)}${w(c.position === null ? '-' : String(c.position), 10)}${w(c.value.toFixed(3), 10)}${(100 * c.restored).toFixed(1)}%`);
      }
      if (flags.report) console.log(`report: ${flags.report}`);
    } finally {
      await model.dispose();
    }
  });
}
