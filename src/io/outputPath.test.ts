import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { HeadwiseError } from '../errors.js';
import { checkOutputDir, checkOutputFile, makeTempDirFor, OUTPUT_MARKER, replaceDir, writeFileAtomic, writeFilesTogether } from './outputPath.js';
import { liveTemps, tempOwner, tempPathFor, releaseTemp } from './tempFiles.js';
import { nestedDeeperThan, ownValue } from './json.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'headwise-io-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

describe('checkOutputFile', () => {
  it('accepts a new file (parent created later) and an existing regular file', () => {
    expect(checkOutputFile(path.join(tmp, 'a.json'), '--out')).toBe(path.join(tmp, 'a.json'));
    expect(checkOutputFile(path.join(tmp, 'new', 'deeper', 'a.json'), '--out')).toBe(path.join(tmp, 'new', 'deeper', 'a.json'));
    expect(fs.existsSync(path.join(tmp, 'new'))).toBe(false); // checking creates nothing
    fs.writeFileSync(path.join(tmp, 'old.json'), 'x');
    checkOutputFile(path.join(tmp, 'old.json'), '--out');
    expect(fs.readdirSync(tmp).sort()).toEqual(['old.json']); // the probe is gone
  });

  it.each([
    ['', /--out "": empty path/],
    ['   ', /empty path/],
    [tmp, /is a folder/],
    [`${tmp}/`, /names a folder/],
    [`${tmp}/x/..`, /names a folder/],
    ['/dev/null', /exists and is not a regular file/],
    ['/sys/a.json', /cannot write in \/sys/],
    ['/proc/self/x/y.json', /cannot write in|is not a folder/],
  ])('refuses %j', (p, re) => {
    expect(() => checkOutputFile(p, '--out')).toThrow(re);
  });

  it('refuses a parent that is a file', () => {
    fs.writeFileSync(path.join(tmp, 'file'), 'x');
    expect(() => checkOutputFile(path.join(tmp, 'file', 'a.json'), '--out')).toThrow(/is not a folder/);
  });
});

describe('checkOutputDir and replaceDir', () => {
  it('never takes the working folder, a folder above it, / or home; --force only replaces a marked folder', () => {
    for (const p of ['.', '..', process.cwd(), '/', os.homedir()]) expect(() => checkOutputDir(p, '--out', { force: true })).toThrow(/working folder or one above it/);
    const out = path.join(tmp, 'model');
    const t1 = makeTempDirFor(out);
    fs.writeFileSync(path.join(t1, 'config.json'), '{}');
    replaceDir(t1, out);
    expect(JSON.parse(fs.readFileSync(path.join(out, OUTPUT_MARKER), 'utf8')).files).toEqual(['config.json']);
    expect(() => checkOutputDir(out, '--out')).toThrow(/pass --force/);
    checkOutputDir(out, '--out', { force: true });
    const t2 = makeTempDirFor(out);
    fs.writeFileSync(path.join(t2, 'model.safetensors'), 'y');
    replaceDir(t2, out);
    expect(fs.readdirSync(out).sort()).toEqual([OUTPUT_MARKER, 'model.safetensors']);
    fs.writeFileSync(path.join(out, 'notes.txt'), 'mine');
    expect(() => checkOutputDir(out, '--out', { force: true })).toThrow(/did not write \(notes\.txt\)/);
    fs.mkdirSync(path.join(tmp, 'plain'));
    fs.writeFileSync(path.join(tmp, 'plain', 'x'), 'x');
    expect(() => checkOutputDir(path.join(tmp, 'plain'), '--out', { force: true })).toThrow(/no \.headwise-output marker/);
    expect(liveTemps().filter((t) => t.startsWith(tmp))).toEqual([]);
  });
});

describe('atomic writes', () => {
  it('writes through a temporary and leaves none; a failing set leaves none of its files', () => {
    const f = path.join(tmp, 'w', 'a.txt');
    writeFileAtomic(f, 'hello');
    expect(fs.readFileSync(f, 'utf8')).toBe('hello');
    expect(fs.readdirSync(path.dirname(f))).toEqual(['a.txt']);
    const err = (() => {
      try {
        writeFilesTogether([{ file: path.join(tmp, 'w', 'b.txt'), data: 'b' }, { file: '/sys/nope/c.txt', data: 'c' }]);
      } catch (e) {
        return e;
      }
    })();
    expect(err).toBeInstanceOf(HeadwiseError);
    expect(fs.readdirSync(path.dirname(f))).toEqual(['a.txt']);
  });
});

describe('temporary names and JSON helpers', () => {
  it('names temporaries after the target and this process', () => {
    const t = tempPathFor(path.join(tmp, 'a.json'));
    expect(path.basename(t)).toMatch(new RegExp(`^a\\.json\\.headwise-${process.pid}-[0-9a-f]{8}\\.tmp$`));
    expect(tempOwner(t)).toBe(process.pid);
    expect(tempOwner('a.json.1234.tmp')).toBeNull();
    releaseTemp(t);
  });

  it('measures nesting without recursion and reads own properties only', () => {
    let deep: unknown = 0;
    for (let i = 0; i < 100_000; i++) deep = [deep];
    expect(nestedDeeperThan(deep, 64)).toBe(true);
    expect(nestedDeeperThan({ a: [{ b: 1 }] }, 3)).toBe(false);
    expect(nestedDeeperThan({ a: [{ b: {} }] }, 3)).toBe(true);
    expect(ownValue({}, 'constructor')).toBeUndefined();
    expect(ownValue({ constructor: 1 }, 'constructor')).toBe(1);
  });
});
