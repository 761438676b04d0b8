/**
 * Issue 2 acceptance: `headwise generate` on ref-llama-30m answers a pass-key prompt from its README
 * correctly at 2000 tokens of haystack (needle at three depths), through the real CLI.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { HfTokenizer } from '../src/hf/tokenizer.js';
import { exactMatch, generateNeedleSample, loadHaystack } from '../src/eval/index.js';
import { HAVE_30M, MODEL_30M } from './shared.js';

describe.skipIf(!HAVE_30M)('ref-llama-30m pass key at 2000 tokens (CLI)', () => {
  it.each([0.1, 0.5, 0.9])('answers with the needle at depth %s', (depth) => {
    const tok = HfTokenizer.load(MODEL_30M);
    const sample = generateNeedleSample(tok, loadHaystack(), { variant: 'passKey', contextTokens: 2000, depth, seed: 7 });
    expect(sample.inputIds.length).toBeGreaterThan(1900);
    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'headwise-pk-')), 'prompt.txt');
    fs.writeFileSync(file, sample.prompt);
    const r = spawnSync(process.execPath, [path.resolve('dist/cli/main.js'), 'generate', '-m', MODEL_30M, '--prompt-file', file, '-n', '12', '--json'], { encoding: 'utf8', timeout: 120_000 });
    expect(r.status, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.promptTokens).toBe(sample.inputIds.length);
    expect(exactMatch(out.text, sample), `expected ${sample.value}, got ${JSON.stringify(out.text)}`).toBe(true);
  });
});
