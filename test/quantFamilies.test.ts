/**
 * Compact weights on every architecture family's tiny fixture (llama, tied llama, mistral, qwen2 with
 * q/k/v biases, qwen3 with q/k norms, gpt2 with Conv1D weights and learned positions): the q8 and q4
 * graphs compile, run, and give next-token distributions close to float32's on the same ids. The
 * fixtures have no tokenizer, so there is no atlas of them; this is the per-family smoke check.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { weightsFileName } from '../src/graph/compile.js';
import { weightOptions } from '../src/graph/quant.js';
import { modelCacheDir } from '../src/graph/weights.js';
import { logitDrift, logitsAtEveryPosition } from '../src/eval/quantQuality.js';
import { Model } from '../src/runtime/model.js';

process.env.HEADWISE_CACHE ??= fs.mkdtempSync(path.join(os.tmpdir(), 'headwise-qfam-'));
const dir = path.resolve('test/fixtures/models');
const families = fs.readdirSync(dir);

describe.each(families)('%s at q8 / q4', (name) => {
  it('runs and stays close to float32', async () => {
    const f32 = await Model.load(path.join(dir, name), { threads: 1 });
    try {
      const V = f32.config.vocabSize;
      const ids = Array.from({ length: 24 }, (_, i) => (i * 37 + 5) % V);
      const ref = await logitsAtEveryPosition(f32, ids, 8);
      const kl: Record<string, number> = {};
      for (const format of ['q8', 'q4'] as const) {
        const m = await Model.load(path.join(dir, name), { threads: 1, weights: weightOptions(format, 16) });
        try {
          const out = await logitsAtEveryPosition(m, ids, 8);
          expect(out.every(Number.isFinite)).toBe(true);
          kl[format] = logitDrift(ref, out, V).klMean;
          // Every matrix (MoE experts and routers, fused qkv / gate_up, Conv1D, embeddings) is stored compactly: none left float32.
          const manifest = JSON.parse(fs.readFileSync(path.join(modelCacheDir(m.ckpt), weightsFileName('append', m.weights).replace(/\.bin$/, '.json')), 'utf8')).manifest;
          const f32Matrices = Object.entries(manifest.tensors as Record<string, { shape: number[]; dataType?: number }>)
            .filter(([name, t]) => t.shape.length === 2 && (t.dataType ?? 1) === 1 && !name.endsWith('#sg'));
          expect(f32Matrices.map(([name]) => name)).toEqual([]);
        } finally {
          await m.dispose();
        }
      }
      // Measured (block 16, random tiny weights): q8 1.2e-3–2.5e-3 nats, tiny-gemma 1.25e-2 (its tied
      // embeddings scaled by √d: 3.7e-3 with float32 embeddings and fp32 compute); q4 0.11–0.32.
      expect(kl.q8).toBeGreaterThan(0);
      expect(kl.q8).toBeLessThan(2e-2);
      expect(kl.q4).toBeLessThan(1);
      expect(kl.q8).toBeLessThan(kl.q4);
    } finally {
      await f32.dispose();
    }
  });
});
