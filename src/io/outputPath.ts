/**
 * The one place every command's outputs go through (`--out`, `--report`, `--export-duo`,
 * `--export-retrieval`, `steer-profile --out`, `make-random --out`):
 * - `checkOutputFile` / `checkOutputDir` run BEFORE any computation: they reject an empty path, a
 *   path that names a folder (or ends in `/`), something that is not a regular file, and a folder that
 *   cannot be written to — found by actually creating (and removing) a probe file there, since
 *   permission bits do not tell (root, read-only mounts, /sys). They also sweep that folder's stale
 *   headwise temporaries (`tempFiles.ts`).
 * - `writeFileAtomic` / `writeFilesTogether` write through a temporary in the same folder and rename,
 *   so a reader never sees half a file; a set of files is renamed only once all of them are complete.
 * - `replaceDir` puts a finished folder in place. A folder is only ever replaced when headwise made it:
 *   it holds a `.headwise-output` marker listing the files headwise wrote, and nothing else.
 *   The working folder, any folder above it, `/` and the home folder are never an output folder.
 * Errors are HeadwiseErrors naming the flag and path on one line.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { HeadwiseError } from '../errors.js';
import { releaseTemp, removeTemp, sweepStaleTemps, tempPathFor } from './tempFiles.js';

/** Marker file in a folder headwise wrote; its JSON lists the files it wrote there. */
export const OUTPUT_MARKER = '.headwise-output';

function errno(e: unknown): string {
  return (e as NodeJS.ErrnoException)?.code ?? (e as Error)?.message ?? String(e);
}

function nonEmpty(p: unknown, label: string): string {
  if (typeof p !== 'string' || p.trim() === '') throw new HeadwiseError(`${label} "${typeof p === 'string' ? p : ''}": empty path (give a file or folder name)`);
  if (p.includes('\0')) throw new HeadwiseError(`${label}: path contains a NUL character`);
  return p;
}

function statOrNull(p: string): fs.Stats | null {
  try {
    return fs.statSync(p);
  } catch {
    return null;
  }
}

/** The nearest folder at or above `dir` that exists; throws if something on the way is a file. */
function existingAncestor(dir: string, label: string, shown: string): string {
  let at = dir;
  for (;;) {
    const s = statOrNull(at);
    if (s) {
      if (!s.isDirectory()) throw new HeadwiseError(`${label} ${shown}: ${at} is not a folder`);
      return at;
    }
    const up = path.dirname(at);
    if (up === at) return at;
    at = up;
  }
}

/** Creates and removes a probe file in `dir`: the only reliable test that files can be made there. */
function probeWritable(dir: string, label: string, shown: string): void {
  const probe = tempPathFor(path.join(dir, 'probe'));
  try {
    fs.writeFileSync(probe, '');
  } catch (e) {
    removeTemp(probe);
    throw new HeadwiseError(`${label} ${shown}: cannot write in ${dir} (${errno(e)})`);
  }
  removeTemp(probe);
}

/**
 * Checks that `file` can be written as a file output; returns its absolute path. Call before the work
 * that produces it. The parent folder is created at write time if missing.
 */
export function checkOutputFile(file: unknown, label: string): string {
  const p = nonEmpty(file, label);
  const shown = JSON.stringify(p);
  const base = path.basename(p);
  if (/[/\\]$/.test(p) || base === '.' || base === '..' || base === '') throw new HeadwiseError(`${label} ${shown}: names a folder (give a file name)`);
  const abs = path.resolve(p);
  const s = statOrNull(abs);
  if (s?.isDirectory()) throw new HeadwiseError(`${label} ${shown}: is a folder (give a file name)`);
  if (s && !s.isFile()) throw new HeadwiseError(`${label} ${shown}: exists and is not a regular file`);
  const parent = path.dirname(abs);
  const existing = existingAncestor(parent, label, shown);
  probeWritable(existing, label, shown);
  if (existing === parent) sweepStaleTemps(parent);
  return abs;
}

/** Whether `abs` is the working folder, a folder above it, `/` or the home folder. */
function isProtectedDir(abs: string): boolean {
  const cwd = path.resolve(process.cwd());
  const rel = path.relative(abs, cwd);
  const aboveCwd = rel === '' || (!rel.startsWith('..') && !path.isAbsolute(rel));
  return aboveCwd || abs === path.parse(abs).root || abs === path.resolve(os.homedir());
}

/** Files headwise listed in `dir`'s marker, or null when it has none (or it is unreadable). */
function markedFiles(dir: string): Set<string> | null {
  try {
    const m = JSON.parse(fs.readFileSync(path.join(dir, OUTPUT_MARKER), 'utf8')) as { files?: unknown };
    return Array.isArray(m.files) && m.files.every((f) => typeof f === 'string') ? new Set(m.files as string[]) : null;
  } catch {
    return null;
  }
}

/**
 * Checks that `dir` can be written as a folder output; returns its absolute path. An existing non-empty
 * folder needs `force`, and even then only one headwise made (marker present, nothing unlisted in it).
 */
export function checkOutputDir(dir: unknown, label: string, { force = false } = {}): string {
  const p = nonEmpty(dir, label);
  const shown = JSON.stringify(p);
  const abs = path.resolve(p);
  if (isProtectedDir(abs)) throw new HeadwiseError(`${label} ${shown}: is ${abs}, the working folder or one above it (give a new folder name)`);
  const s = statOrNull(abs);
  if (s && !s.isDirectory()) throw new HeadwiseError(`${label} ${shown}: exists and is not a folder`);
  if (s) {
    const entries = fs.readdirSync(abs);
    if (entries.length > 0) {
      if (!force) throw new HeadwiseError(`${label} ${shown}: already exists and is not empty (pass --force to replace it)`);
      const ours = markedFiles(abs);
      if (!ours) throw new HeadwiseError(`${label} ${shown}: is not a folder headwise wrote (no ${OUTPUT_MARKER} marker), so --force will not replace it`);
      const foreign = entries.filter((e) => e !== OUTPUT_MARKER && !ours.has(e));
      if (foreign.length) throw new HeadwiseError(`${label} ${shown}: holds files headwise did not write (${foreign.slice(0, 3).join(', ')}), so --force will not replace it`);
    }
  }
  const parent = path.dirname(abs);
  const existing = existingAncestor(parent, label, shown);
  probeWritable(existing, label, shown);
  if (existing === parent) sweepStaleTemps(parent);
  return abs;
}

/** Writes `data` to `file` atomically (temporary in the same folder, then rename). */
export function writeFileAtomic(file: string, data: string | Uint8Array): void {
  writeFilesTogether([{ file, data }]);
}

/**
 * Writes several files so that none appears until all are complete: every temporary is written first,
 * then they are renamed in the order given (put the file readers start from last).
 */
export function writeFilesTogether(files: { file: string; data: string | Uint8Array }[]): void {
  const staged: { tmp: string; file: string }[] = [];
  try {
    for (const { file, data } of files) {
      const abs = path.resolve(file);
      try {
        fs.mkdirSync(path.dirname(abs), { recursive: true });
      } catch (e) {
        throw new HeadwiseError(`${file}: cannot create its folder (${errno(e)})`);
      }
      const tmp = tempPathFor(abs);
      staged.push({ tmp, file: abs });
      try {
        fs.writeFileSync(tmp, data);
      } catch (e) {
        throw new HeadwiseError(`${file}: cannot write (${errno(e)})`);
      }
    }
    for (const { tmp, file } of staged) {
      try {
        fs.renameSync(tmp, file);
      } catch (e) {
        throw new HeadwiseError(`${file}: cannot write (${errno(e)})`);
      }
      releaseTemp(tmp);
    }
  } finally {
    for (const { tmp } of staged) removeTemp(tmp);
  }
}

/** A temporary folder that will become `out` (see `replaceDir`). */
export function makeTempDirFor(out: string): string {
  const tmp = tempPathFor(path.resolve(out));
  fs.mkdirSync(tmp, { recursive: true });
  return tmp;
}

/**
 * Puts the finished folder `tmp` at `out`, writing the marker that lists its files first. An existing
 * `out` must have passed `checkOutputDir` (empty, or headwise's with force); it is moved aside under a
 * temporary name and removed only after the new folder is in place.
 */
export function replaceDir(tmp: string, out: string): void {
  const abs = path.resolve(out);
  const files = fs.readdirSync(tmp).filter((f) => f !== OUTPUT_MARKER);
  fs.writeFileSync(path.join(tmp, OUTPUT_MARKER), JSON.stringify({ by: 'headwise', files }) + '\n');
  if (fs.existsSync(abs)) {
    const old = tempPathFor(abs);
    fs.renameSync(abs, old);
    try {
      fs.renameSync(tmp, abs);
    } catch (e) {
      fs.renameSync(old, abs);
      releaseTemp(old);
      throw e;
    }
    releaseTemp(tmp);
    removeTemp(old);
  } else {
    fs.renameSync(tmp, abs);
    releaseTemp(tmp);
  }
}
