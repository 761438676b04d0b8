/**
 * Every read-only hook point (`graph/hooks.ts`) against Hugging Face transformers, captured with PyTorch
 * forward hooks (tools/conformance/make_fixtures.py → test/fixtures/conformance/hooks/): residual
 * stream, q/k/v after RoPE, scores, z, per-head results, attention and MLP outputs, final norm, for a
 * tiny checkpoint of each family and ref-llama-7m, through `runWithCache`. Tolerance 1e-4 max abs,
 * scaled by the tensor's magnitude where that exceeds 1 (fp32 has ~7 digits: tiny-gemma's residual
 * stream reaches |x| ≈ 90, where 1e-4 is a dozen ulps; its worst relative error is 1.8e-6).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Model } from '../src/runtime/model.js';
import { runWithCache } from '../src/runtime/activationCache.js';

process.env.HEADWISE_CACHE ??= fs.mkdtempSync(path.join(os.tmpdir(), 'headwise-test-'));

interface HookFixture {
  model: string;
  inputIds: number[];
  values: Record<string, { shape: number[]; f32: string }>;
}

const dir = path.resolve('test/fixtures/conformance');
const hooksDir = path.join(dir, 'hooks');
const fixtures = fs.existsSync(hooksDir) ? fs.readdirSync(hooksDir).filter((f) => f.endsWith('.json')).sort() : [];

function f32(b64: string): Float32Array {
  const buf = Buffer.from(b64, 'base64');
  return new Float32Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength));
}

describe.each(fixtures)('hook points %s', (file) => {
  const fx = JSON.parse(fs.readFileSync(path.join(hooksDir, file), 'utf8')) as HookFixture;
  const modelDir = (JSON.parse(fs.readFileSync(path.join(dir, file), 'utf8')) as { modelDir: string }).modelDir;
  let model: Model;
  beforeAll(async () => {
    model = await Model.load(path.resolve(modelDir), { threads: 1 });
  });
  afterAll(async () => model?.dispose());

  it('match transformers within 1e-4', async () => {
    const names = Object.keys(fx.values);
    const cache = await runWithCache(model, fx.inputIds, { names: names as never });
    const worst: Record<string, number> = {};
    for (const name of names) {
      const ref = fx.values[name];
      const got = cache.get(name);
      expect(got.shape, name).toEqual(ref.shape);
      const want = f32(ref.f32);
      let m = 0;
      let scale = 1;
      for (let i = 0; i < want.length; i++) {
        m = Math.max(m, Math.abs(got.data[i] - want[i]));
        scale = Math.max(scale, Math.abs(want[i]));
      }
      worst[name] = m / scale;
    }
    const bad = Object.entries(worst).filter(([, m]) => !(m <= 1e-4));
    expect(bad, `worst per hook (relative to max(1, |ref|)): ${JSON.stringify(worst)}`).toEqual([]);
    expect(names.length).toBeGreaterThanOrEqual(2 * 9 + 1);
  });
});
