/**
 * `headwise make-random --like CONFIG_OR_DIR --out DIR`: a random-weight checkpoint of the same shape
 * as a model (optionally with a longer context), for speed and memory benchmarks past a model's trained
 * context. The tensors a family has come from its architecture file; writing is `hf/randomCheckpoint.ts`.
 */
import fs from 'node:fs';
import path from 'node:path';
import { Command, Option } from 'commander';
import { HeadwiseError } from '../errors.js';
import { parseModelConfig } from '../hf/config.js';
import { checkModelConfig } from '../hf/configChecks.js';
import { checkOutputDir } from '../io/outputPath.js';
import { writeRandomCheckpoint, writeRandomCheckpointAsync, type RandomCheckpointOptions } from '../hf/randomCheckpoint.js';
import type { WritableFloatDtype } from '../hf/dtype.js';
import { ARCHITECTURES } from '../graph/arch/index.js';
import { intArg, printJson } from './common.js';

export interface MakeRandomOptions {
  like: string;
  out: string;
  maxPositions?: number;
  seed?: number;
  dtype?: 'f32' | 'bf16';
  force?: boolean;
}

type MakeRandomResult = { out: string; bytes: number; tensors: number; config: Record<string, unknown> };

/** Reads the source config (a config.json or a model folder), writes the checkpoint. */
export function makeRandom(opts: MakeRandomOptions): MakeRandomResult {
  const job = prepare(opts);
  return { ...job.result, bytes: writeRandomCheckpoint(job.write) };
}

/** The same, yielding while it writes (the CLI's: SIGINT can interrupt a large checkpoint cleanly). */
export async function makeRandomAsync(opts: MakeRandomOptions): Promise<MakeRandomResult> {
  const job = prepare(opts);
  return { ...job.result, bytes: await writeRandomCheckpointAsync(job.write) };
}

function prepare(opts: MakeRandomOptions): { write: RandomCheckpointOptions; result: Omit<MakeRandomResult, 'bytes'> } {
  const out = checkOutputDir(opts.out, '--out', { force: opts.force });
  const like = path.resolve(opts.like);
  if (!fs.existsSync(like)) throw new HeadwiseError(`--like ${opts.like}: not found`);
  const isDir = fs.statSync(like).isDirectory();
  const configFile = isDir ? path.join(like, 'config.json') : like;
  let raw: Record<string, unknown>;
  try {
    raw = JSON.parse(fs.readFileSync(configFile, 'utf8'));
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new HeadwiseError(`${configFile}: ${code ? `cannot read (${code})` : `not valid JSON (${(e as Error).message})`}`);
  }
  const withContext = opts.maxPositions === undefined ? raw : { ...raw, [raw.model_type === 'gpt2' ? 'n_positions' : 'max_position_embeddings']: opts.maxPositions };
  const config = parseModelConfig(withContext, configFile);
  checkModelConfig(config, configFile);
  const tensors = ARCHITECTURES[config.family](config).weights;
  const dtype: WritableFloatDtype = opts.dtype === 'bf16' ? 'BF16' : 'F32';
  const write: RandomCheckpointOptions = {
    rawConfig: raw,
    tensors,
    outDir: opts.out,
    dtype,
    seed: opts.seed ?? 0,
    maxPositions: opts.maxPositions,
    sourceDir: isDir ? like : path.dirname(like),
    force: opts.force,
    label: '--out',
  };
  return { write, result: { out, tensors: tensors.length, config: withContext } };
}

export function makeRandomCommand(): Command {
  return new Command('make-random')
    .description('write a random-weight checkpoint with the shape of a model (for speed and memory benchmarks)')
    .requiredOption('--like <config-or-dir>', "a model folder or its config.json: the shape to copy (tokenizer files are copied when present)")
    .requiredOption('--out <dir>', 'folder to write (config.json, model.safetensors, tokenizer files)')
    .option('--max-positions <n>', 'context length to declare (max_position_embeddings)', intArg(1, 1 << 24))
    .option('--seed <n>', 'random seed', intArg(0), 0)
    .addOption(new Option('--dtype <dtype>', 'weight dtype on disk').choices(['f32', 'bf16']).default('f32'))
    .option('--force', 'replace --out if it is a folder headwise wrote earlier (never anything else)')
    .option('--json', 'print one JSON object')
    .action(async (flags: MakeRandomOptions & { json?: boolean }) => {
      const r = await makeRandomAsync(flags);
      if (flags.json) printJson({ out: r.out, tensors: r.tensors, safetensorsBytes: r.bytes });
      else process.stdout.write(`wrote ${r.out} (${r.tensors} tensors, ${(r.bytes / 2 ** 20).toFixed(1)} MiB of ${flags.dtype ?? 'f32'} weights)\n`);
    });
}
