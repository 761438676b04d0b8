/**
 * Fuzz: safetensors headers and whole files. Mutated headers of a valid file (every field replaced by
 * edge values, keys dropped or added, dtype names such as "constructor", nesting thousands deep) and
 * random byte files through the real reader; every case parses or is refused cleanly.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { parseSafetensorsHeader, SafetensorsFile } from '../../src/hf/safetensors.js';
import { safetensorsHeader } from '../../src/hf/safetensorsWriter.js';
import { clean, mutate, newTally, record, seeded } from './fuzz.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'headwise-fuzz-st-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

const specs = [
  { name: 'model.embed_tokens.weight', shape: [16, 8], dtype: 'F32' as const },
  { name: 'model.layers.0.self_attn.q_proj.weight', shape: [8, 8], dtype: 'BF16' as const },
  { name: 'model.norm.weight', shape: [8], dtype: 'F16' as const },
  { name: 'empty', shape: [0, 4], dtype: 'F32' as const },
];
const { header } = safetensorsHeader(specs, { format: 'pt' });
const base = JSON.parse(new TextDecoder().decode(header)) as Record<string, unknown>;
const dataBytes = 16 * 8 * 4 + 8 * 8 * 2 + 8 * 2;
const KEYS = ['dtype', 'shape', 'data_offsets', '__metadata__'];

it('fuzz: 2 000 mutated safetensors headers parse or are refused with one clean line', () => {
  const rng = seeded(11);
  const tally = newTally();
  expect(clean(tally, 'valid header', () => void parseSafetensorsHeader(header, 8 + header.length + dataBytes, 'm.safetensors'))).toBe('accepted');
  for (let i = 0; i < 2000; i++) {
    // Sometimes a dtype or shape is replaced by a prototype name or a huge shape on purpose, then mutated further.
    const start = structuredClone(base);
    if (rng.chance(0.15)) (start[rng.pick(specs).name] as Record<string, unknown>).dtype = rng.pick(['constructor', '__proto__', 'toString', 'valueOf', 'f32', 'F8_E4M3', '']);
    if (rng.chance(0.05)) (start[rng.pick(specs).name] as Record<string, unknown>).shape = [2 ** 40, 2 ** 40];
    const doc = rng.chance(0.8) ? mutate(start, rng, { keys: KEYS }) : start;
    const bytes = new TextEncoder().encode(JSON.stringify(doc) ?? 'null');
    clean(tally, `header case ${i}`, () => void parseSafetensorsHeader(bytes, 8 + bytes.length + dataBytes, 'm.safetensors'));
  }
  record('safetensors headers', tally);
  expect(tally.cases).toBeGreaterThanOrEqual(2000);
  expect(tally.refused).toBeGreaterThan(0);
});

it('fuzz: 300 random and truncated safetensors files open or are refused with one clean line', () => {
  const rng = seeded(12);
  const tally = newTally();
  const valid = Buffer.concat([Buffer.alloc(8), header, Buffer.alloc(dataBytes)]);
  valid.writeBigUInt64LE(BigInt(header.length), 0);
  for (let i = 0; i < 300; i++) {
    let bytes: Buffer;
    const r = rng.next();
    if (r < 0.3) bytes = valid.subarray(0, rng.int(0, valid.length));
    else if (r < 0.6) {
      bytes = Buffer.from(valid);
      for (let k = rng.int(1, 8); k > 0; k--) bytes[rng.int(0, bytes.length - 1)] = rng.int(0, 255);
    } else if (r < 0.8) {
      bytes = Buffer.from(valid);
      bytes.writeBigUInt64LE(BigInt(rng.pick([0, 1, 2 ** 20, 2 ** 40, Number.MAX_SAFE_INTEGER, header.length + 1, header.length - 1])), 0);
    } else bytes = Buffer.from(Array.from({ length: rng.int(0, 64) }, () => rng.int(0, 255)));
    const file = path.join(tmp, `f${i}.safetensors`);
    fs.writeFileSync(file, bytes);
    clean(tally, `file case ${i}`, () => {
      const f = SafetensorsFile.open(file);
      try {
        for (const name of f.tensors.keys()) if (name !== 'empty') f.readFloat32(name);
      } finally {
        f.close();
      }
    });
  }
  record('safetensors files', tally);
  expect(tally.cases).toBe(300);
});
