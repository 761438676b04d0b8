/**
 * Writes safetensors files (the format `safetensors.ts` reads): the header is laid out first from the
 * tensors' names, dtypes and shapes, then each tensor's bytes are streamed in, in header order and in
 * as many pieces as the caller likes, so a multi-gigabyte checkpoint never sits in memory. The file is
 * written under a temporary name in the same folder and renamed into place only when every tensor is
 * complete; an aborted write leaves nothing behind. Conversion from float32 is `fromFloat32` (dtype.ts).
 */
import fs from 'node:fs';
import path from 'node:path';
import { HeadwiseError } from '../errors.js';
import { DTYPE_BYTES, type SafetensorsDtype } from './dtype.js';
import { releaseTemp, removeTemp, tempPathFor } from '../io/tempFiles.js';

export interface TensorSpec {
  name: string;
  dtype: SafetensorsDtype;
  shape: number[];
}

/** The header JSON, padded with spaces so the data section starts 8-byte aligned. */
export function safetensorsHeader(specs: TensorSpec[], metadata?: Record<string, string>): { header: Uint8Array; offsets: [number, number][] } {
  const json: Record<string, unknown> = {};
  if (metadata) json.__metadata__ = metadata;
  const offsets: [number, number][] = [];
  let offset = 0;
  const seen = new Set<string>();
  for (const s of specs) {
    if (s.name === '__metadata__' || seen.has(s.name)) throw new HeadwiseError(`safetensors: tensor name "${s.name}" is reserved or repeated`);
    seen.add(s.name);
    if (!s.shape.every((d) => Number.isSafeInteger(d) && d >= 0)) throw new HeadwiseError(`safetensors: tensor "${s.name}" has a bad shape [${s.shape.join(', ')}]`);
    const bytes = s.shape.reduce((a, b) => a * b, 1) * DTYPE_BYTES[s.dtype];
    offsets.push([offset, offset + bytes]);
    json[s.name] = { dtype: s.dtype, shape: s.shape, data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  let text = JSON.stringify(json);
  text += ' '.repeat((8 - ((8 + Buffer.byteLength(text)) % 8)) % 8);
  return { header: new Uint8Array(Buffer.from(text, 'utf8')), offsets };
}

/**
 * One safetensors file being written. Call `write` with each tensor's bytes in header order (a tensor
 * may come in several calls), then `finish`; on any error call `abort`.
 */
export class SafetensorsWriter {
  private fd: number | null;
  private readonly tmp: string;
  private readonly sizes: number[];
  private tensor = 0;
  private filled = 0;
  private position: number;

  private constructor(readonly file: string, readonly specs: TensorSpec[], fd: number, tmp: string, header: Uint8Array, offsets: [number, number][]) {
    this.fd = fd;
    this.tmp = tmp;
    this.sizes = offsets.map(([b, e]) => e - b);
    const len = Buffer.alloc(8);
    len.writeBigUInt64LE(BigInt(header.length));
    fs.writeSync(fd, len, 0, 8, 0);
    fs.writeSync(fd, header, 0, header.length, 8);
    this.position = 8 + header.length;
    this.skipEmpty();
  }

  static create(file: string, specs: TensorSpec[], metadata?: Record<string, string>): SafetensorsWriter {
    const { header, offsets } = safetensorsHeader(specs, metadata);
    fs.mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
    const tmp = tempPathFor(path.resolve(file));
    const fd = fs.openSync(tmp, 'w');
    try {
      return new SafetensorsWriter(file, specs, fd, tmp, header, offsets);
    } catch (e) {
      fs.closeSync(fd);
      removeTemp(tmp);
      throw e;
    }
  }

  /** The tensor the next `write` continues, or null when all are complete. */
  get current(): TensorSpec | null {
    return this.specs[this.tensor] ?? null;
  }

  /** Appends bytes to the current tensor; a piece may not run past the tensor's end. */
  write(name: string, bytes: Uint8Array): void {
    if (this.fd === null) throw new Error(`${this.file}: writer is closed`);
    const spec = this.current;
    if (!spec || spec.name !== name) throw new Error(`safetensors writer: expected data for ${spec ? `"${spec.name}"` : 'no more tensors'}, got "${name}"`);
    const size = this.sizes[this.tensor];
    if (this.filled + bytes.length > size) throw new Error(`safetensors writer: "${name}" takes ${size} bytes, got ${this.filled + bytes.length}`);
    let done = 0;
    while (done < bytes.length) done += fs.writeSync(this.fd, bytes, done, bytes.length - done, this.position + done);
    this.position += bytes.length;
    this.filled += bytes.length;
    if (this.filled === size) {
      this.tensor++;
      this.filled = 0;
      this.skipEmpty();
    }
  }

  /** Flushes to disk and renames into place; every tensor must be complete. */
  finish(): void {
    if (this.fd === null) throw new Error(`${this.file}: writer is closed`);
    const spec = this.current;
    if (spec) {
      this.abort();
      throw new Error(`safetensors writer: tensor "${spec.name}" is incomplete`);
    }
    fs.fsyncSync(this.fd);
    fs.closeSync(this.fd);
    this.fd = null;
    fs.renameSync(this.tmp, this.file);
    releaseTemp(this.tmp);
  }

  abort(): void {
    if (this.fd !== null) {
      try {
        fs.closeSync(this.fd);
      } catch {
        // already closed
      }
    }
    this.fd = null;
    removeTemp(this.tmp);
  }

  private skipEmpty(): void {
    while (this.tensor < this.sizes.length && this.sizes[this.tensor] === 0) this.tensor++;
  }
}

/** Writes whole tensors given as byte arrays, in order: for small files and tests. */
export function writeSafetensors(file: string, tensors: (TensorSpec & { data: Uint8Array })[], metadata?: Record<string, string>): void {
  const w = SafetensorsWriter.create(file, tensors, metadata);
  try {
    for (const t of tensors) if (t.data.length) w.write(t.name, t.data);
    w.finish();
  } catch (e) {
    w.abort();
    throw e;
  }
}
