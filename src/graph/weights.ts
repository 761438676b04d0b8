/**
 * Turns a checkpoint's weights into the one float32 file that every compiled graph of the model
 * points at (ONNX external data). Written once per checkpoint into the cache folder, tensor by tensor
 * (the checkpoint is never held in memory whole), page-aligned so ONNX Runtime can map it, and
 * renamed into place only when complete. Reused while the checkpoint's files are unchanged.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Checkpoint } from '../hf/checkpoint.js';
import { writeFileAtomic } from '../io/outputPath.js';
import { releaseTemp, removeTemp, sweepStaleTemps, tempPathFor } from '../io/tempFiles.js';
import type { ExternalRef } from './builder.js';

export interface WeightSpec {
  name: string;
  shape: number[];
}

export interface WeightsManifest {
  file: string;
  tensors: Record<string, ExternalRef & { shape: number[] }>;
}

const FORMAT = 'headwise-weights-v1';
const ALIGN = 4096;

export function cacheRoot(): string {
  return process.env.HEADWISE_CACHE ?? path.join(os.homedir(), '.cache', 'headwise');
}

/** Folder that holds the converted weights and compiled graphs of one checkpoint. */
export function modelCacheDir(ckpt: Checkpoint): string {
  const key = crypto.createHash('sha256').update(`${FORMAT}\n${ckpt.dir}\n${ckpt.fingerprint()}`).digest('hex').slice(0, 16);
  return path.join(cacheRoot(), `${path.basename(ckpt.dir)}-${key}`);
}

/** Writes `data` to `file` atomically (io/outputPath.ts; kept here for the graph cache's callers). */
export { writeFileAtomic };

/** A tensor to store: by default checkpoint tensor `name`; or `source` ([a, b]) stored transposed ([b, a] = `shape`) as `name`. */
export interface StoredWeightSpec extends WeightSpec {
  source?: string;
  transpose?: boolean;
}

/** [rows, cols] -> [cols, rows], in cache-friendly blocks. */
export function transpose2d(x: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(x.length);
  const B = 64;
  for (let r0 = 0; r0 < rows; r0 += B) {
    for (let c0 = 0; c0 < cols; c0 += B) {
      const r1 = Math.min(rows, r0 + B);
      const c1 = Math.min(cols, c0 + B);
      for (let r = r0; r < r1; r++) for (let c = c0; c < c1; c++) out[c * rows + r] = x[r * cols + c];
    }
  }
  return out;
}

/** Ensures `dir/{file}` (default weights.bin) holds `specs` as float32; returns where each tensor lies. */
export function ensureWeights(ckpt: Checkpoint, specs: StoredWeightSpec[], dir: string, file = 'weights.bin'): WeightsManifest {
  const manifestFile = path.join(dir, file.replace(/\.bin$/, '.json'));
  const wanted = specs.map((s) => `${s.name}:${s.shape.join('x')}${s.transpose ? `:T(${s.source})` : ''}`).join(',');
  if (fs.existsSync(manifestFile)) {
    try {
      const m = JSON.parse(fs.readFileSync(manifestFile, 'utf8'));
      if (m.wanted === wanted && fs.existsSync(path.join(dir, m.manifest.file))) return m.manifest as WeightsManifest;
    } catch {
      // fall through and rebuild
    }
  }
  fs.mkdirSync(dir, { recursive: true });
  sweepStaleTemps(dir);
  const tmp = tempPathFor(path.join(dir, file));
  const fd = fs.openSync(tmp, 'w');
  const tensors: WeightsManifest['tensors'] = {};
  try {
    let offset = 0;
    for (const spec of specs) {
      const data = spec.transpose
        ? transpose2d(ckpt.read(spec.source ?? spec.name, [spec.shape[1], spec.shape[0]]), spec.shape[1], spec.shape[0])
        : ckpt.read(spec.source ?? spec.name, spec.shape);
      const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
      fs.writeSync(fd, bytes, 0, bytes.length, offset);
      tensors[spec.name] = { file, offset, length: bytes.length, shape: spec.shape };
      offset += Math.ceil(bytes.length / ALIGN) * ALIGN;
    }
    fs.ftruncateSync(fd, offset);
    fs.closeSync(fd);
    fs.renameSync(tmp, path.join(dir, file));
    releaseTemp(tmp);
  } catch (e) {
    try { fs.closeSync(fd); } catch { /* already closed */ }
    removeTemp(tmp);
    throw e;
  }
  const manifest = { file, tensors };
  writeFileAtomic(manifestFile, JSON.stringify({ wanted, manifest }));
  return manifest;
}
