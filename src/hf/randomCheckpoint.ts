/**
 * Random-weight checkpoints of a given shape, in the standard Hugging Face layout (config.json +
 * model.safetensors, plus the tokenizer files of a source folder when it has them). For benchmarks
 * and tests where speed or memory, not what the model says, is measured: context lengths past a
 * model's trained context, sizes no one has trained for this project.
 *
 * Which tensors a family has is the caller's to say (the architecture files in `graph/arch/` know);
 * this file only fills them: matrices from N(0, initializer_range), norm weights 1, biases 0. Weights
 * are generated and written in pieces, so a 1B model never sits in memory, and the folder appears
 * only when complete (built under a temporary name beside it, then renamed; `io/outputPath.ts`).
 */
import fs from 'node:fs';
import path from 'node:path';
import { checkOutputDir, makeTempDirFor, replaceDir } from '../io/outputPath.js';
import { removeTemp } from '../io/tempFiles.js';
import { DTYPE_BYTES, fromFloat32, type WritableFloatDtype } from './dtype.js';
import { SafetensorsWriter } from './safetensorsWriter.js';

/** Files copied from the source folder when present (tokenizer and generation settings). */
export const SIDE_FILES = [
  'tokenizer.json',
  'tokenizer_config.json',
  'special_tokens_map.json',
  'generation_config.json',
  'vocab.json',
  'merges.txt',
  'chat_template.jinja',
];

export interface RandomCheckpointOptions {
  /** The source config.json object; written out with `max_position_embeddings` / `n_positions` and dtype updated. */
  rawConfig: Record<string, unknown>;
  /** Every tensor and its shape, in the order to write them. */
  tensors: { name: string; shape: number[] }[];
  outDir: string;
  dtype?: WritableFloatDtype;
  seed?: number;
  /** Context length to declare (default: the source's). */
  maxPositions?: number;
  /** Folder to copy `SIDE_FILES` from. */
  sourceDir?: string;
  /** Replace an existing non-empty `outDir` (only one headwise wrote: see io/outputPath.ts). */
  force?: boolean;
  /** Names `outDir` in errors (e.g. "--out"). */
  label?: string;
  /** Elements generated per piece (bounds memory). */
  pieceElements?: number;
}

const DTYPE_NAMES: Record<WritableFloatDtype, string> = { F32: 'float32', F16: 'float16', BF16: 'bfloat16' };

/** How a tensor is initialised, from its name and rank. */
export function initKind(name: string, shape: number[]): 'ones' | 'zeros' | 'normal' {
  if (/\.bias$/.test(name)) return 'zeros';
  if (shape.length === 1 && /(norm|ln_\w*)\.weight$|(^|\.)ln_f\.weight$/.test(name)) return 'ones';
  return 'normal';
}

/** Seeded standard normals (mulberry32 + Box–Muller). */
export function normalSource(seed: number): (out: Float32Array, std: number) => void {
  let a = seed >>> 0;
  const uniform = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (((t ^ (t >>> 14)) >>> 0) + 0.5) / 4294967296;
  };
  return (out, std) => {
    for (let i = 0; i < out.length; i += 2) {
      const r = std * Math.sqrt(-2 * Math.log(uniform()));
      const th = 2 * Math.PI * uniform();
      out[i] = r * Math.cos(th);
      if (i + 1 < out.length) out[i + 1] = r * Math.sin(th);
    }
  };
}

/** The config to write: same shape, new context length and dtype. */
export function randomConfig(raw: Record<string, unknown>, dtype: WritableFloatDtype, maxPositions?: number): Record<string, unknown> {
  const out: Record<string, unknown> = { ...raw };
  if (maxPositions !== undefined) {
    if (raw.model_type === 'gpt2') out.n_positions = maxPositions;
    else out.max_position_embeddings = maxPositions;
  }
  if ('torch_dtype' in raw && !('dtype' in raw)) out.torch_dtype = DTYPE_NAMES[dtype];
  else out.dtype = DTYPE_NAMES[dtype];
  return out;
}

/** Writes the checkpoint; returns the bytes of model.safetensors. */
export function writeRandomCheckpoint(opts: RandomCheckpointOptions): number {
  const steps = writeSteps(opts);
  for (;;) {
    const s = steps.next();
    if (s.done) return s.value;
  }
}

/**
 * The same, yielding to the event loop after each piece, so a signal handler (SIGINT: remove the
 * temporary folder and exit) runs while a large checkpoint is being written.
 */
export async function writeRandomCheckpointAsync(opts: RandomCheckpointOptions): Promise<number> {
  const steps = writeSteps(opts);
  for (;;) {
    const s = steps.next();
    if (s.done) return s.value;
    await new Promise((resolve) => setImmediate(resolve));
  }
}

/** The writing, as steps: one yield per piece of tensor data. */
function* writeSteps(opts: RandomCheckpointOptions): Generator<void, number, void> {
  const dtype = opts.dtype ?? 'F32';
  const out = checkOutputDir(opts.outDir, opts.label ?? 'outDir', { force: opts.force });
  const std = typeof opts.rawConfig.initializer_range === 'number' ? opts.rawConfig.initializer_range : 0.02;
  const tmp = makeTempDirFor(out);
  let bytes = 0;
  try {
    const config = randomConfig(opts.rawConfig, dtype, opts.maxPositions);
    fs.writeFileSync(path.join(tmp, 'config.json'), JSON.stringify(config, null, 2) + '\n');
    if (opts.sourceDir) {
      for (const f of SIDE_FILES) {
        const src = path.join(opts.sourceDir, f);
        // Copied by content, not mode: the source may be read-only.
        if (fs.existsSync(src)) fs.writeFileSync(path.join(tmp, f), fs.readFileSync(src));
      }
    }
    const specs = opts.tensors.map((t) => ({ name: t.name, shape: t.shape, dtype }));
    const writer = SafetensorsWriter.create(path.join(tmp, 'model.safetensors'), specs, { format: 'pt', headwise: 'make-random' });
    try {
      const piece = opts.pieceElements ?? 1 << 20;
      const values = new Float32Array(piece);
      const raw = new Uint8Array(piece * DTYPE_BYTES[dtype]);
      const normal = normalSource(opts.seed ?? 0);
      for (const t of opts.tensors) {
        const n = t.shape.reduce((a, b) => a * b, 1);
        const kind = initKind(t.name, t.shape);
        for (let at = 0; at < n; at += piece) {
          const m = Math.min(piece, n - at);
          const v = values.subarray(0, m);
          if (kind === 'normal') normal(v, std);
          else v.fill(kind === 'ones' ? 1 : 0);
          const r = raw.subarray(0, m * DTYPE_BYTES[dtype]);
          fromFloat32(dtype, v, r);
          writer.write(t.name, r);
          bytes += r.length;
          yield;
        }
      }
      writer.finish();
    } catch (e) {
      writer.abort();
      throw e;
    }
    replaceDir(tmp, out);
  } catch (e) {
    removeTemp(tmp);
    throw e;
  }
  return bytes;
}
