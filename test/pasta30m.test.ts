/**
 * Issue 5 acceptance (PASTA): on ref-llama-30m, with two conflicting needles (one key, two values),
 * highlighting one needle sentence with PASTA on heads chosen by `steer-profile` raises the share of
 * answers that give the highlighted needle's value by at least 30 points over no steering. Heads are
 * profiled on seeds 1000.. and evaluated on the disjoint seeds 0..; α = 0.01. Runs the real CLI; a
 * small profile (4 prompts × 64 heads at 256 tokens) keeps it under a minute on two cores.
 */
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { HAVE_30M, MODEL_30M } from './shared.js';

describe.skipIf(!HAVE_30M)('ref-llama-30m PASTA on conflicting needles (CLI steer-profile --eval)', () => {
  it('heads from steer-profile raise the highlighted-needle share of answers by ≥ 30 points on held-out prompts', () => {
    const args = ['steer-profile', '-m', MODEL_30M, '--samples', '4', '--context', '256', '--seed', '1000', '--top', '2', '--eval', '16', '--eval-seed', '0', '--json'];
    const r = spawnSync(process.execPath, [path.resolve('dist/cli/main.js'), ...args], { encoding: 'utf8', timeout: 600_000 });
    expect(r.status, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout);
    const { unsteered, steered, heads } = out.evaluation;
    console.log(
      `[pasta30m] heads ${heads.join(', ')}; highlighted needle followed ${(unsteered.highlighted * 100).toFixed(0)}% unsteered → ` +
        `${(steered.highlighted * 100).toFixed(0)}% steered (${steered.samples} held-out prompts)`,
    );
    // The profile finds the retrieval heads of the model README (6:6 first).
    expect(out.top[0]).toBe('6:6');
    expect(steered.highlighted - unsteered.highlighted).toBeGreaterThanOrEqual(0.3);
    expect(steered.samples).toBe(16);
  }, 600_000);
});
