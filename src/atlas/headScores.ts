/**
 * Head score files of other tools, read as [layer][head] tables: Retrieval_Head (Wu et al.,
 * `head_score/*.json`) and HeadKV (`Important_Head/head_score/*_retrieval_heads.json` and
 * `*_retrieval_reasoning_heads.json`, the same format) store `{"L-H": [score, ...]}` with one key per
 * query head; both rank heads by the mean of the list (HeadKV's `np.mean(l[1])`), which is what this
 * returns. Every head of the model must be there. Malformed files are one line naming the file and
 * the key. Pure apart from reading the file.
 */
import fs from 'node:fs';
import { HeadwiseError } from '../errors.js';

export function parseHeadScores(text: string, file: string, layers: number, heads: number): number[][] {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (e) {
    throw new HeadwiseError(`${file}: not valid JSON (${(e as Error).message})`);
  }
  if (!data || typeof data !== 'object' || Array.isArray(data)) throw new HeadwiseError(`${file}: expected an object {"layer-head": [scores...]}`);
  const table = Array.from({ length: layers }, () => new Array<number>(heads).fill(NaN));
  for (const [key, value] of Object.entries(data as Record<string, unknown>)) {
    const m = /^(\d+)-(\d+)$/.exec(key);
    if (!m) throw new HeadwiseError(`${file}: key "${key}" is not "layer-head"`);
    const l = Number(m[1]);
    const h = Number(m[2]);
    if (l >= layers || h >= heads) throw new HeadwiseError(`${file}: head ${key} is outside the model (${layers} layers × ${heads} heads)`);
    const list = typeof value === 'number' ? [value] : value;
    if (!Array.isArray(list) || list.length === 0 || list.some((x) => typeof x !== 'number' || !Number.isFinite(x))) {
      throw new HeadwiseError(`${file}: head ${key} must be a non-empty list of numbers`);
    }
    table[l][h] = list.reduce((a: number, x: number) => a + x, 0) / list.length;
  }
  const missing: string[] = [];
  table.forEach((row, l) => row.forEach((v, h) => Number.isNaN(v) && missing.push(`${l}-${h}`)));
  if (missing.length) throw new HeadwiseError(`${file}: ${missing.length} of ${layers * heads} heads missing (first: ${missing.slice(0, 3).join(', ')})`);
  return table;
}

export function readHeadScores(file: string, layers: number, heads: number): number[][] {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new HeadwiseError(`${file}: cannot read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  return parseHeadScores(text, file, layers, heads);
}

/** [layer][head] → [layer][kvHead], the max over each KV head's query heads (as `file.ts`'s `kvHeadScores`). */
export function foldToKvHeads(table: number[][], kvHeads: number): number[][] {
  return table.map((row) => {
    const rep = row.length / kvHeads;
    return Array.from({ length: kvHeads }, (_, g) => Math.max(...row.slice(g * rep, (g + 1) * rep)));
  });
}
