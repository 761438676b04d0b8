/**
 * The files one atlas run writes (the atlas JSON, the HTML report, the DuoAttention and
 * Retrieval_Head exports) as one set: every file is complete on disk before any is renamed into place
 * (`io/outputPath.ts`), the atlas JSON last, and the set shares one run id — the atlas carries it
 * (`runId`, with the SHA-256 of each export, whose foreign formats have no room for it), the report
 * embeds it (`<meta name="headwise-run-id">` and the atlas inside). `checkSameRun` is the reader's
 * side: a report or export paired with an atlas of another run is refused with one line, so a kill
 * between two renames never passes off an old file as part of a new run.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { HeadwiseError } from '../errors.js';
import { writeFilesTogether } from '../io/outputPath.js';
import { atlasJson, type AtlasFile } from './file.js';
import { loadReportBundles, reportHtml, reportRunId } from './report.js';

export interface AtlasOutputs {
  out?: string;
  report?: string;
  /** Exports: file and its text (formatted by `export.ts`). */
  exports?: { file: string; text: string }[];
}

function sha256(data: string | Uint8Array): string {
  return crypto.createHash('sha256').update(data).digest('hex');
}

/** Stamps `atlas` with a fresh run id and the exports' hashes, then writes the whole set. Returns the files written. */
export function writeAtlasOutputs(atlas: AtlasFile, outputs: AtlasOutputs): string[] {
  atlas.runId = crypto.randomUUID();
  const exports = outputs.exports ?? [];
  atlas.runFiles = Object.fromEntries(exports.map((e) => [path.basename(e.file), sha256(e.text)]));
  const files: { file: string; data: string }[] = exports.map((e) => ({ file: e.file, data: e.text }));
  if (outputs.report) files.push({ file: outputs.report, data: reportHtml(atlas, loadReportBundles()) });
  if (outputs.out) files.push({ file: outputs.out, data: atlasJson(atlas, 1) + '\n' });
  writeFilesTogether(files);
  return files.map((f) => f.file);
}

/**
 * Checks that `companion` (a report or an export file) was written by the same run as `atlas`:
 * a report by its run id, an export by the hash the atlas recorded for its file name.
 */
export function checkSameRun(atlas: AtlasFile, atlasFile: string, companion: string): void {
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
  const name = path.basename(companion);
  const want = Object.prototype.hasOwnProperty.call(files, name) ? files[name] : undefined;
  if (typeof want !== 'string') throw new HeadwiseError(`${companion}: not written by run ${atlas.runId} of ${atlasFile}`);
  if (sha256(data) !== want) throw new HeadwiseError(`${companion}: not the file run ${atlas.runId} of ${atlasFile} wrote (contents differ)`);
}
