/**
 * What every command shares: the bundled default model, option parsers that reject bad values with
 * one clear line, model loading with the --device flag, progress bars on stderr, and output helpers
 * (`--json` prints exactly one JSON object on stdout).
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Option, InvalidArgumentError, type Command } from 'commander';
import cliProgress from 'cli-progress';
import { HeadwiseError } from '../errors.js';
import { Model } from '../runtime/model.js';
import { DEVICES, type Device } from '../runtime/ort.js';
import { DEFAULT_BLOCK_SIZE, WEIGHT_FORMATS, weightOptions, type WeightFormat } from '../graph/quant.js';

const here = path.dirname(fileURLToPath(import.meta.url));
/** Package root, from src/cli or dist/cli alike. */
export const PACKAGE_ROOT = path.resolve(here, '..', '..');
export const DEFAULT_MODEL = path.join(PACKAGE_ROOT, 'models', 'ref-llama-7m');

export function intArg(min: number, max = Number.MAX_SAFE_INTEGER) {
  return (value: string): number => {
    const n = Number(value);
    if (!/^-?\d+$/.test(value.trim()) || n < min || n > max) {
      throw new InvalidArgumentError(max === Number.MAX_SAFE_INTEGER ? `expected an integer ≥ ${min}` : `expected an integer from ${min} to ${max}`);
    }
    return n;
  };
}

export function floatArg(min: number, max: number, { exclusiveMin = false } = {}) {
  return (value: string): number => {
    const n = Number(value);
    if (value.trim() === '' || !Number.isFinite(n) || n > max || (exclusiveMin ? n <= min : n < min)) {
      throw new InvalidArgumentError(`expected a number ${exclusiveMin ? '>' : '≥'} ${min} and ≤ ${max}`);
    }
    return n;
  };
}

export interface ModelFlags {
  model?: string;
  device: Device;
  threads?: number;
  weights?: WeightFormat;
  weightsBlock?: number;
  f32Embeddings?: boolean;
}

/** Adds --model, --device, --threads and the weight format (--weights, --weights-block, --f32-embeddings). */
export function modelOptions(cmd: Command): Command {
  return cmd
    .option('-m, --model <dir>', 'Hugging Face model folder (config.json, *.safetensors, tokenizer.json)', undefined)
    .addOption(new Option('--device <device>', 'where ONNX Runtime computes').choices(DEVICES as string[]).default('cpu'))
    .option('--threads <n>', 'CPU threads for ONNX Runtime (default: all cores)', intArg(1, 256))
    .addOption(new Option('--weights <format>', 'linear-layer weights: float32, half, or 8-/4-bit blocks (MatMulNBits)').choices(WEIGHT_FORMATS as string[]).default('f32'))
    .option('--weights-block <n>', `q8/q4: elements per quantisation block (power of two ≥ 16; default ${DEFAULT_BLOCK_SIZE})`, intArg(16, 4096))
    .option('--f32-embeddings', 'q8/q4/f16: keep the embedding and LM head float32');
}

export async function loadModel(flags: ModelFlags): Promise<Model> {
  const weights = weightOptions(flags.weights ?? 'f32', flags.weightsBlock ?? DEFAULT_BLOCK_SIZE, !flags.f32Embeddings);
  return Model.load(flags.model ?? DEFAULT_MODEL, { device: flags.device, threads: flags.threads, weights });
}

export function readPromptFlags(flags: { prompt?: string; promptFile?: string }): string {
  if (flags.prompt !== undefined && flags.promptFile !== undefined) throw new HeadwiseError('give either --prompt or --prompt-file, not both');
  if (flags.promptFile !== undefined) {
    try {
      return fs.readFileSync(flags.promptFile, 'utf8');
    } catch (e) {
      throw new HeadwiseError(`--prompt-file ${flags.promptFile}: cannot read (${(e as NodeJS.ErrnoException).code})`);
    }
  }
  if (flags.prompt === undefined) throw new HeadwiseError('missing --prompt TEXT or --prompt-file FILE');
  return flags.prompt;
}

export function printJson(value: unknown): void {
  process.stdout.write(JSON.stringify(value) + '\n');
}

/** A progress bar on stderr (only when stderr is a terminal, or HEADWISE_PROGRESS=1). */
export function progressBar(label: string, total: number): { tick(n?: number, info?: string): void; stop(): void } {
  const show = process.stderr.isTTY || process.env.HEADWISE_PROGRESS === '1';
  if (!show) return { tick() {}, stop() {} };
  const bar = new cliProgress.SingleBar(
    { format: `${label} [{bar}] {value}/{total} {info} eta {eta_formatted}`, stream: process.stderr, hideCursor: true, clearOnComplete: false },
    cliProgress.Presets.shades_classic,
  );
  bar.start(total, 0, { info: '' });
  return {
    tick: (n = 1, info = '') => bar.increment(n, { info }),
    stop: () => bar.stop(),
  };
}
