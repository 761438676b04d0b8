/**
 * `headwise atlas`: measure every head of a model (`atlas/run.ts`), optionally check the result
 * causally (`--validate`, `atlas/validate.ts`), compare it with a reference analysis (`--reference`),
 * and write the atlas JSON, the HTML report and the DuoAttention / Retrieval_Head exports. This file
 * parses flags, shows progress on stderr and prints; the work is in `atlas/`.
 */
import fs from 'node:fs';
import { Command, Option } from 'commander';
import { HeadwiseError, UsageError } from '../errors.js';
import { checkReferenceShape, compareWithReference, type ReferenceComparison } from '../atlas/compare.js';
import { duoAttentionTsv, retrievalHeadJson } from '../atlas/export.js';
import { atlasJson, type AtlasFile, type KvScoreMetric } from '../atlas/file.js';
import { writeAtlasOutputs } from '../atlas/outputs.js';
import { checkOutputFile } from '../io/outputPath.js';
import { ATLAS_DEFAULTS, runAtlas } from '../atlas/run.js';
import { validateAtlas } from '../atlas/validate.js';
import { extendNiahGrid } from '../atlas/niahGrid.js';
import { loadHaystack } from '../eval/haystack.js';
import { fullCache } from '../runtime/generate.js';
import { intArg, loadModel, modelOptions, progressBar, type ModelFlags } from './common.js';
import { interventionOptions, type InterventionFlags } from './interventionFlags.js';
import { interventionBinder } from './promptHooks.js';
import { intListArg } from './niah.js';

interface Flags extends ModelFlags, InterventionFlags {
  context?: number;
  samples: number;
  seed: number;
  out?: string;
  report?: string;
  validate?: boolean;
  topK: number;
  exportDuo?: string;
  duoMetric: KvScoreMetric;
  exportRetrieval?: string;
  reference?: string;
  harmSamples: number;
  ablationSamples: number;
  patternSamples: number;
  probes: number;
  haystack?: string;
  gridContexts?: number[];
  gridSamples?: number;
  json?: boolean;
}

const OUTPUT_FLAGS = [['--out', 'out'], ['--report', 'report'], ['--export-duo', 'exportDuo'], ['--export-retrieval', 'exportRetrieval']] as const;

/** Every output path is checked before any work; two outputs may not share a path. */
function checkOutputs(flags: Flags): void {
  const seen = new Map<string, string>();
  for (const [flag, key] of OUTPUT_FLAGS) {
    const value = flags[key];
    if (value === undefined) continue;
    const abs = checkOutputFile(value, flag);
    const other = seen.get(abs);
    if (other) throw new UsageError(`${flag} ${JSON.stringify(value)}: is the same file as ${other}`);
    seen.set(abs, flag);
  }
}

function readReference(file: string): Record<string, unknown> {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new HeadwiseError(`--reference ${file}: ${code ? `cannot read (${code})` : `not valid JSON (${(e as Error).message})`}`);
  }
}

const head = (h: { layer: number; head: number }) => `L${h.layer}H${h.head}`;
const pct = (x: number | undefined) => (x === undefined ? 'n/a' : `${(100 * x).toFixed(1)}%`);

function summaryLines(atlas: AtlasFile, cmp: ReferenceComparison | undefined, written: string[]): string[] {
  const s = atlas.settings as Record<string, unknown>;
  const lines = [
    `${atlas.model.name}: ${atlas.model.layers} layers × ${atlas.model.heads} heads, ${s.samples} needle prompts of ${s.contextTokens} tokens, ${((atlas.timing?.totalMs ?? 0) / 1000).toFixed(1)} s`,
    `top retrieval heads: ${(atlas.topHeads?.retrieval ?? []).slice(0, 5).map((h) => `${head(h)} ${h.score.toFixed(3)}`).join(', ')}`,
    `needle accuracy (greedy exact match): ${pct(atlas.niah?.accuracy)}`,
  ];
  const v = atlas.validation;
  if (v) {
    lines.push(`validation: top ${v.k} ${v.metric} heads (${v.top.heads.map(head).join(', ')}) zeroed → ${pct(v.top.accuracy)}; ${v.k} random heads (${v.random.heads.map(head).join(', ')}) zeroed → ${pct(v.random.accuracy)}; nothing zeroed ${pct(v.base)}`);
  }
  if (cmp) {
    const w = cmp.retrievalMaxAbsDiff;
    lines.push(
      `vs reference: retrieval max |diff| ${w.value.toFixed(4)} (L${w.layer}H${w.head}), ${cmp.retrievalOutside.length} heads outside ±${cmp.tolerance}; ` +
        `top ${cmp.topRetrieval.ours.length} ${cmp.topRetrieval.sameOrder ? 'match' : 'differ'} (reference ${cmp.topRetrieval.reference.map((h) => `${head(h)} ${h.score.toFixed(3)}`).join(', ')})`,
      `  Spearman: ${Object.entries(cmp.spearman).map(([m, r]) => `${m} ${r.toFixed(3)}`).join(', ')}`,
    );
  }
  for (const f of written) lines.push(`wrote ${f}`);
  return lines;
}

export function atlasCommand(): Command {
  const cmd = new Command('atlas')
    .description('measure what every attention head does (retrieval, sink, previous-token, induction, locality, streaming harm, ablation) and write an atlas')
    .option('-c, --context <n>', 'needle prompt length in tokens (default 1024, or the model context if shorter)', intArg(64, 1 << 20))
    .option('-s, --samples <n>', 'needle prompts (one in three pass key, the rest 4-key retrieval)', intArg(1, 100_000), ATLAS_DEFAULTS.samples)
    .option('--seed <n>', 'seed of the needle prompts, probes and random heads', intArg(0), 0)
    .option('-o, --out <file>', 'write the atlas JSON here')
    .option('--report <file.html>', 'write a self-contained HTML report')
    .option('--validate', 'zero the top-k retrieval heads and k random heads and measure needle accuracy')
    .option('-k, --top-k <k>', 'heads zeroed in each --validate arm', intArg(1), 2)
    .option('--export-duo <file>', 'write a DuoAttention-style full_attention_heads.tsv (one row per layer, one value per KV head)')
    .addOption(new Option('--duo-metric <metric>', 'score behind --export-duo').choices(['retrieval', 'streamingHarm']).default('retrieval'))
    .option('--export-retrieval <file>', 'write Retrieval_Head-style head scores {"L-H": [score]}')
    .option('--reference <file>', 'compare with a reference head analysis JSON (e.g. ../shared/reference/*.json)')
    .option('--harm-samples <n>', 'needle prompts for streaming harm (0 = skip)', intArg(0), ATLAS_DEFAULTS.harmSamples)
    .option('--ablation-samples <n>', 'needle prompts for ablation importance (0 = skip)', intArg(0), ATLAS_DEFAULTS.ablationSamples)
    .option('--pattern-samples <n>', 'needle prompts for sink, hidden sinks, previous-token and locality (0 = skip)', intArg(0), ATLAS_DEFAULTS.patternSamples)
    .option('--probes <n>', 'random repeated sequences for induction and duplicate-token (0 = skip)', intArg(0), ATLAS_DEFAULTS.probes)
    .option('--haystack <file>', 'haystack text file (default: the bundled King James Bible)')
    .option('--grid-contexts <n,...>', 'more context lengths for the needle accuracy grid of the report (greedy runs of the same needle mix)', intListArg)
    .option('--grid-samples <n>', 'prompts per --grid-contexts length (default: --samples)', intArg(1, 100_000))
    .option('--json', 'print the atlas as one JSON object');
  modelOptions(cmd);
  interventionOptions(cmd);
  return cmd.action(async (flags: Flags) => {
    if (flags.exportDuo && flags.duoMetric === 'streamingHarm' && flags.harmSamples === 0) {
      throw new UsageError('--duo-metric streamingHarm needs streaming harm: drop --harm-samples 0');
    }
    checkOutputs(flags);
    const rawReference = flags.reference !== undefined ? readReference(flags.reference) : undefined;
    const model = await loadModel(flags);
    try {
      const reference = rawReference && checkReferenceShape(rawReference, model.config, `--reference ${flags.reference}`);
      const haystack = loadHaystack(flags.haystack);
      const intervention = interventionBinder(model, flags);
      const bindHooks = intervention?.bind(fullCache(model));
      const bar = progressBar('atlas', flags.samples + flags.probes);
      const atlas = await runAtlas(model, {
        contextTokens: flags.context,
        samples: flags.samples,
        seed: flags.seed,
        haystack,
        harmSamples: flags.harmSamples,
        ablationSamples: flags.ablationSamples,
        patternSamples: flags.patternSamples,
        probes: flags.probes,
        bindHooks,
        onProgress: (p) => bar.tick(1, p.phase === 'needles' ? `needles, acc ${(100 * (p.accuracy ?? 0)).toFixed(0)}%` : 'probes'),
      });
      bar.stop();
      if (flags.validate) {
        const vbar = progressBar('validate', 2 * flags.samples);
        atlas.validation = await validateAtlas(model, atlas, { k: flags.topK, bindHooks, onProgress: (p) => vbar.tick(1, `${p.arm} heads zeroed`) });
        vbar.stop();
      }
      if (flags.gridContexts?.length) {
        const samples = flags.gridSamples ?? flags.samples;
        const gbar = progressBar('grid', samples * flags.gridContexts.length);
        await extendNiahGrid(model, atlas, flags.gridContexts, { samples, haystack, bindHooks, onProgress: () => gbar.tick(1) });
        gbar.stop();
      }
      const comparison = reference ? compareWithReference(atlas, reference) : undefined;
      if (comparison) atlas.comparison = comparison;
      if (intervention) atlas.settings.interventionSpec = intervention.describe;
      const exports: { file: string; text: string }[] = [];
      if (flags.exportDuo) exports.push({ file: flags.exportDuo, text: duoAttentionTsv(atlas, flags.duoMetric) });
      if (flags.exportRetrieval) exports.push({ file: flags.exportRetrieval, text: retrievalHeadJson(atlas) });
      writeAtlasOutputs(atlas, { out: flags.out, report: flags.report, exports });
      const written = [flags.out, flags.report, flags.exportDuo, flags.exportRetrieval].filter((f): f is string => f !== undefined);
      if (flags.json) process.stdout.write(atlasJson(atlas) + '\n');
      else process.stdout.write(summaryLines(atlas, comparison, written).join('\n') + '\n');
    } finally {
      await model.dispose();
    }
  });
}
