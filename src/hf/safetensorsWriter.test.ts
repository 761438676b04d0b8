import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { fromFloat32, toFloat32 } from './dtype.js';
import { SafetensorsFile } from './safetensors.js';
import { safetensorsHeader, SafetensorsWriter, writeSafetensors } from './safetensorsWriter.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'headwise-st-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

const bytesOf = (a: Float32Array) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);

describe('safetensors writer', () => {
  it('round-trips F32, BF16, F16, an integer tensor and an empty one through the reader', () => {
    const a = Float32Array.from({ length: 6 }, (_, i) => i * 0.5 - 1);
    const b = Float32Array.from([1, -2, 0.5, 3.25]);
    const ids = new Int32Array([7, -1, 3]);
    const bf = new Uint8Array(8);
    fromFloat32('BF16', b, bf);
    const hf = new Uint8Array(8);
    fromFloat32('F16', b, hf);
    const file = path.join(tmp, 'rt.safetensors');
    writeSafetensors(file, [
      { name: 'a', dtype: 'F32', shape: [2, 3], data: bytesOf(a) },
      { name: 'empty', dtype: 'F32', shape: [0, 4], data: new Uint8Array(0) },
      { name: 'b.bf16', dtype: 'BF16', shape: [4], data: bf },
      { name: 'b.f16', dtype: 'F16', shape: [2, 2], data: hf },
      { name: 'ids', dtype: 'I32', shape: [3], data: new Uint8Array(ids.buffer) },
    ], { format: 'pt' });
    const f = SafetensorsFile.open(file);
    try {
      expect([...f.tensors.keys()]).toEqual(['a', 'empty', 'b.bf16', 'b.f16', 'ids']);
      expect(f.readFloat32('a')).toEqual(a);
      expect(f.info('a').shape).toEqual([2, 3]);
      expect(f.readFloat32('empty').length).toBe(0);
      expect(f.readFloat32('b.bf16')).toEqual(b);
      expect(f.readFloat32('b.f16')).toEqual(b);
      expect(new Int32Array(f.readBytes('ids').slice().buffer)).toEqual(ids);
    } finally {
      f.close();
    }
    // data section starts 8-byte aligned, header padded with spaces
    const raw = fs.readFileSync(file);
    const len = Number(raw.readBigUInt64LE(0));
    expect((8 + len) % 8).toBe(0);
    expect(JSON.parse(raw.subarray(8, 8 + len).toString()).__metadata__).toEqual({ format: 'pt' });
  });

  it('streams a tensor in pieces and refuses out-of-order or oversized writes', () => {
    const file = path.join(tmp, 'pieces.safetensors');
    const x = Float32Array.from({ length: 10 }, (_, i) => i);
    const w = SafetensorsWriter.create(file, [{ name: 'x', dtype: 'F32', shape: [10] }, { name: 'y', dtype: 'F32', shape: [1] }]);
    expect(() => w.write('y', bytesOf(new Float32Array(1)))).toThrow(/expected data for "x"/);
    w.write('x', bytesOf(x.subarray(0, 4)));
    w.write('x', bytesOf(x.subarray(4)));
    expect(() => w.write('y', bytesOf(new Float32Array(2)))).toThrow(/takes 4 bytes/);
    expect(fs.existsSync(file)).toBe(false);
    w.write('y', bytesOf(new Float32Array([42])));
    w.finish();
    const f = SafetensorsFile.open(file);
    expect(f.readFloat32('x')).toEqual(x);
    expect(f.readFloat32('y')[0]).toBe(42);
    f.close();
  });

  it('leaves nothing behind when a write is incomplete or aborted', () => {
    const file = path.join(tmp, 'partial.safetensors');
    const w = SafetensorsWriter.create(file, [{ name: 'x', dtype: 'F32', shape: [4] }]);
    w.write('x', new Uint8Array(8));
    expect(() => w.finish()).toThrow(/incomplete/);
    expect(fs.readdirSync(tmp).filter((f) => f.startsWith('partial'))).toEqual([]);
  });

  it('rejects repeated names', () => {
    expect(() => safetensorsHeader([{ name: 'a', dtype: 'F32', shape: [1] }, { name: 'a', dtype: 'F32', shape: [1] }])).toThrow(/repeated/);
  });
});

describe('fromFloat32', () => {
  it('rounds to nearest even for BF16 and F16 and keeps inf/NaN', () => {
    const vals = Float32Array.from([0, -0, 1, -1.5, 65504, 1e-7, 3.14159, 1e30, Infinity, -Infinity, NaN, 6.1e-5, 2 ** -24, 1 + 2 ** -9, 1 + 3 * 2 ** -9]);
    for (const dt of ['BF16', 'F16'] as const) {
      const raw = new Uint8Array(vals.length * 2);
      fromFloat32(dt, vals, raw);
      const back = new Float32Array(vals.length);
      toFloat32(dt, raw, back);
      vals.forEach((v, i) => {
        if (Number.isNaN(v)) expect(back[i]).toBeNaN();
        else if (!Number.isFinite(v)) expect(back[i]).toBe(v);
        else if (dt === 'F16' && Math.abs(v) > 65520) expect(back[i]).toBe(Math.sign(v) * Infinity);
        else expect(Math.abs(back[i] - v)).toBeLessThanOrEqual(Math.abs(v) * (dt === 'BF16' ? 2 ** -8 : 2 ** -11) + (dt === 'F16' ? 2 ** -25 : 0));
      });
    }
    // ties go to even: 1 + 2^-8 is halfway between bf16 1 and 1 + 2^-7
    const tie = new Uint8Array(2);
    fromFloat32('BF16', Float32Array.from([1 + 2 ** -8]), tie);
    expect(new Uint16Array(tie.buffer)[0]).toBe(0x3f80);
    fromFloat32('F16', Float32Array.from([1 + 2 ** -11]), tie);
    expect(new Uint16Array(tie.buffer)[0]).toBe(0x3c00);
    fromFloat32('F16', Float32Array.from([1 + 3 * 2 ** -11]), tie);
    expect(new Uint16Array(tie.buffer)[0]).toBe(0x3c02);
  });
});
