/**
 * The KL session (`deviceKl.ts`) against the float64 reference (`heads/kl.ts` klFromLogProbs) on
 * hand-made logits: identical rows, a pure shift (KL 0), small perturbations (KL ~1e-7..1e-4), large
 * ones (KL ~1), a base row with masked (−∞) tokens, several branches. On the CPU EP always; on webgpu
 * where an adapter can be created (lavapipe: `eval "$(bash tools/device/lavapipe.sh)"`), else skipped
 * with a visible message.
 */
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { klFromLogProbs, logSoftmax } from '../heads/kl.js';
import { mulberry32 } from '../eval/random.js';
import { Model, type ModelOptions } from '../runtime/model.js';
import { ort, probeWebgpu } from '../runtime/ort.js';
import { branchMeans, deviceKl, klBase } from './deviceKl.js';

const V = 3000;
const N = 3;

function gauss(rand: () => number): number {
  return Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand());
}

/** Base rows [N, V] (row 1 has masked tokens) and variant branches [B·N, V], with the kinds of change listed. */
function handMade(): { base: Float32Array; variants: Float32Array; branches: number } {
  const rand = mulberry32(7);
  const base = new Float32Array(N * V);
  for (let i = 0; i < base.length; i++) base[i] = 3 * gauss(rand);
  for (let i = 0; i < V; i += 7) base[V + i] = -Infinity;
  base[2 * V + 5] = 25; // a confident row
  const changes: ((x: number, i: number) => number)[] = [
    (x) => x, // identical
    (x) => x + 3.25, // a shift: the same distribution
    (x) => x + 1e-3 * gauss(rand), // KL ~1e-7
    (x) => x + 0.02 * gauss(rand) + 1.5, // KL ~1e-4, shifted
    (x) => x + 1.5 * gauss(rand), // KL ~1
    (x, i) => (i % 11 === 0 ? x - 8 : x), // some tokens pushed down
  ];
  const variants = new Float32Array(changes.length * N * V);
  changes.forEach((f, b) => {
    for (let r = 0; r < N; r++) for (let i = 0; i < V; i++) {
      const x = base[r * V + i];
      variants[(b * N + r) * V + i] = Number.isFinite(x) ? f(x, i) : 3 * gauss(rand); // masked in base: any finite value
    }
  });
  return { base, variants, branches: changes.length };
}

function suite(title: string, options: ModelOptions | null): void {
  describe(title, () => {
    let model: Model;
    beforeAll(async () => {
      if (options) model = await Model.load(path.resolve('test/fixtures/models/tiny-llama'), options);
    });
    afterAll(async () => model?.dispose());

    it.skipIf(!options)('equals the float64 KL on hand-made logits (≤ 1e-5 relative)', async () => {
      const { base, variants, branches } = handMade();
      const lp = Array.from({ length: N }, (_, r) => logSoftmax(base.subarray(r * V, (r + 1) * V)));
      const ref = Array.from({ length: branches * N }, (_, r) => klFromLogProbs(lp[r % N], variants.subarray(r * V, (r + 1) * V)));
      const kb = await klBase(model, base, V);
      const q = new ort.Tensor('float32', variants, [branches * N, V]);
      let kl: Float32Array;
      try {
        kl = await deviceKl(model, kb, q);
      } finally {
        kb.dispose();
      }
      expect(kl.length).toBe(branches * N);
      let worst = 0;
      ref.forEach((k, r) => {
        // Relative, with a floor of 1e-11 nats for the rows whose KL is 0 (the reference's own rounding is ~1e-14).
        const rel = Math.abs(kl[r] - k) / Math.max(k, 1e-6);
        if (k > 1e-6) worst = Math.max(worst, rel);
        expect(Math.abs(kl[r] - k), `row ${r}: device ${kl[r]} vs float64 ${k}`).toBeLessThanOrEqual(1e-5 * k + 1e-11);
      });
      expect(kl[0]).toBe(0); // identical rows: exactly 0
      expect(Math.max(...ref)).toBeGreaterThan(0.5);
      expect(Math.min(...ref.slice(2 * N, 3 * N))).toBeLessThan(1e-6);
      const means = branchMeans(kl, N);
      means.forEach((m, b) => expect(Math.abs(m - (ref[b * N] + ref[b * N + 1] + ref[b * N + 2]) / N)).toBeLessThanOrEqual(1e-5 * m + 1e-12));
      console.info(`[headwise tests] ${title}: device KL vs float64, worst relative error ${worst.toExponential(2)} over the ${ref.filter((k) => k > 1e-6).length} rows with KL > 1e-6 (${ref.length} rows)`);
    });

    it.skipIf(!options)('rejects logits that do not match the base rows', async () => {
      const { base } = handMade();
      const kb = await klBase(model, base, V);
      await expect(deviceKl(model, kb, new ort.Tensor('float32', new Float32Array(4 * V), [4, V]))).rejects.toThrow(/do not match 3 base rows/);
      kb.dispose();
    });
  });
}

suite('device KL, CPU EP', { threads: 2 });
const webgpu = await probeWebgpu();
if (!webgpu.ok) console.info(`[headwise tests] device KL, webgpu: skipped (${webgpu.reason})`);
suite('device KL, webgpu', webgpu.ok ? { device: 'webgpu', strictDevice: true } : null);
