/**
 * When a greedy answer is settled: exact match (`match.ts`) looks at the first number of the
 * continuation, so decoding can stop as soon as that number is complete, or as soon as its digits can
 * no longer become the value. Lets NIAH runs stop after the value instead of a fixed token budget, and
 * lets the atlas read the greedy outcome off teacher-forced logits. Pure.
 */
import { firstNumber } from './match.js';

export type AnswerVerdict = 'correct' | 'wrong' | 'open';

/**
 * `correct` / `wrong` once the outcome of exact match can no longer change whatever comes next;
 * `open` while no digit has come yet, or the digits at the end of `text` are a prefix of `value`.
 * @example answerVerdict(' 48293', '4829371') // 'open'
 * @example answerVerdict(' 4829371.', '4829371') // 'correct'
 * @example answerVerdict(' 4830', '4829371') // 'wrong'
 */
export function answerVerdict(text: string, value: string): AnswerVerdict {
  const m = /\d+/.exec(text);
  if (!m) return 'open';
  if (m.index + m[0].length < text.length) return m[0] === value ? 'correct' : 'wrong';
  return value.startsWith(m[0]) ? 'open' : 'wrong';
}

/** The verdict at the end of decoding (nothing more will come): exact match. */
export function finalVerdict(text: string, value: string): 'correct' | 'wrong' {
  return firstNumber(text) === value ? 'correct' : 'wrong';
}
