/**
 * The research commands through the real CLI (built dist/cli/main.js) on the bundled ref-llama-7m:
 * `patch` (head × position, JSON and the HTML heatmap), `importance` (JSON sorted by effect, with
 * intervals) and `attribute`; bad input ends with one line on stderr and exit 1.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const CLI = path.resolve('dist/cli/main.js');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'headwise-research-'));
const env = { ...process.env, HEADWISE_CACHE: process.env.HEADWISE_CACHE ?? path.join(tmp, 'cache') };
const pairs = fs.readFileSync(path.resolve('examples/passkey-pairs.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));

function run(args: string[]) {
  const r = spawnSync(process.execPath, [CLI, ...args, '--threads', '2'], { encoding: 'utf8', env, timeout: 120_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('research CLI (ref-llama-7m)', () => {
  const pair = pairs[0];
  const clean = path.join(tmp, 'clean.txt');
  const corrupt = path.join(tmp, 'corrupt.txt');
  fs.writeFileSync(clean, pair.clean);
  fs.writeFileSync(corrupt, pair.corrupt);

  it('patch --mode head-pos: JSON cells for every head × position, and a heatmap report', () => {
    const report = path.join(tmp, 'patch.html');
    const r = run(['patch', '--clean-file', clean, '--corrupt-file', corrupt, '--answer', pair.answer, '--wrong', pair.wrong, '--mode', 'head-pos', '--positions', 'diff', '--heads', '5:*', '--json', '--report', report]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.format).toBe('headwise.patching/1');
    expect(out.cells).toHaveLength(4 * out.positions.length);
    expect(out.positions.at(-1)).toBe(out.clean.length - 1);
    const best = out.cells.reduce((a: { restored: number }, b: { restored: number }) => (b.restored > a.restored ? b : a));
    expect(best).toMatchObject({ layer: 5, head: 3, position: out.clean.length - 1 });
    const html = fs.readFileSync(report, 'utf8');
    expect(html).toContain('Plot.cell');
    expect(html).toContain('"format":"headwise.patching/1"');
  });

  it('importance --json: every head, sorted by effect, with intervals', () => {
    const file = path.join(tmp, 'prompts.jsonl');
    fs.writeFileSync(file, pairs.slice(0, 3).map((p) => JSON.stringify(p)).join('\n'));
    const r = run(['importance', '--prompts', file, '--ablation', 'resample', '--scope', 'answer', '--json']);
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.metric).toBe('logit-diff');
    expect(out.heads).toHaveLength(24);
    expect(out.heads[0]).toMatchObject({ layer: 5, head: 3 });
    for (const h of out.heads) expect(h.ci[0]).toBeLessThanOrEqual(h.ci[1]);
  });

  it('attribute prints the DLA table', () => {
    const r = run(['attribute', '--prompt-file', clean, '--answer', pair.answer, '--wrong', pair.wrong, '--top', '3']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/terms sum to/);
    expect(r.stdout).toMatch(/^5:3 /m);
  });

  it('bad input: one line, exit 1', () => {
    const bad = path.join(tmp, 'bad.jsonl');
    fs.writeFileSync(bad, '{"prompt": "x", "answer": " y"}\n{"promt": "x", "answer": " y"}\n');
    for (const [args, msg] of [
      [['importance', '--prompts', bad], /bad.jsonl:2: unknown field "promt"/],
      [['patch', '--clean', 'a b', '--corrupt', 'a b c', '--answer', ' 1'], /same number of tokens/],
      [['patch', '--clean-file', clean, '--corrupt-file', corrupt, '--answer', pair.answer, '--mode', 'joint'], /joint patching needs the heads/],
    ] as const) {
      const r = run([...args]);
      expect(r.code, args.join(' ')).toBe(1);
      expect(r.stderr).toMatch(msg);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
    }
  });
});
