/**
 * Reads safetensors files: an 8-byte little-endian header length, a JSON header naming each tensor's
 * dtype, shape and byte range, then the raw data. The header is checked completely before any data is
 * trusted (lengths, dtypes, shapes, ranges inside the file, no overlaps), and tensor data is read on
 * demand with positioned reads, so a checkpoint is never held in memory as a whole.
 * Sharded checkpoints (`model.safetensors.index.json`) are assembled in `checkpoint.ts`.
 */
import fs from 'node:fs';
import path from 'node:path';
import { HeadwiseError } from '../errors.js';
import { DTYPE_BYTES, FLOAT_DTYPES, isSafetensorsDtype, toFloat32, type SafetensorsDtype } from './dtype.js';

export interface TensorInfo {
  name: string;
  dtype: SafetensorsDtype;
  shape: number[];
  /** Byte range relative to the start of the data section. */
  begin: number;
  end: number;
}

const MAX_HEADER_BYTES = 100 * 1024 * 1024;

/**
 * Validates a safetensors header. `fileBytes` is the whole file's size. Throws HeadwiseError naming
 * `where` (the file) and the offending tensor.
 */
export function parseSafetensorsHeader(headerBytes: Uint8Array, fileBytes: number, where: string): Map<string, TensorInfo> {
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(headerBytes));
  } catch {
    throw new HeadwiseError(`${where}: safetensors header is not valid UTF-8 JSON`);
  }
  if (json === null || typeof json !== 'object' || Array.isArray(json)) {
    throw new HeadwiseError(`${where}: safetensors header must be a JSON object`);
  }
  const dataBytes = fileBytes - 8 - headerBytes.length;
  const tensors = new Map<string, TensorInfo>();
  for (const [name, raw] of Object.entries(json as Record<string, unknown>)) {
    if (name === '__metadata__') continue;
    const at = `${where}: tensor "${name}"`;
    if (raw === null || typeof raw !== 'object') throw new HeadwiseError(`${at}: entry must be an object`);
    const { dtype, shape, data_offsets: offsets } = raw as Record<string, unknown>;
    if (!isSafetensorsDtype(dtype)) throw new HeadwiseError(`${at}: unknown dtype ${JSON.stringify(dtype)}`);
    if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      throw new HeadwiseError(`${at}: shape must be a list of non-negative integers`);
    }
    if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every((o) => Number.isSafeInteger(o) && o >= 0)) {
      throw new HeadwiseError(`${at}: data_offsets must be two non-negative integers`);
    }
    const [begin, end] = offsets as [number, number];
    if (end < begin) throw new HeadwiseError(`${at}: data_offsets end ${end} is before begin ${begin}`);
    if (end > dataBytes) {
      throw new HeadwiseError(`${at}: data_offsets [${begin}, ${end}] run past the end of the file (${dataBytes} data bytes)`);
    }
    const elements = (shape as number[]).reduce((a, b) => a * b, 1);
    if (elements * DTYPE_BYTES[dtype] !== end - begin) {
      throw new HeadwiseError(
        `${at}: shape [${shape.join(', ')}] of ${dtype} needs ${elements * DTYPE_BYTES[dtype]} bytes but data_offsets give ${end - begin}`,
      );
    }
    tensors.set(name, { name, dtype, shape: shape as number[], begin, end });
  }
  const sorted = [...tensors.values()].filter((t) => t.end > t.begin).sort((a, b) => a.begin - b.begin);
  for (let i = 1; i < sorted.length; i++) {
    if (sorted[i].begin < sorted[i - 1].end) {
      throw new HeadwiseError(`${where}: tensors "${sorted[i - 1].name}" and "${sorted[i].name}" overlap in the data section`);
    }
  }
  return tensors;
}

/** One open safetensors file. Close it when done. */
export class SafetensorsFile {
  readonly tensors: Map<string, TensorInfo>;
  private readonly dataStart: number;
  private fd: number | null;

  private constructor(readonly file: string, fd: number, tensors: Map<string, TensorInfo>, dataStart: number) {
    this.fd = fd;
    this.tensors = tensors;
    this.dataStart = dataStart;
  }

  static open(file: string): SafetensorsFile {
    const where = path.basename(file);
    let fd: number;
    try {
      fd = fs.openSync(file, 'r');
    } catch (e) {
      throw new HeadwiseError(`${file}: cannot open (${(e as NodeJS.ErrnoException).code ?? 'error'})`);
    }
    try {
      const size = fs.fstatSync(fd).size;
      if (size < 8) throw new HeadwiseError(`${where}: file is ${size} bytes, too short for a safetensors header`);
      const lenBuf = Buffer.alloc(8);
      fs.readSync(fd, lenBuf, 0, 8, 0);
      const headerLen = lenBuf.readBigUInt64LE(0);
      if (headerLen > BigInt(size - 8)) {
        throw new HeadwiseError(`${where}: header length ${headerLen} runs past the end of the file (${size} bytes)`);
      }
      if (headerLen > BigInt(MAX_HEADER_BYTES)) throw new HeadwiseError(`${where}: header length ${headerLen} is implausibly large`);
      const header = Buffer.alloc(Number(headerLen));
      fs.readSync(fd, header, 0, header.length, 8);
      const tensors = parseSafetensorsHeader(header, size, where);
      return new SafetensorsFile(file, fd, tensors, 8 + header.length);
    } catch (e) {
      fs.closeSync(fd);
      throw e;
    }
  }

  /** Raw bytes of a tensor, read with one positioned read. */
  readBytes(name: string): Uint8Array {
    const info = this.info(name);
    const buf = Buffer.alloc(info.end - info.begin);
    this.readInto(info, buf);
    return buf;
  }

  /** A tensor converted to float32, written into `out` if given (must have the element count). */
  readFloat32(name: string, out?: Float32Array): Float32Array {
    const info = this.info(name);
    if (!FLOAT_DTYPES.has(info.dtype)) {
      throw new HeadwiseError(`${path.basename(this.file)}: tensor "${name}" has dtype ${info.dtype}, expected a float type`);
    }
    const n = info.shape.reduce((a, b) => a * b, 1);
    const result = out ?? new Float32Array(n);
    if (result.length !== n) throw new Error(`readFloat32: out has ${result.length} elements, tensor has ${n}`);
    if (info.dtype === 'F32') {
      this.readInto(info, new Uint8Array(result.buffer, result.byteOffset, n * 4));
    } else {
      const raw = Buffer.alloc(info.end - info.begin);
      this.readInto(info, raw);
      toFloat32(info.dtype, raw, result);
    }
    return result;
  }

  info(name: string): TensorInfo {
    const info = this.tensors.get(name);
    if (!info) throw new HeadwiseError(`${path.basename(this.file)}: no tensor named "${name}"`);
    return info;
  }

  close(): void {
    if (this.fd !== null) fs.closeSync(this.fd);
    this.fd = null;
  }

  private readInto(info: TensorInfo, dest: Uint8Array): void {
    if (this.fd === null) throw new Error(`${this.file} is closed`);
    let done = 0;
    const total = info.end - info.begin;
    while (done < total) {
      const n = fs.readSync(this.fd, dest, done, Math.min(total - done, 1 << 30), this.dataStart + info.begin + done);
      if (n === 0) throw new HeadwiseError(`${path.basename(this.file)}: tensor "${info.name}" is truncated`);
      done += n;
    }
  }
}
