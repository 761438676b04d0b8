/**
 * Scoring a needle answer (methods.md §4: exact match of the value). The value must be the first
 * number — the first run of ASCII digits — in the generated continuation: " 4829371." and
 * "4829371, I think" match; " 48293712" or " 4,829,371" do not. For the conflicting variant,
 * `matchedNeedle` says which needle's value (if any) the model gave.
 */
import type { NeedleSample } from './needle.js';

/** The first run of digits in `text`, or null. */
export function firstNumber(text: string): string | null {
  return /\d+/.exec(text)?.[0] ?? null;
}

/** Whether the first number of the continuation is the sample's expected value. */
export function exactMatch(generatedText: string, sample: Pick<NeedleSample, 'value'>): boolean {
  return firstNumber(generatedText) === sample.value;
}

/** Index in `sample.needles` of the needle whose value is the first number of the continuation, or −1. */
export function matchedNeedle(generatedText: string, sample: Pick<NeedleSample, 'needles'>): number {
  const n = firstNumber(generatedText);
  return n === null ? -1 : sample.needles.findIndex((needle) => needle.value === n);
}
