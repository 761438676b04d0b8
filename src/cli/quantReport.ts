/**
 * `headwise quant-report`: what a weight format does to a model — each matrix's relative
 * reconstruction error ‖W − Ŵ‖/‖W‖ (worst first, and per layer), and the KL divergence of its
 * next-token distributions from float32's over every position of a text sample, with top-1 agreement.
 * The measuring is `eval/quantQuality.ts`; this file parses flags and prints.
 */
import fs from 'node:fs';
import path from 'node:path';
import { Command, Option } from 'commander';
import { HeadwiseError, UsageError } from '../errors.js';
import { DEFAULT_BLOCK_SIZE, WEIGHT_FORMATS, weightKey, weightOptions, type WeightFormat } from '../graph/quant.js';
import { logitDrift, logitsAtEveryPosition, weightErrors } from '../eval/quantQuality.js';
import { Model } from '../runtime/model.js';
import { DEFAULT_MODEL, PACKAGE_ROOT, intArg, printJson, progressBar } from './common.js';
import { DEVICES, type Device } from '../runtime/ort.js';

interface Flags {
  model?: string;
  device: Device;
  threads?: number;
  formats: string;
  weightsBlock?: number;
  f32Embeddings?: boolean;
  text?: string;
  tokens: number;
  top: number;
  json?: boolean;
}

const DEFAULT_TEXT = path.resolve(PACKAGE_ROOT, '..', 'shared', 'data', 'kjv.txt');

export function quantReportCommand(): Command {
  return new Command('quant-report')
    .description('per-matrix weight reconstruction error and logit KL vs float32 on a text sample, for each weight format')
    .option('-m, --model <dir>', 'Hugging Face model folder (config.json, *.safetensors, tokenizer.json)')
    .addOption(new Option('--device <device>', 'where ONNX Runtime computes').choices(DEVICES as string[]).default('cpu'))
    .option('--threads <n>', 'CPU threads for ONNX Runtime (default: all cores)', intArg(1, 256))
    .option('--formats <list>', `formats to compare with f32, comma-separated (${WEIGHT_FORMATS.filter((f) => f !== 'f32').join(', ')})`, 'q8,q4')
    .option('--weights-block <n>', `q8/q4 block size (default ${DEFAULT_BLOCK_SIZE})`, intArg(16, 4096))
    .option('--f32-embeddings', 'keep the embedding and LM head float32')
    .option('--text <file>', `text sample (default ../shared/data/kjv.txt, else the bundled data/kjv.txt)`)
    .option('--tokens <n>', 'tokens of the sample to score', intArg(16, 1_000_000), 1024)
    .option('--top <n>', 'matrices listed, worst first', intArg(0, 100_000), 8)
    .option('--json', 'print one JSON object')
    .action(async (flags: Flags) => {
      const formats = flags.formats.split(',').map((s) => s.trim()) as WeightFormat[];
      for (const f of formats) {
        if (!WEIGHT_FORMATS.includes(f) || f === 'f32') throw new UsageError(`--formats: "${f}" is not one of ${WEIGHT_FORMATS.filter((x) => x !== 'f32').join(', ')}`);
      }
      // Checked before any model is loaded: a bad block size is a usage error.
      const weightSets = formats.map((format) => weightOptions(format, flags.weightsBlock ?? DEFAULT_BLOCK_SIZE, !flags.f32Embeddings));
      const textFile = flags.text ?? (fs.existsSync(DEFAULT_TEXT) ? DEFAULT_TEXT : path.join(PACKAGE_ROOT, 'data', 'kjv.txt'));
      let text: string;
      try {
        text = fs.readFileSync(textFile, 'utf8');
      } catch (e) {
        throw new HeadwiseError(`--text ${textFile}: cannot read (${(e as NodeJS.ErrnoException).code})`);
      }
      const dir = flags.model ?? DEFAULT_MODEL;
      const base = { device: flags.device, threads: flags.threads };
      const ref = await Model.load(dir, base);
      try {
        // Enough characters for the tokens asked for (≥ 2 characters a token in practice), not the whole file.
        const ids = ref.tokenize(text.slice(0, flags.tokens * 8)).slice(0, Math.min(flags.tokens, ref.config.maxPositions));
        if (ids.length < 16) throw new HeadwiseError(`--text ${textFile}: only ${ids.length} tokens (need ≥ 16)`);
        const refLogits = await logitsAtEveryPosition(ref, ids);
        const results = [];
        for (const [i, format] of formats.entries()) {
          const weights = weightSets[i];
          const bar = progressBar(`${format} weights`, 1);
          const errors = weightErrors(ref.ckpt, weights);
          bar.stop();
          const m = await Model.load(dir, { ...base, weights });
          try {
            const drift = logitDrift(refLogits, await logitsAtEveryPosition(m, ids), ref.config.vocabSize);
            const layers = new Map<number, number[]>();
            for (const e of errors) {
              const l = /layers?\.(\d+)\.|\bh\.(\d+)\./.exec(e.name);
              const key = l ? Number(l[1] ?? l[2]) : -1;
              layers.set(key, [...(layers.get(key) ?? []), e.relative]);
            }
            const perLayer = [...layers.entries()].filter(([l]) => l >= 0).sort((a, b) => a[0] - b[0])
              .map(([layer, rel]) => ({ layer, meanRelative: rel.reduce((a, b) => a + b, 0) / rel.length, maxRelative: Math.max(...rel) }));
            results.push({ format, weights: weightKey(weights), logits: drift, perLayer, matrices: errors });
          } finally {
            await m.dispose();
          }
        }
        const out = { model: ref.name, text: textFile, tokens: ids.length, results };
        if (flags.json) return printJson(out);
        console.log(`quant-report — ${ref.name}, ${ids.length} tokens of ${path.basename(textFile)}; KL(p_f32 ‖ p_format) in nats`);
        for (const r of results) {
          const d = r.logits;
          console.log(`\n${r.weights}: KL mean ${d.klMean.toExponential(2)}, median ${d.klMedian.toExponential(2)}, p99 ${d.klP99.toExponential(2)}, max ${d.klMax.toExponential(2)}; top-1 agreement ${(100 * d.top1Agreement).toFixed(1)}%`);
          console.log('  layer  mean ‖W−Ŵ‖/‖W‖  max');
          for (const l of r.perLayer) console.log(`  ${String(l.layer).padStart(5)}  ${l.meanRelative.toExponential(2).padStart(14)}  ${l.maxRelative.toExponential(2)}`);
          const worst = [...r.matrices].sort((a, b) => b.relative - a.relative).slice(0, flags.top);
          if (worst.length) console.log(`  worst matrices: ${worst.map((e) => `${e.name} ${e.relative.toExponential(2)}`).join(', ')}`);
        }
      } finally {
        await ref.dispose();
      }
    });
}
