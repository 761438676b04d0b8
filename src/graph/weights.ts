/**
 * Turns a checkpoint's weights into the one file per weight format that every compiled graph of the
 * model points at (ONNX external data): float32, or with the linear layers as half floats or block
 * codes + scales (`quant.ts`). Written once per checkpoint and format into the cache folder, tensor by
 * tensor (one tensor — or one layer's stack of q|k|v or gate|up rows — is read, converted, written and
 * dropped before the next: the checkpoint is never held in memory whole, in any precision),
 * page-aligned so ONNX Runtime can map it, and renamed into place only when complete. Reused while the checkpoint's files are unchanged.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Checkpoint } from '../hf/checkpoint.js';
import { writeFileAtomic } from '../io/outputPath.js';
import { releaseTemp, removeTemp, sweepStaleTemps, tempPathFor } from '../io/tempFiles.js';
import { compactNames, type ExternalRef } from './builder.js';
import { DataType, type DataTypeId } from './onnxProto.js';
import { blockCount, quantizeBlocks, toFloat16Bits } from './quant.js';

export interface WeightSpec {
  name: string;
  shape: number[];
}

/** A tensor made of the rows of `parts` stacked in order (one matmul for q|k|v or gate|up): read as `name`. */
export interface WeightStack {
  name: string;
  parts: string[];
}

export interface WeightsManifest {
  file: string;
  tensors: Record<string, ExternalRef & { shape: number[]; dataType?: DataTypeId }>;
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

/**
 * A tensor to store: by default checkpoint tensor `name`; or `source` ([a, b]) stored transposed
 * ([b, a] = `shape`) as `name`; with `rows`, the source is those checkpoint tensors stacked row-wise
 * (read one after another into one buffer: one stacked tensor in memory at a time). `encode` stores the (possibly transposed) [N, K] matrix compactly:
 * `f16` as half floats transposed to [K, N] under `compactNames.half(name)`; `blocks` as codes
 * `compactNames.codes(name)` [N, nBlocks, blob] uint8 and scales `compactNames.scales(name)` [N·nBlocks]
 * float32, with `gatherView` also the same bytes as [N, K·bits/8] and [N, K/block] for GatherBlockQuantized.
 */
export interface StoredWeightSpec extends WeightSpec {
  source?: string;
  transpose?: boolean;
  rows?: WeightSpec[];
  encode?: { kind: 'f16' } | { kind: 'blocks'; bits: 4 | 8; blockSize: number; gatherView?: boolean };
}

const specKey = (s: StoredWeightSpec): string => {
  const e = s.encode;
  const enc = !e ? '' : e.kind === 'f16' ? ':f16' : `:q${e.bits}b${e.blockSize}${e.gatherView ? 'g' : ''}`;
  const rows = s.rows ? `:R(${s.rows.map((r) => `${r.name}:${r.shape.join('x')}`).join(',')})` : '';
  return `${s.name}:${s.shape.join('x')}${s.transpose ? `:T(${s.source})` : ''}${rows}${enc}`;
};

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

/** The rows of `parts` (checkpoint tensors of one row width, or 1-D) stacked in order, read straight into one buffer. */
export function stackRows(ckpt: Checkpoint, parts: WeightSpec[]): Float32Array {
  const size = (s: WeightSpec) => s.shape.reduce((a, b) => a * b, 1);
  const out = new Float32Array(parts.reduce((n, p) => n + size(p), 0));
  let offset = 0;
  for (const p of parts) {
    ckpt.read(p.name, p.shape, out.subarray(offset, offset + size(p)));
    offset += size(p);
  }
  return out;
}

/** Ensures `dir/{file}` (default weights.bin) holds `specs` as float32; returns where each tensor lies. */
export function ensureWeights(ckpt: Checkpoint, specs: StoredWeightSpec[], dir: string, file = 'weights.bin'): WeightsManifest {
  const manifestFile = path.join(dir, file.replace(/\.bin$/, '.json'));
  const wanted = specs.map(specKey).join(',');
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
    const put = (name: string, data: ArrayBufferView, shape: number[], dataType: DataTypeId = DataType.FLOAT): ExternalRef => {
      const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
      fs.writeSync(fd, bytes, 0, bytes.length, offset);
      const ref = { file, offset, length: bytes.length };
      tensors[name] = { ...ref, shape, dataType };
      offset += Math.ceil(bytes.length / ALIGN) * ALIGN;
      return ref;
    };
    for (const spec of specs) {
      const read = (): Float32Array => {
        const [n, k] = spec.transpose ? [spec.shape[1], spec.shape[0]] : spec.shape;
        const source = spec.rows ? stackRows(ckpt, spec.rows) : ckpt.read(spec.source ?? spec.name, spec.transpose ? [n, k] : spec.shape);
        return spec.transpose ? transpose2d(source, n, k) : source;
      };
      const e = spec.encode;
      if (!e) {
        put(spec.name, read(), spec.shape);
      } else if (e.kind === 'f16') {
        const [n, k] = spec.shape;
        put(compactNames.half(spec.name), toFloat16Bits(transpose2d(read(), n, k)), [k, n], DataType.FLOAT16);
      } else {
        const [n, k] = spec.shape;
        const q = quantizeBlocks(read(), n, k, e.bits, e.blockSize);
        const nb = blockCount(k, e.blockSize);
        const codes = put(compactNames.codes(spec.name), q.codes, [n, nb, (e.blockSize * e.bits) / 8], DataType.UINT8);
        const scales = put(compactNames.scales(spec.name), q.scales, [n * nb]);
        if (e.gatherView) {
          tensors[compactNames.gatherCodes(spec.name)] = { ...codes, shape: [n, (k * e.bits) / 8], dataType: DataType.UINT8 };
          tensors[compactNames.gatherScales(spec.name)] = { ...scales, shape: [n, nb] };
        }
      }
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
