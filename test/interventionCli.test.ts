/**
 * Interventions through the real CLI (dist/cli/main.js) on the bundled ref-llama-7m: a malformed spec or
 * flag (unknown op, head out of range, α ≤ 0, span not in the prompt, ...) ends with exactly one stderr
 * line naming the file or flag and the field, exit 1; good ones change the answer; steer-profile writes
 * a spec that --intervene/--steer-heads read back; niah takes the same flags.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const CLI = path.resolve('dist/cli/main.js');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'headwise-iv-'));
const env = { ...process.env, HEADWISE_CACHE: path.join(tmp, 'cache') };

function cli(args: string[]) {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', env, timeout: 300_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

function specFile(name: string, json: unknown): string {
  const file = path.join(tmp, name);
  fs.writeFileSync(file, typeof json === 'string' ? json : JSON.stringify(json));
  return file;
}

const PROMPT =
  'In the beginning God created the heaven and the earth. The pass key is 48213. Remember it. 48213 is the pass key. ' +
  'And the earth was without form, and void.\nWhat is the pass key? The pass key is';
const gen = (...extra: string[]) => ['generate', '-p', PROMPT, '-n', '4', ...extra];

/** A flag's own value that is wrong is a usage error (exit 2); everything else here is input (exit 1). */
const USAGE = new Set(['layer out of range', 'α ≤ 0 as a flag', '--steer-heads without --highlight', 'bad --steer-heads']);

describe('intervention flags: malformed input is one line naming the field, exit 1 (2 for a bad flag value)', () => {
  const cases: Array<[string, () => string[], RegExp]> = [
    ['unknown op', () => gen('--intervene', specFile('op.json', [{ op: 'ablat', heads: ['1:1'] }])), /op\.json: interventions\[0\]\.op: unknown op "ablat".*did you mean "ablate"/],
    ['head out of range', () => gen('--intervene', specFile('head.json', { version: 1, interventions: [{ op: 'scale', heads: [{ layer: 2, head: 4 }], params: { factor: 2 } }] })), /head\.json: interventions\[0\]\.heads\[0\]\.head: 4 is out of range \(model has 4 heads per layer\)/],
    ['layer out of range', () => gen('--ablate', '5:3,6:0'), /^headwise: error: --ablate: item 2 "6:0": layer 6 is out of range \(model has 6 layers\)/],
    ['α ≤ 0 in a spec', () => gen('--intervene', specFile('alpha.json', [{ op: 'pasta', heads: ['5:3'], params: { alpha: -0.5, spans: [{ text: 'pass key' }] } }])), /alpha\.json: interventions\[0\]\.params\.alpha: must be > 0 \(got -0\.5\)/],
    ['α ≤ 0 as a flag', () => gen('--highlight', 'pass key', '--alpha', '0'), /--alpha: must be > 0 \(got 0\)/],
    ['span not in the prompt (spec)', () => gen('--intervene', specFile('span.json', [{ op: 'pasta', heads: ['5:3'], params: { spans: [{ text: 'secret code' }] } }])), /span\.json: interventions\[0\]\.params\.spans\[0\]\.text: "secret code" does not occur in the prompt/],
    ['span not in the prompt (flag)', () => gen('--highlight', 'pass key', '--highlight', 'secret code'), /--highlight #2: "secret code" does not occur in the prompt/],
    ['token span past the prompt', () => gen('--intervene', specFile('tokens.json', [{ op: 'pasta', heads: ['5:3'], params: { spans: [{ tokens: [3, 900] }] } }])), /tokens\.json: interventions\[0\]\.params\.spans\[0\]\.tokens: \[3, 900\] runs past the prompt/],
    ['not JSON', () => gen('--intervene', specFile('broken.json', '{"interventions": [')), /broken\.json: spec: not valid JSON/],
    ['unknown param', () => gen('--intervene', specFile('param.json', [{ op: 'scale', heads: ['1:1'], params: { factr: 2 } }])), /param\.json: interventions\[0\]\.params\.factr: unknown field.*did you mean "factor"/],
    ['missing file', () => gen('--intervene', path.join(tmp, 'nope.json')), /--intervene .*nope\.json: cannot read \(ENOENT\)/],
    ['--steer-heads without --highlight', () => gen('--steer-heads', '5:3'), /--steer-heads: needs --highlight/],
    ['bad --steer-heads', () => gen('--highlight', 'pass key', '--steer-heads', 'five'), /--steer-heads: "five" is neither a head list/],
  ];
  it.each(cases)('%s', (name, args, pattern) => {
    const r = cli(args());
    expect(r.code).toBe(USAGE.has(name) ? 2 : 1);
    expect(r.stdout).toBe('');
    const lines = r.stderr.trimEnd().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^headwise: error: /);
    expect(lines[0]).toMatch(pattern);
  });
});

describe('intervention flags change what the model does', () => {
  it('generate: --ablate of the retrieval heads, --intervene with mean ablation, --highlight', () => {
    const plain = JSON.parse(cli(gen('--json')).stdout);
    expect(plain.text).toMatch(/^ 48213/);
    const ablated = JSON.parse(cli(gen('--json', '--ablate', '5:3,5:1')).stdout);
    expect(ablated.interventions).toEqual(['[0] ablate (zero) 5:{1,3}']);
    expect(ablated.text).not.toMatch(/48213/);
    const mean = cli(gen('--json', '--intervene', specFile('mean.json', [{ op: 'ablate', heads: ['5:3', '5:1'], params: { mode: 'mean' } }])));
    expect(mean.code, mean.stderr).toBe(0);
    expect(JSON.parse(mean.stdout).interventions).toEqual(['[0] ablate (mean) 5:{1,3}']);
    const highlighted = cli(gen('--json', '--highlight', 'The pass key is 48213.', '--steer-heads', '5:3'));
    expect(highlighted.code, highlighted.stderr).toBe(0);
    expect(JSON.parse(highlighted.stdout).interventions[0]).toMatch(/^\[0\] pasta α=0\.01 on text "The pass key is 48213\." — 5:3$/);
  });

  it('steer-profile writes a spec that --steer-heads and --intervene read back; niah takes the flags', () => {
    const out = path.join(tmp, 'steer.json');
    const r = cli(['steer-profile', '--samples', '2', '--context', '128', '--heads', '4:*,5:*', '--top', '2', '--out', out, '--json']);
    expect(r.code, r.stderr).toBe(0);
    const profile = JSON.parse(r.stdout);
    expect(profile.heads).toHaveLength(8);
    expect(profile.top).toHaveLength(2);
    expect(profile.heads.map((h: { gain: number }) => h.gain)).toEqual([...profile.heads.map((h: { gain: number }) => h.gain)].sort((a, b) => b - a));
    const spec = JSON.parse(fs.readFileSync(out, 'utf8'));
    expect(spec.interventions[0].heads).toEqual(profile.top);
    const steered = cli(gen('--json', '--highlight', 'The pass key is 48213.', '--steer-heads', out));
    expect(steered.code, steered.stderr).toBe(0);
    const [l0, h0] = profile.top[0].split(':');
    expect(JSON.parse(steered.stdout).interventions[0]).toMatch(new RegExp(`^\\[0\\] pasta α=0\\.01 .* — .*${l0}:.*${h0}`));
    // The spec's span is a placeholder: used as is, it names the field.
    const asIs = cli(gen('--intervene', out));
    expect(asIs.code).toBe(1);
    expect(asIs.stderr).toMatch(/steer\.json: interventions\[0\]\.params\.spans\[0\]\.text: "<text to highlight>" does not occur in the prompt/);
    const n = cli(['niah', '--context', '256', '--samples', '3', '--depths', '0.5', '--mix', 'passKey', '--ablate', '5:3,5:1', '--json']);
    expect(n.code, n.stderr).toBe(0);
    const niah = JSON.parse(n.stdout);
    expect(niah.interventions).toEqual(['[0] ablate (zero) 5:{1,3}']);
    expect(niah.accuracy).toBeLessThanOrEqual(1 / 3);
  });
});
