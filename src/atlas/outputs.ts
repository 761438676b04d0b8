/**
 * The files one atlas run writes (the atlas JSON, the HTML report, the DuoAttention pattern folder and
 * the Retrieval_Head export) as one set: every file is complete on disk before any is renamed into
 * place (`io/outputPath.ts`; a folder is built aside and put in place whole), the atlas JSON last, and
 * the set shares one run id — the atlas carries it (`runId`, with the SHA-256 of each export file,
 * whose foreign formats have no room for it; a folder's files as `folder/file`), the report
 * embeds it (`<meta name="headwise-run-id">` and the atlas inside). `checkSameRun` is the reader's
 * side: a report or export paired with an atlas of another run is refused with one line, so a kill
 * between two renames never passes off an old file as part of a new run.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { HeadwiseError } from '../errors.js';
import { OUTPUT_MARKER, replaceDir, writeFilesTogether } from '../io/outputPath.js';
import { removeTemp } from '../io/tempFiles.js';
import { stageDuoPattern } from './duoPattern.js';
import { atlasJson, type AtlasFile } from './file.js';
import { loadReportBundles, reportHtml, reportRunId } from './report.js';

export interface AtlasOutputs {
  out?: string;
  report?: string;
  /** Exports: file and its text (formatted by `export.ts`). */
  exports?: { file: string; text: string }[];
  /** Folder exports (a DuoAttention pattern folder, `duoPattern.ts`): folder and its files. */
  folders?: { dir: string; files: { name: string; text: string }[] }[];
}

function sha256(data: string | Uint8Array): string {
  return crypto.createHash('sha256').update(data).digest('hex');
}

/** Stamps `atlas` with a fresh run id and the exports' hashes, then writes the whole set. Returns the files written. */
export function writeAtlasOutputs(atlas: AtlasFile, outputs: AtlasOutputs): string[] {
  atlas.runId = crypto.randomUUID();
  const exports = outputs.exports ?? [];
  const folders = outputs.folders ?? [];
  atlas.runFiles = Object.fromEntries([
    ...exports.map((e) => [path.basename(e.file), sha256(e.text)]),
    ...folders.flatMap((d) => d.files.map((f) => [`${path.basename(d.dir)}/${f.name}`, sha256(f.text)])),
  ]);
  const files: { file: string; data: string }[] = exports.map((e) => ({ file: e.file, data: e.text }));
  if (outputs.report) files.push({ file: outputs.report, data: reportHtml(atlas, loadReportBundles()) });
  if (outputs.out) files.push({ file: outputs.out, data: atlasJson(atlas, 1) + '\n' });
  const staged: { tmp: string; dir: string }[] = [];
  try {
    for (const d of folders) staged.push({ tmp: stageDuoPattern(d.dir, d.files), dir: d.dir });
    for (const s of staged) replaceDir(s.tmp, s.dir);
  } finally {
    for (const s of staged) removeTemp(s.tmp);
  }
  writeFilesTogether(files);
  return [...folders.map((d) => d.dir), ...files.map((f) => f.file)];
}

/**
 * Checks that `companion` (a report or an export file) was written by the same run as `atlas`:
 * a report by its run id, an export by the hash the atlas recorded for its file name.
 */
export function checkSameRun(atlas: AtlasFile, atlasFile: string, companion: string): void {
  let isDir = false;
  try {
    isDir = fs.statSync(companion).isDirectory();
  } catch {
    // unreadable: reported below
  }
  if (isDir) {
    // A pattern folder: each of its files against the hash recorded as `folder/file`.
    const names = fs.readdirSync(companion).filter((f) => f !== OUTPUT_MARKER);
    if (names.length === 0) throw new HeadwiseError(`${companion}: an empty folder, not written by run ${atlas.runId ?? '(none)'} of ${atlasFile}`);
    for (const f of names) checkFileSameRun(atlas, atlasFile, path.join(companion, f), `${path.basename(companion)}/${f}`);
    return;
  }
  checkFileSameRun(atlas, atlasFile, companion, path.basename(companion));
}

function checkFileSameRun(atlas: AtlasFile, atlasFile: string, companion: string, name: string): void {
  let data: Buffer;
  try {
    data = fs.readFileSync(companion);
  } catch (e) {
    throw new HeadwiseError(`${companion}: cannot read (${(e as NodeJS.ErrnoException).code})`);
  }
  if (typeof atlas.runId !== 'string') throw new HeadwiseError(`${atlasFile}: has no run id, so ${companion} cannot be matched to it`);
  const html = data.subarray(0, 4096).toString('utf8');
  if (/^<!doctype html>/i.test(html)) {
    const id = reportRunId(html);
    if (id !== atlas.runId) throw new HeadwiseError(`${companion}: report of run ${id ?? '(none)'}, but ${atlasFile} is run ${atlas.runId}`);
    return;
  }
  const files = (atlas.runFiles ?? {}) as Record<string, unknown>;
  const want = Object.prototype.hasOwnProperty.call(files, name) ? files[name] : undefined;
  if (typeof want !== 'string') throw new HeadwiseError(`${companion}: not written by run ${atlas.runId} of ${atlasFile}`);
  if (sha256(data) !== want) throw new HeadwiseError(`${companion}: not the file run ${atlas.runId} of ${atlasFile} wrote (contents differ)`);
}
