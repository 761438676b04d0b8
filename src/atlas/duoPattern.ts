/**
 * DuoAttention pattern folders, both ways. DuoAttention (`load_attn_pattern(dir)` in its
 * `duo_attn/utils.py`, and kvpress's DuoAttention press) reads a folder holding
 * `full_attention_heads.tsv` — one line per layer, one tab-separated gate α ∈ [0, 1] per KV head,
 * clipped to [0, 1] on load — and `config.json` with `sink_size` and `recent_size`; its
 * `sparsify_attention_heads(gates, threshold, sparsity)` then keeps the heads with α ≥ threshold,
 * where a given `sparsity` s replaces the threshold by the s-quantile of all gates (linear
 * interpolation), s ≥ 1 keeping none and s ≤ 0 all (it first adds uniform noise below 1e-6 to break
 * ties).
 *
 * Writing: headwise's full heads get gates in [0.5, 1] and the others gates in [0, 0.49] (each
 * ordered by the score that chose them), and `config.json` says `threshold` 0.5 and `sparsity`
 * 1 − k/n: either way DuoAttention's binarisation keeps exactly headwise's k heads (the quantile lands
 * strictly between the largest streaming gate and the smallest full one, noise included). A `headwise`
 * block records where the heads came from.
 *
 * Reading: the same semantics without the noise (gates tied at the threshold are all kept). Every
 * malformed input is one line naming the file and what is wrong.
 */
import fs from 'node:fs';
import path from 'node:path';
import { HeadwiseError } from '../errors.js';
import { checkOutputDir, makeTempDirFor, replaceDir } from '../io/outputPath.js';
import { removeTemp } from '../io/tempFiles.js';

export const DUO_TSV = 'full_attention_heads.tsv';
export const DUO_CONFIG = 'config.json';

export interface DuoPattern {
  /** [layer][kvHead] gates in [0, 1]. */
  gates: number[][];
  sinkSize: number;
  recentSize: number;
  threshold: number | null;
  sparsity: number | null;
}

/** Gates that put `full` (keys `l:g`) at or above 0.5 and the rest below, each ordered by `scores`. */
export function duoGates(full: Set<string>, scores: number[][] | undefined, layers: number, kvHeads: number): number[][] {
  const finite = (scores?.flat() ?? []).filter(Number.isFinite);
  const lo = Math.min(0, ...finite);
  const hi = Math.max(lo, ...finite);
  const norm = (x: number | undefined) => (x !== undefined && Number.isFinite(x) && hi > lo ? (x - lo) / (hi - lo) : 0);
  return Array.from({ length: layers }, (_, l) => Array.from({ length: kvHeads }, (_, g) => {
    const s = norm(scores?.[l]?.[g]);
    return full.has(`${l}:${g}`) ? 0.5 + 0.5 * s : 0.49 * s;
  }));
}

export interface DuoPatternSpec {
  full: Set<string>;
  scores?: number[][];
  layers: number;
  kvHeads: number;
  sink: number;
  recent: number;
  provenance: Record<string, unknown>;
}

/** The files of a DuoAttention folder for the full heads `full`: name and text. */
export function duoPatternFiles(o: DuoPatternSpec): { name: string; text: string }[] {
  const gates = duoGates(o.full, o.scores, o.layers, o.kvHeads);
  const n = o.layers * o.kvHeads;
  const config = {
    sink_size: o.sink,
    recent_size: o.recent,
    threshold: 0.5,
    sparsity: 1 - o.full.size / n,
    headwise: { ...o.provenance, fullKvHeads: [...o.full].sort(), layers: o.layers, kvHeads: o.kvHeads },
  };
  return [
    { name: DUO_TSV, text: gates.map((row) => row.map((v) => v.toFixed(6)).join('\t')).join('\n') + '\n' },
    { name: DUO_CONFIG, text: JSON.stringify(config, null, 2) + '\n' },
  ];
}

/**
 * Checks, before any work, that `dir` can take a pattern folder (`io/outputPath.ts`): new, empty, or
 * one headwise wrote (which is replaced); never a folder holding other files.
 */
export function checkDuoPatternDir(dir: string, label: string): string {
  return checkOutputDir(dir, label, { force: true });
}

/** Stages the files of a pattern folder in a temporary folder that `replaceDir` will put at `dir`. */
export function stageDuoPattern(dir: string, files: { name: string; text: string }[]): string {
  const tmp = makeTempDirFor(dir);
  try {
    for (const f of files) fs.writeFileSync(path.join(tmp, f.name), f.text);
  } catch (e) {
    removeTemp(tmp);
    throw new HeadwiseError(`${dir}: cannot write (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  return tmp;
}

/** Writes a complete DuoAttention folder for the full heads `full`: built aside, then put in place whole. */
export function writeDuoPattern(dir: string, o: DuoPatternSpec, label = 'DuoAttention pattern folder'): void {
  checkDuoPatternDir(dir, label);
  replaceDir(stageDuoPattern(dir, duoPatternFiles(o)), dir);
}

function fail(file: string, what: string): never {
  throw new HeadwiseError(`${file}: ${what}`);
}

/** Reads a DuoAttention folder for a model of `layers` × `kvHeads` KV heads. */
export function readDuoPattern(dir: string, layers: number, kvHeads: number): DuoPattern {
  if (!fs.existsSync(dir) || !fs.statSync(dir).isDirectory()) fail(dir, 'not a DuoAttention pattern folder (expected a folder with full_attention_heads.tsv and config.json)');
  const tsvFile = path.join(dir, DUO_TSV);
  const cfgFile = path.join(dir, DUO_CONFIG);
  if (!fs.existsSync(tsvFile)) fail(dir, `has no ${DUO_TSV}`);
  if (!fs.existsSync(cfgFile)) fail(dir, `has no ${DUO_CONFIG} (DuoAttention reads sink_size and recent_size from it)`);
  const lines = fs.readFileSync(tsvFile, 'utf8').split(/\r?\n/).filter((line) => line.trim() !== '');
  if (lines.length !== layers) fail(tsvFile, `${lines.length} rows, the model has ${layers} layers (one row per layer)`);
  const gates = lines.map((line, l) => {
    const cells = line.trim().split('\t');
    if (cells.length !== kvHeads) fail(tsvFile, `row ${l + 1} has ${cells.length} values, the model has ${kvHeads} KV heads per layer`);
    return cells.map((cell, g) => {
      const v = Number(cell.trim());
      if (cell.trim() === '' || !Number.isFinite(v)) fail(tsvFile, `row ${l + 1}, column ${g + 1}: "${cell}" is not a number`);
      return Math.min(1, Math.max(0, v));
    });
  });
  let cfg: Record<string, unknown>;
  try {
    cfg = JSON.parse(fs.readFileSync(cfgFile, 'utf8'));
  } catch (e) {
    fail(cfgFile, `not valid JSON (${(e as Error).message})`);
  }
  if (!cfg || typeof cfg !== 'object' || Array.isArray(cfg)) fail(cfgFile, 'expected a JSON object');
  const size = (key: string): number => {
    const v = cfg[key];
    if (!Number.isInteger(v) || (v as number) < 0) fail(cfgFile, `${key} must be a non-negative integer (got ${JSON.stringify(v)})`);
    return v as number;
  };
  const optional = (key: string): number | null => {
    const v = cfg[key];
    if (v === undefined || v === null) return null;
    if (typeof v !== 'number' || !Number.isFinite(v)) fail(cfgFile, `${key} must be a number or null (got ${JSON.stringify(v)})`);
    return v;
  };
  const pattern = { gates, sinkSize: size('sink_size'), recentSize: size('recent_size'), threshold: optional('threshold'), sparsity: optional('sparsity') };
  if (pattern.recentSize < 1) fail(cfgFile, 'recent_size must be at least 1');
  return pattern;
}

/** numpy's `quantile` (linear interpolation) of `xs` at q ∈ [0, 1]. */
export function quantile(xs: number[], q: number): number {
  const s = [...xs].sort((a, b) => a - b);
  const h = q * (s.length - 1);
  const lo = Math.floor(h);
  const hi = Math.min(s.length - 1, lo + 1);
  return s[lo] + (h - lo) * (s[hi] - s[lo]);
}

/**
 * DuoAttention's binarisation (`sparsify_attention_heads`, without its tie-breaking noise): the KV
 * heads (`l:g`) whose gate is ≥ the threshold, the threshold being the `sparsity`-quantile of the
 * gates when a sparsity is given.
 */
export function duoFullHeads(gates: number[][], opts: { threshold?: number | null; sparsity?: number | null }): Set<string> {
  let threshold: number;
  if (opts.sparsity !== null && opts.sparsity !== undefined) {
    threshold = opts.sparsity >= 1 ? 2 : opts.sparsity <= 0 ? -1 : quantile(gates.flat(), opts.sparsity);
  } else if (opts.threshold !== null && opts.threshold !== undefined) {
    threshold = opts.threshold;
  } else {
    throw new HeadwiseError('DuoAttention pattern: neither a threshold nor a sparsity to binarise the gates with');
  }
  const out = new Set<string>();
  gates.forEach((row, l) => row.forEach((v, g) => {
    if (v >= threshold) out.add(`${l}:${g}`);
  }));
  return out;
}
