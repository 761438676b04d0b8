/**
 * The haystack: natural text that needles hide in. Owns loading the bundled one (`data/kjv.txt`, the
 * King James Bible, public domain), cutting a seeded window of it, and choosing where a needle may go
 * (after a sentence end, or at worst between words) for a requested depth. Fitting the window to a
 * token budget is `needle.ts`'s, since it needs the tokenizer and the needles.
 */
import fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import { check, HeadwiseError } from '../errors.js';
import type { Random } from './random.js';

/** The bundled haystack file (works from `src/eval` and from `dist/eval`). */
export const DEFAULT_HAYSTACK_PATH = fileURLToPath(new URL('../../data/kjv.txt', import.meta.url));

/** Reads a haystack text file (UTF-8). */
export function loadHaystack(file: string = DEFAULT_HAYSTACK_PATH): string {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new HeadwiseError(`${file}: cannot read haystack (${(e as Error).message})`);
  }
  check(/\S/.test(text), `${file}: the haystack is empty`);
  return text;
}

/**
 * `chars` characters of the haystack from a seeded line start, wrapping around to the beginning
 * (after a blank line) when the end is reached, but never repeating text: a haystack shorter than
 * `chars` is returned whole, rotated. Leading whitespace is dropped.
 */
export function haystackWindow(haystack: string, rng: Random, chars: number): string {
  check(/\S/.test(haystack), 'the haystack is empty');
  const at = rng.int(0, haystack.length - 1);
  const lineEnd = haystack.indexOf('\n', at);
  const start = lineEnd < 0 || lineEnd + 1 >= haystack.length ? 0 : lineEnd + 1;
  let text = haystack.slice(start, start + chars);
  if (text.length < chars && start > 0) text += '\n\n' + haystack.slice(0, Math.min(start, chars - text.length));
  return text.trimStart();
}

/** Positions where a needle may start: 0, the end, and right after every `.`, `!` or `?` followed by whitespace. */
export function sentenceBoundaries(text: string): number[] {
  const out = [0];
  for (const m of text.matchAll(/[.!?](?=\s)/g)) out.push(m.index + 1);
  if (out[out.length - 1] !== text.length) out.push(text.length);
  return out;
}

/**
 * Insertion point for a needle at `depth` (0 = start, 1 = end, as a fraction of the characters): the
 * sentence boundary nearest to depth × length, or, when none lies within `maxDrift` characters
 * (default 5% of the text + 100), the nearest gap between words.
 */
export function insertionPoint(text: string, depth: number, maxDrift = Math.round(text.length * 0.05) + 100): number {
  check(depth >= 0 && depth <= 1, `needle depth ${depth} is outside [0, 1]`);
  const target = Math.round(depth * text.length);
  const nearest = (candidates: number[]) =>
    candidates.reduce((best, p) => (Math.abs(p - target) < Math.abs(best - target) ? p : best), candidates[0]);
  const sentence = nearest(sentenceBoundaries(text));
  if (Math.abs(sentence - target) <= maxDrift) return sentence;
  const gaps = [0, text.length];
  for (const m of text.matchAll(/\S(?=\s)/g)) gaps.push(m.index + 1);
  return nearest(gaps);
}
