import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { HeadwiseError } from '../errors.js';
import { parseSafetensorsHeader, SafetensorsFile } from './safetensors.js';
import { seededRandom } from '../runtime/sampling.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'headwise-st-'));

function file(header: unknown, data: Uint8Array, name = 'm.safetensors', rawHeader?: Uint8Array): string {
  const h = rawHeader ?? new TextEncoder().encode(JSON.stringify(header));
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(h.length));
  const p = path.join(tmp, name);
  fs.writeFileSync(p, Buffer.concat([len, h, data]));
  return p;
}

const f32 = (xs: number[]) => new Uint8Array(Float32Array.from(xs).buffer);

describe('safetensors reader', () => {
  it('reads f32, f16 and bf16 tensors as float32', () => {
    const bf16 = new Uint16Array([0x3f80, 0xc000]); // 1, -2
    const f16 = new Uint16Array([0x3c00, 0x3800]); // 1, 0.5
    const data = Buffer.concat([f32([1.5, -2.25]), Buffer.from(bf16.buffer), Buffer.from(f16.buffer)]);
    const p = file({
      __metadata__: { format: 'pt' },
      a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] },
      b: { dtype: 'BF16', shape: [2], data_offsets: [8, 12] },
      c: { dtype: 'F16', shape: [1, 2], data_offsets: [12, 16] },
    }, data);
    const st = SafetensorsFile.open(p);
    expect(Array.from(st.readFloat32('a'))).toEqual([1.5, -2.25]);
    expect(Array.from(st.readFloat32('b'))).toEqual([1, -2]);
    expect(Array.from(st.readFloat32('c'))).toEqual([1, 0.5]);
    st.close();
  });

  const lies: Array<[string, () => string, RegExp]> = [
    ['header length past end of file', () => {
      const p = path.join(tmp, 'len.safetensors');
      const len = Buffer.alloc(8);
      len.writeBigUInt64LE(1000n);
      fs.writeFileSync(p, Buffer.concat([len, Buffer.from('{"a": 1}')]));
      return p;
    }, /len.safetensors: header length 1000 runs past the end of the file \(16 bytes\)/],
    ['offsets past the end', () => file({ a: { dtype: 'F32', shape: [4], data_offsets: [0, 16] } }, f32([1, 2])), /tensor "a".*past the end/],
    ['overlapping tensors', () => file({ a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] }, b: { dtype: 'F32', shape: [2], data_offsets: [4, 12] } }, f32([1, 2, 3])), /"a" and "b" overlap/],
    ['shape disagreeing with offsets', () => file({ a: { dtype: 'F32', shape: [3], data_offsets: [0, 8] } }, f32([1, 2])), /tensor "a": shape \[3\].*needs 12 bytes/],
    ['unknown dtype', () => file({ a: { dtype: 'Q4', shape: [2], data_offsets: [0, 8] } }, f32([1, 2])), /tensor "a": unknown dtype "Q4"/],
    ['negative shape', () => file({ a: { dtype: 'F32', shape: [-2], data_offsets: [0, 8] } }, f32([1, 2])), /tensor "a": shape must be/],
    ['end before begin', () => file({ a: { dtype: 'F32', shape: [0], data_offsets: [8, 4] } }, f32([1, 2])), /end 4 is before begin 8/],
    ['header not JSON', () => file(null, f32([1]), 'bad.safetensors', new TextEncoder().encode('{"a": ')), /not valid UTF-8 JSON/],
    ['header a JSON array', () => file([1, 2], f32([1])), /must be a JSON object/],
  ];
  it.each(lies)('rejects a header that lies: %s', (_name, make, message) => {
    const p = make();
    expect(() => SafetensorsFile.open(p)).toThrow(HeadwiseError);
    expect(() => SafetensorsFile.open(p)).toThrow(message);
  });

  it('rejects a huge declared header length without allocating it', () => {
    const p = path.join(tmp, 'huge.safetensors');
    const len = Buffer.alloc(8);
    len.writeBigUInt64LE(2n ** 60n);
    fs.writeFileSync(p, Buffer.concat([len, Buffer.from('{}')]));
    expect(() => SafetensorsFile.open(p)).toThrow(/header length .* runs past the end/);
  });

  it('rejects a truncated file and a file too short for a header', () => {
    const p = path.join(tmp, 'short.safetensors');
    fs.writeFileSync(p, Buffer.from([1, 2, 3]));
    expect(() => SafetensorsFile.open(p)).toThrow(/too short/);
  });

  it('names a missing tensor and a non-float tensor read as weights', () => {
    const p = file({ i: { dtype: 'I64', shape: [1], data_offsets: [0, 8] } }, new Uint8Array(8), 'int.safetensors');
    const st = SafetensorsFile.open(p);
    expect(() => st.readFloat32('nope')).toThrow(/no tensor named "nope"/);
    expect(() => st.readFloat32('i')).toThrow(/tensor "i" has dtype I64, expected a float type/);
    st.close();
  });

  it('survives fuzzing: random mutations of a valid header either parse or fail with a HeadwiseError', () => {
    const header = JSON.stringify({
      __metadata__: { format: 'pt' },
      'model.w': { dtype: 'F32', shape: [2, 2], data_offsets: [0, 16] },
      'model.b': { dtype: 'BF16', shape: [4], data_offsets: [16, 24] },
    });
    const fileBytes = 8 + header.length + 24;
    const rnd = seededRandom(1234);
    const alphabet = '{}[]":,0123456789-eE.FBI16832tuvwxyz_ \\\u00ff';
    let parsed = 0;
    let rejected = 0;
    for (let i = 0; i < 5000; i++) {
      const chars = header.split('');
      const edits = 1 + Math.floor(rnd() * 4);
      for (let e = 0; e < edits; e++) {
        const at = Math.floor(rnd() * chars.length);
        const op = rnd();
        const c = alphabet[Math.floor(rnd() * alphabet.length)];
        if (op < 0.4) chars[at] = c;
        else if (op < 0.7) chars.splice(at, 1);
        else chars.splice(at, 0, c);
      }
      const bytes = new TextEncoder().encode(chars.join(''));
      try {
        parseSafetensorsHeader(bytes, fileBytes, 'fuzz.safetensors');
        parsed++;
      } catch (e) {
        expect(e).toBeInstanceOf(HeadwiseError);
        expect((e as Error).message).not.toContain('\n');
        rejected++;
      }
    }
    expect(parsed + rejected).toBe(5000);
    expect(rejected).toBeGreaterThan(1000);
  });

  it('survives fuzzing of whole files: random bytes and random length prefixes', () => {
    const rnd = seededRandom(99);
    for (let i = 0; i < 300; i++) {
      const n = Math.floor(rnd() * 200);
      const bytes = Buffer.alloc(n);
      for (let j = 0; j < n; j++) bytes[j] = Math.floor(rnd() * 256);
      if (n >= 8 && rnd() < 0.5) bytes.writeBigUInt64LE(BigInt(Math.floor(rnd() * n)), 0);
      const p = path.join(tmp, `rand${i}.safetensors`);
      fs.writeFileSync(p, bytes);
      try {
        SafetensorsFile.open(p).close();
      } catch (e) {
        expect(e).toBeInstanceOf(HeadwiseError);
      }
    }
  });
});
