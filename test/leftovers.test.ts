/**
 * No stray files, in the temporary folder or beside the outputs, after a normal run, after SIGINT, and
 * after the next run following a SIGKILL — for `atlas` on the bundled model (small settings) and for
 * `make-random`, through the built CLI (dist/cli/main.js). "Stray" in the temporary folder means an
 * entry carrying the run's PID (ONNX Runtime's telemetry log, headwise temporaries): other processes
 * share that folder, so only what a run itself could have made is counted.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { readAtlas } from '../src/atlas/file.js';
import { checkSameRun } from '../src/atlas/outputs.js';

const CLI = path.resolve('dist/cli/main.js');
const MODEL = path.resolve('models/ref-llama-7m');
const root = fs.mkdtempSync(path.join(os.tmpdir(), 'headwise-left-'));
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

interface Run {
  child: ChildProcess;
  done: Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }>;
}

function start(args: string[], cwd: string): Run {
  const child = spawn(process.execPath, [CLI, ...args], { cwd, env: { ...process.env, HEADWISE_PROGRESS_INTERVAL_MS: '0' }, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (c) => (stderr += c));
  const done = new Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }>((resolve) => child.on('close', (code, signal) => resolve({ code, signal, stderr })));
  return { child, done };
}

async function until(cond: () => boolean, what: string, timeoutMs = 60_000): Promise<void> {
  const t0 = Date.now();
  while (!cond()) {
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Entries of the temporary folder that a process of one of `pids` could have made. */
function tmpEntriesOf(pids: number[]): string[] {
  return fs.readdirSync(os.tmpdir()).filter((f) => pids.some((pid) => f === `mat-debug-${pid}.log` || f.includes(`headwise-${pid}-`)));
}

const ATLAS_SMALL = ['atlas', '-m', MODEL, '--threads', '1', '--samples', '2', '--context', '128', '--harm-samples', '0', '--ablation-samples', '0', '--pattern-samples', '1', '--probes', '1'];
const ATLAS_OUT = ['--out', 'a.json', '--report', 'a.html', '--export-duo', 'd.tsv', '--export-retrieval', 'r.json'];
const ATLAS_FILES = ['a.html', 'a.json', 'd.tsv', 'r.json'];

describe('no stray files', () => {
  it('atlas: after a normal run only the four outputs exist, from one run', async () => {
    const dir = path.join(root, 'atlas-normal');
    fs.mkdirSync(dir);
    const r = start([...ATLAS_SMALL, ...ATLAS_OUT], dir);
    const res = await r.done;
    expect(res.code, res.stderr).toBe(0);
    expect(fs.readdirSync(dir).sort()).toEqual(ATLAS_FILES);
    const atlas = readAtlas(path.join(dir, 'a.json'));
    for (const f of ['a.html', 'd.tsv', 'r.json']) checkSameRun(atlas, 'a.json', path.join(dir, f));
    expect(tmpEntriesOf([r.child.pid!])).toEqual([]);
  });

  it('atlas: SIGINT mid-run exits 130 and leaves nothing; after a SIGKILL the next run leaves only its outputs', async () => {
    const dir = path.join(root, 'atlas-kill');
    fs.mkdirSync(dir);
    const long = [...ATLAS_SMALL, '--samples', '60', ...ATLAS_OUT];
    const a = start(long, dir);
    let seen = '';
    a.child.stderr!.on('data', (c) => (seen += c));
    await until(() => /atlas: \d+\/\d+/.test(seen), 'atlas progress');
    a.child.kill('SIGINT');
    const ra = await a.done;
    expect(ra.code).toBe(130);
    expect(fs.readdirSync(dir)).toEqual([]);
    expect(tmpEntriesOf([a.child.pid!])).toEqual([]);

    const k = start(long, dir);
    let seenK = '';
    k.child.stderr!.on('data', (c) => (seenK += c));
    await until(() => /atlas: \d+\/\d+/.test(seenK), 'atlas progress');
    k.child.kill('SIGKILL');
    expect((await k.done).signal).toBe('SIGKILL');
    const next = start([...ATLAS_SMALL, ...ATLAS_OUT], dir);
    const rn = await next.done;
    expect(rn.code, rn.stderr).toBe(0);
    expect(fs.readdirSync(dir).sort()).toEqual(ATLAS_FILES);
    expect(tmpEntriesOf([k.child.pid!, next.child.pid!])).toEqual([]);
  });

  it('make-random: normal run, SIGINT while writing, SIGKILL while writing then the next run: only finished folders remain', async () => {
    const dir = path.join(root, 'mr');
    fs.mkdirSync(dir);
    const args = (out: string) => ['make-random', '--like', MODEL, '--out', out, '--max-positions', '4096'];
    const normal = start(args('m1'), dir);
    expect((await normal.done).code).toBe(0);
    expect(fs.readdirSync(dir)).toEqual(['m1']);
    expect(tmpEntriesOf([normal.child.pid!])).toEqual([]);

    const writing = (pid: number) => fs.readdirSync(dir).some((f) => f.includes(`.headwise-${pid}-`));
    const i = start(args('m2'), dir);
    await until(() => writing(i.child.pid!), 'the temporary folder');
    i.child.kill('SIGINT');
    expect((await i.done).code).toBe(130);
    expect(fs.readdirSync(dir)).toEqual(['m1']);

    const k = start(args('m3'), dir);
    await until(() => writing(k.child.pid!), 'the temporary folder');
    k.child.kill('SIGKILL');
    await k.done;
    expect(fs.readdirSync(dir).filter((f) => f.includes(`.headwise-${k.child.pid}-`))).toHaveLength(1); // the stale leftover
    const next = start(args('m4'), dir);
    expect((await next.done).code).toBe(0);
    expect(fs.readdirSync(dir).sort()).toEqual(['m1', 'm4']);
    expect(tmpEntriesOf([normal.child.pid!, i.child.pid!, k.child.pid!, next.child.pid!])).toEqual([]);
  });
});
