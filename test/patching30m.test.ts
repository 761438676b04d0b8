/**
 * Acceptance on ref-llama-30m (../shared; skipped visibly without it): for a pass-key prompt and the same
 * prompt with another key, patching the clean hook_z of the top retrieval heads 6:6 and 6:0 at the answer
 * position restores ≥ 80% of the clean logit difference, two random heads ≤ 10%; DLA terms sum to the
 * logit difference within 1e-3.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Model } from '../src/runtime/model.js';
import { activationPatching } from '../src/patching/patch.js';
import { directLogitAttribution } from '../src/patching/attribution.js';
import { randomHeads } from '../src/atlas/validate.js';
import { HAVE_30M, MODEL_30M } from './shared.js';

process.env.HEADWISE_CACHE ??= fs.mkdtempSync(path.join(os.tmpdir(), 'headwise-test-'));
const pairs = fs.readFileSync(path.resolve('examples/passkey-pairs.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));

describe.skipIf(!HAVE_30M)('patching on ref-llama-30m', () => {
  let model: Model;
  beforeAll(async () => {
    model = await Model.load(MODEL_30M, { threads: 2 });
  });
  afterAll(async () => model?.dispose());

  it('retrieval heads restore ≥ 80% of the clean logit difference, two random heads ≤ 10%', async () => {
    for (const pair of pairs.slice(0, 2)) {
      const top = await activationPatching(model, { ...pair, mode: 'joint', heads: [{ layer: 6, head: 6 }, { layer: 6, head: 0 }] });
      expect(top.cleanValue - top.corruptValue).toBeGreaterThan(5);
      expect(top.cells[0].restored).toBeGreaterThanOrEqual(0.8);
      const random = randomHeads(8, 8, 2, 1, [{ layer: 6, head: 6 }, { layer: 6, head: 0 }]);
      const other = await activationPatching(model, { ...pair, mode: 'joint', heads: random });
      expect(Math.abs(other.cells[0].restored)).toBeLessThanOrEqual(0.1);
    }
  });

  it('DLA sums to the logit difference', async () => {
    const r = await directLogitAttribution(model, pairs[0].clean, { answer: pairs[0].answer, wrong: pairs[0].wrong });
    expect(Math.abs(r.sum - r.logitDiff)).toBeLessThanOrEqual(1e-3);
  });
});
