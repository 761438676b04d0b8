/**
 * What every command shares: the bundled default model, option parsers that reject bad values with
 * one clear line, model loading with the --device flag, progress on stderr (a bar on a terminal, lines
 * with an ETA otherwise), and output helpers
 * (`--json` prints exactly one JSON object on stdout).
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Option, InvalidArgumentError, type Command } from 'commander';
import cliProgress from 'cli-progress';
import { HeadwiseError, UsageError } from '../errors.js';
import { Model } from '../runtime/model.js';
import { DEVICES, type Device } from '../runtime/ort.js';
import { DEFAULT_BLOCK_SIZE, WEIGHT_FORMATS, weightOptions, type WeightFormat } from '../graph/quant.js';
import { probeWebgpuIsolated } from '../runtime/webgpuProbe.js';

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
    .addOption(new Option('--weights <format>', 'linear-layer weights: float32, half (on webgpu: half-precision compute and KV cache too), or 8-/4-bit blocks (MatMulNBits)').choices(WEIGHT_FORMATS as string[]).default('f32'))
    .option('--weights-block <n>', `q8/q4: elements per quantisation block (power of two ≥ 16; default ${DEFAULT_BLOCK_SIZE})`, intArg(16, 4096))
    .option('--f32-embeddings', 'q8/q4/f16: keep the embedding and LM head float32');
}

export async function loadModel(flags: ModelFlags): Promise<Model> {
  const weights = weightOptions(flags.weights ?? 'f32', flags.weightsBlock ?? DEFAULT_BLOCK_SIZE, !flags.f32Embeddings);
  const model = await Model.load(flags.model ?? DEFAULT_MODEL, { device: flags.device, threads: flags.threads, weights });
  if (flags.device === 'webgpu') {
    // Asked in a child process first, so Dawn's native warnings never reach the user's terminal.
    const probe = await probeWebgpuIsolated();
    if (!probe.ok) {
      await model.dispose();
      throw new HeadwiseError(`device webgpu: no WebGPU adapter (${probe.reason.replace(/^.* was false\. /, '').trim()}); on Linux ONNX Runtime's WebGPU needs a Vulkan driver (see tools/device/README.md)`);
    }
  }
  return model;
}

export function readPromptFlags(flags: { prompt?: string; promptFile?: string }): string {
  if (flags.prompt !== undefined && flags.promptFile !== undefined) throw new UsageError('give either --prompt or --prompt-file, not both');
  if (flags.promptFile !== undefined) {
    try {
      return fs.readFileSync(flags.promptFile, 'utf8');
    } catch (e) {
      throw new HeadwiseError(`--prompt-file ${flags.promptFile}: cannot read (${(e as NodeJS.ErrnoException).code})`);
    }
  }
  if (flags.prompt === undefined) throw new UsageError('missing --prompt TEXT or --prompt-file FILE');
  return flags.prompt;
}

export function printJson(value: unknown): void {
  process.stdout.write(JSON.stringify(value) + '\n');
}

export interface Progress {
  tick(n?: number, info?: string): void;
  stop(): void;
}

/** Seconds as "42 s" / "3 min 20 s" / "1 h 5 min". */
export function formatSeconds(s: number): string {
  if (!Number.isFinite(s)) return '?';
  const t = Math.round(s);
  if (t < 60) return `${t} s`;
  if (t < 3600) return `${Math.floor(t / 60)} min ${t % 60} s`;
  return `${Math.floor(t / 3600)} h ${Math.floor((t % 3600) / 60)} min`;
}

/**
 * Progress as plain lines, for a stderr that is not a terminal (CI, pipes, nohup): at most one line
 * every `intervalMs`, e.g. `atlas: 12/48 (25%) needles, acc 50%, elapsed 10 s, eta 30 s`; nothing for
 * work that ends before the first interval.
 */
export function progressLines(label: string, total: number, write: (line: string) => void, intervalMs = 5000, now: () => number = Date.now): Progress {
  const start = now();
  let last = start;
  let done = 0;
  let printed = false;
  return {
    tick(n = 1, info = '') {
      done += n;
      const t = now();
      if (t - last < intervalMs) return;
      last = t;
      printed = true;
      const elapsed = (t - start) / 1000;
      const eta = done > 0 ? (elapsed * (total - done)) / done : Infinity;
      write(`${label}: ${done}/${total} (${Math.floor((100 * done) / Math.max(1, total))}%)${info ? ` ${info}` : ''}, elapsed ${formatSeconds(elapsed)}, eta ${formatSeconds(Math.max(0, eta))}\n`);
    },
    stop() {
      if (printed) write(`${label}: ${done}/${total} done in ${formatSeconds((now() - start) / 1000)}\n`);
    },
  };
}

/**
 * Progress on stderr: a bar when stderr is a terminal (or HEADWISE_PROGRESS=1), plain lines every few
 * seconds otherwise (HEADWISE_PROGRESS=0 turns both off; HEADWISE_PROGRESS_INTERVAL_MS sets the interval).
 */
export function progressBar(label: string, total: number): Progress {
  const mode = process.env.HEADWISE_PROGRESS;
  if (mode === '0') return { tick() {}, stop() {} };
  if (!process.stderr.isTTY && mode !== '1') {
    const interval = Number(process.env.HEADWISE_PROGRESS_INTERVAL_MS ?? 5000);
    return progressLines(label, total, (line) => process.stderr.write(line), Number.isFinite(interval) && interval >= 0 ? interval : 5000);
  }
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
