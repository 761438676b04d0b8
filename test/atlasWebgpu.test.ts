/**
 * The atlas and NIAH with KV mode `present` (device KV tensors, one cache reset between prompts):
 * a small atlas of the bundled ref-llama-7m (2 needle prompts of 128 tokens, streaming harm, ablation,
 * probes) and NIAH answers (greedy decode and teacher-forced) must match the CPU `append` reference.
 *
 * - `present` on the CPU EP runs always (to 1e-4 on every metric).
 * - `webgpu` runs where a WebGPU adapter can be created (lavapipe without a GPU:
 *   `eval "$(bash tools/device/lavapipe.sh)"`) and is skipped with a visible message where it cannot.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AtlasFile } from '../src/atlas/file.js';
import { runAtlas, type AtlasOptions } from '../src/atlas/run.js';
import { DEFAULT_MODEL } from '../src/cli/common.js';
import { answerSample } from '../src/eval/niahRun.js';
import { niahSamples } from '../src/eval/niahSet.js';
import { loadHaystack } from '../src/eval/haystack.js';
import { Model, type ModelOptions } from '../src/runtime/model.js';
import { probeWebgpu } from '../src/runtime/ort.js';

process.env.HEADWISE_CACHE ??= fs.mkdtempSync(path.join(os.tmpdir(), 'headwise-test-'));

const SMALL: AtlasOptions = { samples: 2, contextTokens: 128, patternSamples: 2, captureStride: 8, harmSamples: 1, harmLayersPerRun: 3, ablationSamples: 1, probes: 1, probeTokens: 24, prefillChunk: 64 };

/** Largest |a − b| over every finite cell of every metric; NaN cells must be NaN in both. */
function worstMetricDiff(a: AtlasFile, b: AtlasFile): number {
  expect(Object.keys(b.metrics).sort()).toEqual(Object.keys(a.metrics).sort());
  let worst = 0;
  for (const [name, table] of Object.entries(a.metrics)) {
    table.forEach((row, l) => row.forEach((v, h) => {
      const w = b.metrics[name][l][h];
      expect(Number.isNaN(w), `${name} L${l}H${h}`).toBe(Number.isNaN(v));
      if (!Number.isNaN(v)) worst = Math.max(worst, Math.abs(v - w));
    }));
  }
  return worst;
}

function suite(title: string, options: ModelOptions, tol: number): void {
  describe(title, () => {
    let ref: Model;
    let dut: Model;
    let refAtlas: AtlasFile;
    beforeAll(async () => {
      ref = await Model.load(DEFAULT_MODEL);
      dut = await Model.load(DEFAULT_MODEL, options);
      refAtlas = await runAtlas(ref, SMALL);
    });
    afterAll(async () => {
      await ref?.dispose();
      await dut?.dispose();
    });

    it('runs the atlas (cache reset between prompts) with the CPU reference metrics', async () => {
      expect(dut.kvMode).toBe('present');
      const atlas = await runAtlas(dut, SMALL);
      const worst = worstMetricDiff(refAtlas, atlas);
      console.info(`[headwise tests] ${title} atlas: max |Δmetric| ${worst.toExponential(2)} over ${Object.keys(atlas.metrics).length} metrics`);
      expect(worst).toBeLessThanOrEqual(tol);
      expect(atlas.niah).toEqual(refAtlas.niah);
      expect(atlas.topHeads!.retrieval.slice(0, 2).map((h) => [h.layer, h.head])).toEqual(refAtlas.topHeads!.retrieval.slice(0, 2).map((h) => [h.layer, h.head]));
    });

    it('answers NIAH prompts as the CPU does (greedy decode and teacher-forced)', async () => {
      const items = niahSamples(ref.tokenizer!, loadHaystack(), { contextTokens: [128], depths: [0.5], samples: 1, seed: 3 });
      for (const readout of ['decode', 'teacherForced'] as const) {
        for (const item of items) {
          const a = await answerSample(ref, item, { readout, prefillChunk: 64 });
          const b = await answerSample(dut, item, { readout, prefillChunk: 64 });
          expect(b.text, `${readout}: ${item.sample.value}`).toBe(a.text);
          expect(b.correct).toBe(a.correct);
        }
      }
    });
  });
}

suite('atlas and niah, present KV mode on cpu', { kvMode: 'present' }, 1e-4);

const adapter = await probeWebgpu();
if (!adapter.ok) {
  console.warn(`[headwise tests] SKIPPING webgpu atlas tests: ${adapter.reason} (on a machine without a GPU: eval "$(bash tools/device/lavapipe.sh)")`);
  describe('atlas on webgpu', () => {
    it.skip(`skipped: ${adapter.reason}`, () => {});
  });
} else {
  suite('atlas and niah on webgpu', { device: 'webgpu', strictDevice: true }, 2e-3);
}
