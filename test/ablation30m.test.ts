/**
 * Acceptance of issues 3 and 5 (ablation): on ref-llama-30m, zeroing the outputs of the top 2 retrieval
 * heads (L6H6 and L6H0, per ../shared/models/README.md and the atlas) drops needle accuracy to ≤ 0.1,
 * while the same prompts without ablation are mostly answered. Runs the real CLI (`niah --ablate`, the
 * intervention shorthand) on the standard needle mix at 512 tokens (20 prompts, to stay quick on two cores).
 */
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { HAVE_30M, MODEL_30M } from './shared.js';

function niah(extra: string[]): { accuracy: number; samples: number; interventions: string[] } {
  const args = ['niah', '-m', MODEL_30M, '--context', '512', '--samples', '20', '--seed', '0', '--json', ...extra];
  const r = spawnSync(process.execPath, [path.resolve('dist/cli/main.js'), ...args], { encoding: 'utf8', timeout: 600_000 });
  expect(r.status, r.stderr).toBe(0);
  return JSON.parse(r.stdout);
}

describe.skipIf(!HAVE_30M)('ref-llama-30m: ablating the top 2 retrieval heads (CLI niah --ablate)', () => {
  it('drops needle accuracy to ≤ 0.1 from a mostly-correct baseline', () => {
    const base = niah([]);
    const ablated = niah(['--ablate', '6:6,6:0']);
    console.log(`[ablation30m] needle accuracy ${base.accuracy.toFixed(2)} → ${ablated.accuracy.toFixed(2)} with 6:6, 6:0 zeroed (${ablated.samples} prompts at 512 tokens)`);
    expect(ablated.interventions).toEqual(['[0] ablate (zero) 6:{0,6}']);
    expect(base.accuracy).toBeGreaterThanOrEqual(0.5);
    expect(ablated.accuracy).toBeLessThanOrEqual(0.1);
  }, 600_000);
});
