/**
 * Issue 11's findings, one named regression test per numbered item (the HTTP items 2, 8, 9 are in the
 * server's tests). Several run the built CLI (dist/cli/main.js) as a subprocess, as a user would; the
 * rest call the layer that owns the fix. The leftovers after normal runs, SIGINT and SIGKILL are in
 * test/leftovers.test.ts; the fuzz cases in test/fuzz/.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { HeadwiseError, UsageError } from '../src/errors.js';
import { Checkpoint } from '../src/hf/checkpoint.js';
import { HfTokenizer } from '../src/hf/tokenizer.js';
import { parseSafetensorsHeader } from '../src/hf/safetensors.js';
import { checkOutputDir, checkOutputFile, OUTPUT_MARKER, writeFilesTogether } from '../src/io/outputPath.js';
import { sweepStaleTemps, tempOwner, tempPathFor, removeTemp } from '../src/io/tempFiles.js';
import { checkSameRun, writeAtlasOutputs } from '../src/atlas/outputs.js';
import { readAtlas, type AtlasFile } from '../src/atlas/file.js';
import { parseHeadList, parseInterventionSpec } from '../src/interventions/spec.js';
import { progressLines } from '../src/cli/common.js';
import { buildProgram } from '../src/cli/program.js';

const CLI = path.resolve('dist/cli/main.js');
const MODEL = path.resolve('models/ref-llama-7m');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'headwise-rel-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

function run(args: string[], opts: { cwd?: string; env?: Record<string, string> } = {}) {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', cwd: opts.cwd, env: { ...process.env, ...opts.env }, timeout: 120_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr, pid: r.pid };
}

/** One line on stderr, `headwise: error: ...`, matching `re`; no stack trace, no internal error. */
function expectOneLine(stderr: string, re: RegExp): void {
  const lines = stderr.split('\n').filter((l) => l.trim());
  expect(lines, stderr).toHaveLength(1);
  expect(lines[0]).toMatch(/^headwise: error: /);
  expect(lines[0]).not.toMatch(/internal error|TypeError|RangeError/);
  expect(lines[0]).toMatch(re);
}

/** A model folder whose config.json is edited; the weights and tokenizer are links to the bundled model's. */
function modelWith(name: string, edit: (c: Record<string, unknown>) => void, files: Record<string, string> = {}): string {
  const dir = path.join(tmp, name);
  fs.mkdirSync(dir);
  for (const f of ['model.safetensors', 'tokenizer.json', 'tokenizer_config.json']) if (!(f in files)) fs.symlinkSync(path.join(MODEL, f), path.join(dir, f));
  const config = JSON.parse(fs.readFileSync(path.join(MODEL, 'config.json'), 'utf8'));
  edit(config);
  // "__INF__" stands for a number JSON cannot write but config.json may hold: 1e999 parses as Infinity.
  fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(config).replaceAll('"__INF__"', '1e999'));
  for (const [f, text] of Object.entries(files)) fs.writeFileSync(path.join(dir, f), text);
  return dir;
}

describe('issue 11 regressions', () => {
  it('item 1: make-random --out "" --force never deletes the cwd (nor ".", "..", a folder headwise did not write)', () => {
    const cwd = path.join(tmp, 'cwd');
    fs.mkdirSync(path.join(cwd, 'sub'), { recursive: true });
    fs.writeFileSync(path.join(cwd, 'precious.txt'), 'keep me');
    for (const out of ['', '.', './', '..', cwd]) {
      const r = run(['make-random', '--like', MODEL, '--out', out, '--force'], { cwd: path.join(cwd, 'sub') });
      expect(r.code).toBe(1);
      expectOneLine(r.stderr, out === '' ? /--out "": empty path/ : /working folder or one above it/);
    }
    const foreign = path.join(cwd, 'theirs');
    fs.mkdirSync(foreign);
    fs.writeFileSync(path.join(foreign, 'notes.txt'), 'x');
    const r = run(['make-random', '--like', MODEL, '--out', foreign, '--force']);
    expect(r.code).toBe(1);
    expectOneLine(r.stderr, /not a folder headwise wrote/);
    expect(fs.readFileSync(path.join(cwd, 'precious.txt'), 'utf8')).toBe('keep me');
    expect(fs.readdirSync(foreign)).toEqual(['notes.txt']);
    // A folder headwise wrote is replaced with --force; one with a file added by hand is not.
    const ours = path.join(tmp, 'ours');
    expect(run(['make-random', '--like', 'test/fixtures/models/tiny-llama', '--out', ours]).code).toBe(0);
    expect(fs.existsSync(path.join(ours, OUTPUT_MARKER))).toBe(true);
    expect(run(['make-random', '--like', 'test/fixtures/models/tiny-llama', '--out', ours, '--force', '--seed', '2']).code).toBe(0);
    fs.writeFileSync(path.join(ours, 'mine.txt'), 'x');
    expect(() => checkOutputDir(ours, '--out', { force: true })).toThrow(/holds files headwise did not write \(mine\.txt\)/);
  });

  it('item 3: config integers far past any model (1e9 layers, 2^53) are refused against the tensors, before allocating', () => {
    for (const [field, value, re] of [
      ['num_hidden_layers', 1_000_000_000, /num_hidden_layers 1000000000 is not plausible/],
      ['num_hidden_layers', 9007199254740992, /num_hidden_layers 9007199254740992 is not plausible/],
      ['num_hidden_layers', 7, /num_hidden_layers 7 but the checkpoint has tensors for 6 layers/],
      ['vocab_size', 8193, /vocab_size 8193 but model\.embed_tokens\.weight has 8192 rows/],
      ['max_position_embeddings', 1e12, /max_position_embeddings 1000000000000 is not plausible/],
    ] as const) {
      const dir = modelWith(`big-${field}-${value}`, (c) => (c[field] = value));
      expect(() => Checkpoint.open(dir)).toThrow(re);
    }
    const t0 = Date.now();
    const r = run(['generate', '-p', 'hi', '-m', modelWith('cli-layers', (c) => (c.num_hidden_layers = 1e9))]);
    expect(r.code).toBe(1);
    expectOneLine(r.stderr, /num_hidden_layers 1000000000 is not plausible/);
    expect(Date.now() - t0).toBeLessThan(30_000); // was: out of heap after ~40 s
  });

  it('item 4: eps −1 / 1e308, rope theta 0 / −1 / Infinity, llama3 factor 0 and max_position_embeddings 2 are refused', () => {
    const llama3 = { rope_type: 'llama3', rope_theta: 500000, factor: 8, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 64 };
    const cases: [string, (c: Record<string, unknown>) => void, RegExp][] = [
      ['eps-neg', (c) => (c.rms_norm_eps = -1), /norm epsilon -1 must lie in \(0, 1\)/],
      ['eps-big', (c) => (c.rms_norm_eps = 1e308), /norm epsilon 1e\+308 must lie in \(0, 1\)/],
      ['theta-0', (c) => (c.rope_parameters = { rope_type: 'default', rope_theta: 0 }), /rope_theta 0 must be a finite number > 0/],
      ['theta-neg', (c) => (c.rope_parameters = { rope_type: 'default', rope_theta: -1 }), /rope_theta -1 must be/],
      ['theta-inf', (c) => (c.rope_parameters = { rope_type: 'default', rope_theta: '__INF__' }), /rope_theta Infinity must be a finite number > 0/],
      ['factor-0', (c) => (c.rope_parameters = { ...llama3, factor: 0 }), /rope_parameters\.factor 0 must be a finite number > 0/],
      ['positions-2', (c) => (c.max_position_embeddings = 2), /max_position_embeddings 2 is not plausible/],
    ];
    for (const [name, edit, re] of cases) expect(() => Checkpoint.open(modelWith(`c4-${name}`, edit)), name).toThrow(re);
    const r = run(['generate', '-p', 'hi', '-m', path.join(tmp, 'c4-eps-neg')]);
    expect(r.code).toBe(1);
    expectOneLine(r.stderr, /norm epsilon -1/); // was: "internal error: token_ids must be a non-empty array of integers."
  });

  it('item 5: malformed tokenizer files and dtype names get one line that names the field, never JS internals', () => {
    const tok = JSON.parse(fs.readFileSync(path.join(MODEL, 'tokenizer.json'), 'utf8'));
    const bad = (edit: (t: Record<string, any>) => void) => {
      const t = structuredClone(tok);
      edit(t);
      return t;
    };
    const cases: [Record<string, unknown>, RegExp][] = [
      [bad((t) => (t.post_processor = { type: 'TemplateProcessing', single: 5 })), /post_processor\.single must be an array/],
      [bad((t) => (t.model.vocab = true)), /model\.vocab must be an object of token → id/],
      [bad((t) => (t.model.vocab = 'x')), /model\.vocab must be an object/],
      [bad((t) => (t.model.merges = 7)), /model\.merges must be an array/],
      [bad((t) => (t.added_tokens = [{ id: -1 }])), /added_tokens\[0\]/],
    ];
    for (const [json, re] of cases) {
      let err: unknown;
      try {
        HfTokenizer.fromJson(json, {});
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(HeadwiseError);
      expect((err as Error).message).toMatch(re);
      expect((err as Error).message).not.toMatch(/is not (iterable|a function)/);
    }
    // A broken chat template matters only to --chat, and then as one clean line.
    const dir = modelWith('bad-template', () => {}, { 'tokenizer_config.json': JSON.stringify({ chat_template: '{% for %}' }) });
    expect(run(['generate', '-p', 'hi', '-n', '1', '--threads', '1', '-m', dir]).code).toBe(0);
    const chat = run(['generate', '-p', 'hi', '-n', '1', '--threads', '1', '-m', dir, '--chat']);
    expect(chat.code).toBe(1);
    expectOneLine(chat.stderr, /chat_template does not compile/);
    // dtype names are looked up as own properties: "constructor" is an unknown dtype, not "NaN bytes".
    const header = new TextEncoder().encode(JSON.stringify({ t: { dtype: 'constructor', shape: [1], data_offsets: [0, 4] } }));
    expect(() => parseSafetensorsHeader(header, 8 + header.length + 4, 'm.safetensors')).toThrow(/unknown dtype "constructor"/);
  });

  it('item 6: an intervention spec nested 10 000+ deep is refused cleanly (CLI and parser)', () => {
    const deep = '{"version":1,"interventions":[{"op":"ablate","heads":["1:1"],"params":{"mode":' + '['.repeat(10_000) + ']'.repeat(10_000) + '}}]}';
    expect(() => parseInterventionSpec(deep, { numLayers: 6, numHeads: 4, headDim: 64 })).toThrow(/nested more than 32 levels deep/);
    expect(() => parseInterventionSpec(JSON.parse(deep), { numLayers: 6, numHeads: 4, headDim: 64 })).toThrow(/nested more than/);
    const file = path.join(tmp, 'deep.json');
    fs.writeFileSync(file, deep);
    const r = run(['generate', '-p', 'hi', '--intervene', file]);
    expect(r.code).toBe(1);
    expectOneLine(r.stderr, /deep\.json: spec: nested more than 32 levels deep/); // was: Maximum call stack size exceeded
  });

  it('item 7: outputs that are folders, end in "/", or cannot be written, and references of another model, are refused before computing', () => {
    const bad = [[os.tmpdir(), /is a folder/], [`${tmp}/x/`, /names a folder/], ['/sys/a.json', /cannot write in \/sys \(/]] as const;
    // Each flag with one bad value, each value with at least one flag (all go through io/outputPath.ts).
    ['--out', '--report', '--export-duo', '--export-retrieval'].forEach((flag, i) => {
      const [value, re] = bad[i % bad.length];
      const t0 = Date.now();
      const r = run(['atlas', flag, value, '--samples', '40']);
      expect(r.code, `${flag} ${value}`).toBe(1);
      expectOneLine(r.stderr, re);
      expect(Date.now() - t0).toBeLessThan(20_000); // refused at once, not after 40 needle prompts
    });
    for (const [value, re] of bad) expect(() => checkOutputFile(value, '--report')).toThrow(re);
    const sp = run(['steer-profile', '--out', `${tmp}/`]);
    expect(sp.code).toBe(1);
    expectOneLine(sp.stderr, /--out .*names a folder/);
    expect(fs.readdirSync('/').filter((f) => /\.tmp$/.test(f))).toEqual([]);
    const ref = path.join(tmp, 'ref8.json');
    fs.writeFileSync(ref, JSON.stringify({ retrieval: Array.from({ length: 8 }, () => [0, 0, 0, 0, 0, 0, 0, 0]) }));
    const r = run(['atlas', '--reference', ref, '--samples', '40']);
    expect(r.code).toBe(1);
    expectOneLine(r.stderr, /"retrieval" is a 8×8 table, this model has 6 layers × 4 heads/);
    expect(() => checkOutputFile('', '--out')).toThrow(/empty path/);
  });

  it('item 10: temporaries carry a recognisable name; stale ones of dead processes are swept; an atlas set shares one run id', () => {
    const dir = path.join(tmp, 'sweep');
    fs.mkdirSync(dir);
    const dead = spawnSync(process.execPath, ['-e', 'process.pid']).pid!;
    const stale = path.join(dir, `a.json.headwise-${dead}-0123abcd.tmp`);
    const live = tempPathFor(path.join(dir, 'b.json'));
    fs.writeFileSync(stale, 'x');
    fs.writeFileSync(live, 'x');
    fs.writeFileSync(path.join(dir, 'a.json.999999.tmp'), 'not ours');
    fs.mkdirSync(path.join(dir, `mr.headwise-${dead}-89abcdef.tmp`));
    expect(tempOwner(stale)).toBe(dead);
    expect(sweepStaleTemps(dir).map((f) => path.basename(f)).sort()).toEqual([`a.json.headwise-${dead}-0123abcd.tmp`, `mr.headwise-${dead}-89abcdef.tmp`]);
    expect(fs.readdirSync(dir).sort()).toEqual(['a.json.999999.tmp', path.basename(live)].sort());
    removeTemp(live);

    const atlas = readAtlasFixture();
    const out = path.join(tmp, 'set');
    writeAtlasOutputs(atlas, { out: `${out}/a.json`, report: `${out}/a.html`, exports: [{ file: `${out}/d.tsv`, text: '1\t0\n' }] });
    const a = readAtlas(`${out}/a.json`);
    expect(a.runId).toMatch(/^[0-9a-f-]{36}$/);
    checkSameRun(a, 'a.json', `${out}/a.html`);
    checkSameRun(a, 'a.json', `${out}/d.tsv`);
    // A second run's report beside the first run's atlas (as a kill between renames would leave) is refused.
    const second = readAtlasFixture();
    writeAtlasOutputs(second, { report: `${out}/b.html`, exports: [{ file: `${out}/d.tsv`, text: '0\t1\n' }] });
    fs.renameSync(`${out}/b.html`, `${out}/a.html`);
    expect(() => checkSameRun(a, 'a.json', `${out}/a.html`)).toThrow(/report of run .* but a\.json is run/);
    expect(() => checkSameRun(a, 'a.json', `${out}/d.tsv`)).toThrow(/contents differ/);
    expect(() => writeFilesTogether([{ file: `${out}/ok.txt`, data: 'x' }, { file: '/sys/nope.txt', data: 'y' }])).toThrow(HeadwiseError);
    expect(fs.existsSync(`${out}/ok.txt`)).toBe(false); // nothing of a failed set appears
  });

  it('item 11: no /tmp/mat-debug-<pid>.log after a run; webgpu without a GPU is one clean line; no .npmrc warning key', () => {
    const r = run(['generate', '-p', 'hi', '-n', '1', '--threads', '1']);
    expect(r.code).toBe(0);
    expect(fs.existsSync(`/tmp/mat-debug-${r.pid}.log`)).toBe(false);
    expect(fs.readdirSync(os.tmpdir()).filter((f) => f.includes(`headwise-${r.pid}-`))).toEqual([]);
    const gpu = run(['generate', '-p', 'hi', '-n', '1', '--device', 'webgpu']);
    if (gpu.code !== 0) {
      expect(gpu.code).toBe(1);
      expectOneLine(gpu.stderr, /device webgpu: no WebGPU adapter/);
      expect(gpu.stderr).not.toMatch(/at operator\(\)|Warning:/);
    }
    expect(fs.existsSync(`/tmp/mat-debug-${gpu.pid}.log`)).toBe(false);
    expect(fs.existsSync('.npmrc') && fs.readFileSync('.npmrc', 'utf8').includes('onnxruntime-node-install')).toBe(false);
    expect(fs.readFileSync('.ci/run', 'utf8')).toMatch(/export ONNXRUNTIME_NODE_INSTALL=skip/);
  });

  it('item 12: without a TTY long work prints progress lines with an ETA; usage errors exit 2, input errors 1', () => {
    let t = 0;
    const lines: string[] = [];
    const p = progressLines('atlas', 10, (l) => lines.push(l), 5000, () => t);
    for (let i = 0; i < 10; i++) {
      t += 2000;
      p.tick(1, 'needles');
    }
    p.stop();
    expect(lines).toEqual([
      'atlas: 3/10 (30%) needles, elapsed 6 s, eta 14 s\n',
      'atlas: 6/10 (60%) needles, elapsed 12 s, eta 8 s\n',
      'atlas: 9/10 (90%) needles, elapsed 18 s, eta 2 s\n',
      'atlas: 10/10 done in 20 s\n',
    ]);
    const a = run(['atlas', '--threads', '1', '--samples', '2', '--context', '128', '--harm-samples', '0', '--ablation-samples', '0', '--pattern-samples', '0', '--probes', '0'], { env: { HEADWISE_PROGRESS_INTERVAL_MS: '0' } });
    expect(a.code).toBe(0);
    expect(a.stderr).toMatch(/^atlas: 1\/2 \(50%\) needles, acc \d+%, elapsed \d+ s, eta \d+ s$/m);
    for (const [args, code] of [
      [['generate', '-p', 'hi', '--ablate', 'foo'], 2],
      [['generate', '-p', 'hi', '--ablate', '6:6,6:0'], 2],
      [['generate', '-p', 'hi', '--kv', 'bogus'], 2],
      [['generate', '--prompt-file', '/nonexistent/p.txt'], 1],
    ] as const) {
      const r = run([...args]);
      expect(r.code, args.join(' ')).toBe(code);
      expect(r.stderr.split('\n').filter(Boolean)).toHaveLength(1);
    }
    expect(new UsageError('x')).toBeInstanceOf(HeadwiseError);
    expect(run(['--help']).stdout).toMatch(/Exit codes:[\s\S]*1 +input error[\s\S]*2 +usage error/);
    expect(fs.readFileSync('README.md', 'utf8')).toMatch(/Exit codes.*\*\*2\*\* usage error/s);
  });

  it('item 13: README and --help examples run on the default model; docs/methods.md exists; npx headwise / npm link documented', () => {
    const shape = { numLayers: 6, numHeads: 4, headDim: 64 };
    const readme = fs.readFileSync('README.md', 'utf8');
    // Every `headwise ...` example without -m/--model uses heads that exist on the default model.
    const examples = [...readme.matchAll(/headwise [a-z-]+[^`\n|]*/g)].map((m) => m[0]).filter((e) => !/(^|\s)(-m|--model)\s/.test(e));
    expect(examples.length).toBeGreaterThan(5);
    for (const e of examples) for (const m of e.matchAll(/--(?:ablate|steer-heads|heads) ([\d:*,]+)/g)) expect(() => parseHeadList(m[1], shape), e).not.toThrow();
    // So do the examples in every command's --help.
    const program = buildProgram();
    const help = [program, ...program.commands].map((c) => c.helpInformation()).join('\n');
    for (const m of help.matchAll(/e\.g\. "?([\d]+:[\d*]+(?:,[\d]+:[\d*]+)*)/g)) expect(() => parseHeadList(m[1], shape), m[0]).not.toThrow();
    expect(help).not.toMatch(/6:6/);
    expect(fs.readFileSync('docs/methods.md', 'utf8')).toMatch(/^# Head-level methods/);
    expect(fs.readFileSync('src/atlas/report.ts', 'utf8')).toMatch(/docs\/methods\.md/);
    expect(readme).toMatch(/npx headwise/);
    expect(readme).toMatch(/npm link/);
    const npx = spawnSync('npx', ['--offline', 'headwise', '--version'], { encoding: 'utf8', timeout: 60_000 });
    expect(npx.stdout.trim()).toBe('0.1.0');
  });
});

/** A small atlas of the default model's shape (no computation needed for the file-set checks). */
function readAtlasFixture(): AtlasFile {
  const zeros = () => Array.from({ length: 6 }, () => [0, 0, 0, 0]);
  return {
    format: 'headwise-atlas', version: 1, createdAt: new Date(0).toISOString(),
    model: { name: 'ref-llama-7m', family: 'llama', layers: 6, heads: 4, kvHeads: 4, headDim: 64, vocab: 8192 },
    settings: { samples: 1, contextTokens: 128, seed: 0 },
    metrics: { retrieval: zeros() },
    metricInfo: { retrieval: { per: 'head', samples: 1, description: 'test' } },
  };
}
