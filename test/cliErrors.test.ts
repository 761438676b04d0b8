/**
 * Bad input through the real CLI (the built dist/cli/main.js): every case ends with exactly one line
 * on stderr naming what is wrong and where, a non-zero exit, and no stack trace.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const CLI = path.resolve('dist/cli/main.js');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'headwise-cli-'));
const env = { ...process.env, HEADWISE_CACHE: path.join(tmp, 'cache') };

function run(args: string[]) {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', env, timeout: 60_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** A copy of a fixture model with one file replaced. */
function brokenModel(name: string, from: string, edit: (dir: string) => void): string {
  const dir = path.join(tmp, name);
  fs.cpSync(path.resolve(from), dir, { recursive: true });
  edit(dir);
  return dir;
}

function rewriteSafetensors(file: string, editHeader: (h: Record<string, unknown>) => void): void {
  const buf = fs.readFileSync(file);
  const n = Number(buf.readBigUInt64LE(0));
  const header = JSON.parse(buf.subarray(8, 8 + n).toString('utf8'));
  editHeader(header);
  const h = Buffer.from(JSON.stringify(header));
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(h.length));
  fs.writeFileSync(file, Buffer.concat([len, h, buf.subarray(8 + n)]));
}

const MODEL = 'models/ref-llama-7m';
const cases: Array<[string, () => string[], RegExp]> = [
  ['missing config.json', () => ['generate', '-p', 'hi', '-m', brokenModel('noconfig', MODEL, (d) => fs.rmSync(path.join(d, 'config.json')))], /config\.json: not found/],
  ['malformed config.json', () => ['generate', '-p', 'hi', '-m', brokenModel('badjson', MODEL, (d) => fs.writeFileSync(path.join(d, 'config.json'), '{"model_type": "llama",'))], /config\.json: not valid JSON/],
  ['unsupported model_type', () => ['generate', '-p', 'hi', '-m', brokenModel('bert', MODEL, (d) => {
    const f = path.join(d, 'config.json');
    fs.writeFileSync(f, JSON.stringify({ ...JSON.parse(fs.readFileSync(f, 'utf8')), model_type: 'bert' }));
  })], /model_type "bert" is not supported/],
  ['safetensors offsets past the end', () => ['generate', '-p', 'hi', '-m', brokenModel('pastend', MODEL, (d) => rewriteSafetensors(path.join(d, 'model.safetensors'), (h) => {
    (h['model.norm.weight'] as { data_offsets: number[] }).data_offsets = [0, 1e12];
  }))], /model\.safetensors: tensor "model\.norm\.weight".*(past the end|needs)/],
  ['safetensors wrong shape', () => ['generate', '-p', 'hi', '-m', brokenModel('shape', MODEL, (d) => rewriteSafetensors(path.join(d, 'model.safetensors'), (h) => {
    const t = h['model.norm.weight'] as { shape: number[]; data_offsets: number[] };
    t.shape = [2, t.shape[0] / 2];
  }))], /tensor "model\.norm\.weight" has shape \[2, 128\], expected \[256\]/],
  ['missing tensor', () => ['generate', '-p', 'hi', '-m', brokenModel('missing', MODEL, (d) => rewriteSafetensors(path.join(d, 'model.safetensors'), (h) => {
    delete h['model.layers.3.mlp.up_proj.weight'];
  }))], /missing tensor "model\.layers\.3\.mlp\.up_proj\.weight"/],
  ['prompt longer than the context', () => ['generate', '-p', 'word '.repeat(3000)], /prompt of \d+ tokens is longer than the model's context of 2048 tokens/],
  ['unknown flag', () => ['generate', '-p', 'hi', '--bogus'], /unknown option '--bogus'/],
  ['bad number', () => ['generate', '-p', 'hi', '--max-new-tokens', 'lots'], /--max-new-tokens.*'lots' is invalid/],
  ['bad choice', () => ['generate', '-p', 'hi', '--device', 'quantum'], /--device.*'quantum' is invalid/],
  ['missing prompt file', () => ['generate', '--prompt-file', path.join(tmp, 'nope.txt')], /--prompt-file .*nope\.txt: cannot read \(ENOENT\)/],
  ['no prompt', () => ['generate'], /missing --prompt/],
  ['unknown command', () => ['frobnicate'], /unknown command 'frobnicate'/],
];

describe('CLI bad input', () => {
  it.each(cases)('%s: one clear line, non-zero exit, no stack trace', (_name, args, message) => {
    const r = run(args());
    expect(r.code).not.toBe(0);
    const lines = r.stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^headwise: error: /);
    expect(lines[0]).toMatch(message);
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });

  it('--help works on every command', () => {
    const top = run(['--help']);
    expect(top.code).toBe(0);
    const commands = [...top.stdout.matchAll(/^\s{2}([a-z-]+)\b/gm)].map((m) => m[1]).filter((c) => c !== 'help');
    expect(commands).toContain('generate');
    for (const c of commands) {
      const r = run([c, '--help']);
      expect(r.code, c).toBe(0);
      expect(r.stdout).toMatch(/Usage: headwise/);
    }
  });
});
