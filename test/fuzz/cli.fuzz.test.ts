/**
 * Fuzz: command lines, in process. `runCli` (src/cli/program.ts) runs the real commander program with
 * stdout/stderr captured, so thousands of command lines cost milliseconds each. The flags of every
 * subcommand are read from the program itself; each case combines random flags and values (valid
 * choices, edge strings) with one flag error, or — for a smaller set that reaches the command's own
 * checks — valid flags with one bad value (a head out of range, an output path that is a folder, a
 * missing file), and a few fully valid runs on the bundled model. Every case must end with exit 0, or
 * 1 / 2 and exactly one line on stderr, never an internal error or a stack trace.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, expect, it } from 'vitest';
import type { Option } from 'commander';
import { buildProgram, runCli } from '../../src/cli/program.js';
import { newTally, record, seeded, type Rng, type Tally } from './fuzz.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'headwise-fuzz-cli-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

interface Outcome {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs one command line in this process with stdout and stderr captured. */
async function cli(argv: string[]): Promise<Outcome> {
  let stdout = '';
  let stderr = '';
  const [ow, ew] = [process.stdout.write, process.stderr.write];
  process.stdout.write = ((s: string | Uint8Array) => ((stdout += String(s)), true)) as typeof process.stdout.write;
  process.stderr.write = ((s: string | Uint8Array) => ((stderr += String(s)), true)) as typeof process.stderr.write;
  try {
    const code = await runCli(argv, { writeErr: (s) => (stderr += s), writeOut: (s) => (stdout += s) });
    return { code, stdout, stderr };
  } finally {
    process.stdout.write = ow;
    process.stderr.write = ew;
  }
}

function assertClean(argv: string[], o: Outcome, tally: Tally, expected?: number[]): void {
  tally.cases++;
  const where = `headwise ${argv.map((a) => JSON.stringify(a)).join(' ')}`;
  expect([0, 1, 2], `${where}: exit ${o.code}\n${o.stderr}`).toContain(o.code);
  if (expected) expect(expected, `${where}: exit ${o.code}\n${o.stderr}`).toContain(o.code);
  if (o.code === 0) {
    tally.accepted++;
    return;
  }
  tally.refused++;
  const lines = o.stderr.split('\n').filter((l) => l.trim() !== '');
  expect(lines.length, `${where}: stderr has ${lines.length} lines:\n${o.stderr}`).toBe(1);
  expect(lines[0], where).toMatch(/^headwise: error: /);
  expect(lines[0], where).not.toMatch(/internal error|^\s+at |TypeError|RangeError|is not a function|Cannot read propert/);
}

const program = buildProgram();
const COMMANDS = program.commands.map((c) => ({ name: c.name(), options: c.options as readonly Option[] }));
const VALUES = ['1', '2', '0', '-1', '3', '64', 'x', '', ' ', '1e3', '0.5', '999999999999', 'NaN', '4:1', '9:9', 'foo', '/nonexistent/f', 'constructor', '__proto__', '6:6,6:0', '*', '1,2'];

function randomValue(rng: Rng, o: Option): string {
  if (o.argChoices && rng.chance(0.6)) return rng.pick(o.argChoices);
  return rng.pick(VALUES);
}

function rejects(o: Option, value: string): boolean {
  try {
    o.parseArg!(value, undefined);
    return false;
  } catch {
    return true;
  }
}

/** A flag error commander itself reports, so the command never starts. */
function flagError(rng: Rng, options: readonly Option[]): string[] {
  const withChoices = options.filter((o) => o.argChoices);
  const r = rng.next();
  if (r < 0.4 || !withChoices.length) return [`--${rng.pick(['bogus', 'zz', 'ablat', 'out-file', 'x'])}${rng.int(0, 99)}`];
  if (r < 0.7) return [rng.pick(withChoices).long!, rng.pick(['bogus', 'CPU', '', 'constructor'])];
  const numeric = options.filter((o) => o.parseArg && !o.argChoices && rejects(o, 'lots'));
  if (numeric.length) return [rng.pick(numeric).long!, rng.pick(['lots', 'x1', '1e999', 'NaN'])];
  return [`-${rng.pick(['Z', 'Q'])}`];
}

it('fuzz: 2 400 random command lines with a flag error exit 2 with one line', async () => {
  const rng = seeded(51);
  const tally = newTally();
  for (let i = 0; i < 2400; i++) {
    const cmd = rng.pick(COMMANDS);
    const argv = [cmd.name];
    for (let k = rng.int(0, 4); k > 0; k--) {
      const o = rng.pick(cmd.options);
      const name = o.short && rng.chance(0.3) ? o.short : o.long!;
      if (name === '--help' || name === '-h' || name === '--version') continue;
      argv.push(name);
      if (o.required || (o.optional && rng.chance(0.5))) argv.push(randomValue(rng, o));
    }
    argv.splice(rng.int(1, argv.length), 0, ...flagError(rng, cmd.options));
    assertClean(argv, await cli(argv), tally, [2]);
  }
  record('CLI flag errors', tally);
  expect(tally.cases).toBe(2400);
});

it('fuzz: 44 command lines with valid flags and one bad value end with one line (1 input, 2 usage)', async () => {
  const tally = newTally();
  fs.mkdirSync(path.join(tmp, 'folder'));
  const spec = path.join(tmp, 'deep.json');
  fs.writeFileSync(spec, '{"version":1,"interventions":[{"op":"ablate","heads":' + '['.repeat(20000) + ']'.repeat(20000) + '}]}');
  const cases: [string[], number][] = [
    [['generate', '-p', 'hi', '--ablate', 'foo'], 2],
    [['generate', '-p', 'hi', '--ablate', '6:0'], 2],
    [['generate', '-p', 'hi', '--ablate', '0:4'], 2],
    [['generate', '-p', 'hi', '--ablate', ''], 2],
    [['generate', '-p', 'hi', '--steer-heads', '1:1'], 2],
    [['generate', '-p', 'hi', '--alpha', '0.5'], 2],
    [['generate', '-p', 'hi', '--highlight', 'hi', '--alpha', '2'], 2],
    [['generate', '-p', 'hi', '--highlight', ''], 2],
    [['generate', '-p', 'hi', '--prompt-file', '/nonexistent'], 2],
    [['generate', '--prompt-file', '/nonexistent/p.txt'], 1],
    [['generate'], 2],
    [['generate', '-p', 'hi', '--intervene', spec], 1],
    [['generate', '-p', 'hi', '--intervene', '/nonexistent.json'], 1],
    [['generate', '-p', 'hi', '--kv', 'full', '--razor'], 2],
    [['generate', '-p', 'hi', '-m', '/nonexistent'], 1],
    [['generate', '-p', 'hi', '-m', tmp], 1],
    [['niah', '--context', '2040', '--samples', '1'], 2],
    [['niah', '--ablate', '9:9', '--samples', '1'], 2],
    [['atlas', '--out', ''], 1],
    [['atlas', '--out', tmp], 1],
    [['atlas', '--out', `${tmp}/`], 1],
    [['atlas', '--report', path.join(tmp, 'folder')], 1],
    [['atlas', '--export-duo', '/sys/a.tsv'], 1],
    [['atlas', '--export-retrieval', '/proc/x/y.json'], 1],
    [['atlas', '--out', path.join(tmp, 'a.json'), '--report', path.join(tmp, 'a.json')], 2],
    [['atlas', '--reference', '/nonexistent.json'], 1],
    [['atlas', '--reference', spec], 1],
    [['atlas', '--export-duo', path.join(tmp, 'd.tsv'), '--duo-metric', 'streamingHarm', '--harm-samples', '0'], 2],
    [['atlas', '--ablate', '1:9'], 2],
    [['steer-profile', '--out', ''], 1],
    [['steer-profile', '--out', path.join(tmp, 'folder')], 1],
    [['steer-profile', '--heads', '7:0'], 2],
    [['steer-profile', '--top', '99'], 2],
    [['steer-profile', '--eval', '2', '--eval-seed', '1000'], 2],
    [['make-random', '--like', 'models/ref-llama-7m', '--out', ''], 1],
    [['make-random', '--like', 'models/ref-llama-7m', '--out', '', '--force'], 1],
    [['make-random', '--like', 'models/ref-llama-7m', '--out', '.', '--force'], 1],
    [['make-random', '--like', 'models/ref-llama-7m', '--out', '..', '--force'], 1],
    [['make-random', '--like', 'models/ref-llama-7m', '--out', '/', '--force'], 1],
    [['make-random', '--like', 'models/ref-llama-7m', '--out', os.homedir(), '--force'], 1],
    [['make-random', '--like', 'models/ref-llama-7m', '--out', tmp, '--force'], 1],
    [['make-random', '--like', 'models/ref-llama-7m', '--out', '/sys/m'], 1],
    [['make-random', '--like', '/nonexistent', '--out', path.join(tmp, 'm')], 1],
    [['make-random', '--like', 'README.md', '--out', path.join(tmp, 'm')], 1],
  ];
  for (const [argv, expected] of cases) assertClean(argv, await cli(argv), tally, [expected]);
  expect(fs.readdirSync(path.join(tmp, 'folder'))).toEqual([]);
  record('CLI bad values', tally);
  expect(tally.cases).toBe(cases.length);
});

it('fuzz: valid command lines on the bundled model and a fixture run with exit 0', async () => {
  const tally = newTally();
  const cases: string[][] = [
    ['generate', '-p', 'Hello', '-n', '2', '--threads', '1', '--ablate', '4:1,5:0'],
    ['generate', '-p', 'Hello there', '-n', '1', '--threads', '1', '--kv', 'streaming', '--sink', '2', '--window', '8', '--json'],
    ['make-random', '--like', 'test/fixtures/models/tiny-llama', '--out', path.join(tmp, 'mr'), '--json'],
    ['make-random', '--like', 'test/fixtures/models/tiny-llama', '--out', path.join(tmp, 'mr'), '--force', '--seed', '3'],
    ['atlas', '--help'],
    ['--help'],
  ];
  const outcomes: Outcome[] = [];
  for (const argv of cases) {
    const o = await cli(argv);
    assertClean(argv, o, tally, [0]);
    outcomes.push(o);
  }
  expect(outcomes[0].stdout.length).toBeGreaterThan(0);
  expect(JSON.parse(outcomes[1].stdout).tokens).toBeDefined();
  expect(fs.readdirSync(path.join(tmp, 'mr')).sort()).toEqual(['.headwise-output', 'config.json', 'model.safetensors']);
  expect(outcomes[5].stdout).toMatch(/Exit codes:/);
  expect(fs.readdirSync(tmp).filter((f) => f.includes('.headwise-'))).toEqual([]);
  record('CLI valid runs', tally);
});
