/**
 * Retrieval score (Wu et al. 2024, copy-paste definition in docs/methods.md §1): at an answer step
 * that emits token w, a head "copies" when its most-attended key lies inside the needle span and holds
 * the token w. This file owns the per-step test and the per-head average over prompts; choosing the
 * answer steps (greedy decode, or teacher forcing keeping only the steps the model gets right) and
 * producing the needle spans (`eval/needle.ts`) are left to the caller.
 */
import type { AttentionMatrix, HeadId } from '../runtime/capture.js';
import { check } from '../errors.js';
import { HeadAccumulator, type HeadScores } from './aggregate.js';
import { checkAttention, rowAt } from './rows.js';

/** Token positions [start, end) in the prompt + generated ids. */
export interface TokenSpan {
  start: number;
  end: number;
}

/** Index of the largest value; ties go to the lowest index (the earliest key). Throws on an empty row. */
export function argmax(row: ArrayLike<number>): number {
  check(row.length > 0, 'argmax of an empty attention row');
  let best = 0;
  for (let s = 1; s < row.length; s++) if (row[s] > row[best]) best = s;
  return best;
}

/**
 * Whether a head copies at one answer step: j = argmax over keys of `row` lies in `span` and
 * `tokens[j] === emitted`. `row` is the head's attention over keys 0..row.length−1 at the query that
 * predicts `emitted` (the position just before it); `tokens` are the prompt + generated ids by position.
 * Throws on an empty span, a span outside the row, or too few token ids.
 * @example copiesToken([0.1, 0.7, 0.2], { start: 1, end: 2 }, [0, 42, 7], 42) // true
 */
export function copiesToken(row: ArrayLike<number>, span: TokenSpan, tokens: ArrayLike<number>, emitted: number): boolean {
  check(span.start < span.end, `needle span [${span.start}, ${span.end}) is empty`);
  check(span.start >= 0 && span.end <= row.length, `needle span [${span.start}, ${span.end}) lies outside the ${row.length} keys of the row`);
  check(tokens.length >= row.length, `token ids: ${tokens.length} given, the attention row has ${row.length} keys`);
  const j = argmax(row);
  return j >= span.start && j < span.end && tokens[j] === emitted;
}

/** `copiesToken` on the row of absolute query position `t` of an attention matrix. */
export function copiesAt(a: AttentionMatrix, t: number, span: TokenSpan, tokens: ArrayLike<number>, emitted: number): boolean {
  checkAttention(a);
  return copiesToken(rowAt(a, t).subarray(0, t + 1), span, tokens, emitted);
}

/**
 * `copiesAt` for every head at one answer step: `patterns[layer][head]` are the captured attention
 * matrices (each holding query row t), the result feeds `RetrievalAccumulator.addStep`. For a needle
 * sample, pass the span of the needle the question asks about (`needles[target].span` in `eval/`).
 */
export function retrievalStep(
  patterns: AttentionMatrix[][],
  t: number,
  span: TokenSpan,
  tokens: ArrayLike<number>,
  emitted: number,
): boolean[][] {
  return patterns.map((layer) => layer.map((a) => copiesAt(a, t, span, tokens, emitted)));
}

/**
 * How per-prompt copy counts become one score per head.
 * - `'prompt'`: mean over prompts of copies / answer tokens scored in that prompt; a prompt
 *   with no scored token is skipped. `samples` = prompts counted. Every prompt weighs the same.
 * - `'pooled'` (default): total copies / total answer tokens scored, over all prompts. `samples` = answer
 *   tokens. Longer answers weigh more. (This is what the reference JSONs in ../shared/reference hold:
 *   their scores are integer multiples of 1 / answer_tokens_scored.)
 */
export type RetrievalAveraging = 'prompt' | 'pooled';

/**
 * Accumulates retrieval scores over prompts: per prompt, call `addStep` once per head and scored
 * answer step (or `addPrompt` with the counts), then `endPrompt`.
 */
export class RetrievalAccumulator {
  private readonly perPrompt: HeadAccumulator;
  private readonly copiesTotal: number[][];
  private readonly copiesNow: number[][];
  private stepsNow = 0;
  private stepsTotal = 0;
  private promptsCounted = 0;

  constructor(
    readonly numLayers: number,
    readonly numHeads: number,
    readonly averaging: RetrievalAveraging = 'pooled',
  ) {
    this.perPrompt = new HeadAccumulator(numLayers, numHeads);
    const zeros = () => Array.from({ length: numLayers }, () => new Array<number>(numHeads).fill(0));
    this.copiesTotal = zeros();
    this.copiesNow = zeros();
  }

  /** Records one scored answer step of the current prompt: `copied[l][h]` for every head. */
  addStep(copied: boolean[][]): void {
    check(copied.length === this.numLayers, `addStep: ${copied.length} layers given, expected ${this.numLayers}`);
    for (let l = 0; l < this.numLayers; l++) {
      check(copied[l].length === this.numHeads, `addStep: layer ${l} has ${copied[l].length} heads, expected ${this.numHeads}`);
      for (let h = 0; h < this.numHeads; h++) if (copied[l][h]) this.copiesNow[l][h]++;
    }
    this.stepsNow++;
  }

  /** Closes the current prompt and folds its copy rates into the scores. */
  endPrompt(): void {
    if (this.stepsNow > 0) {
      this.promptsCounted++;
      for (let l = 0; l < this.numLayers; l++) {
        for (let h = 0; h < this.numHeads; h++) {
          this.perPrompt.add({ layer: l, head: h }, this.copiesNow[l][h] / this.stepsNow);
          this.copiesTotal[l][h] += this.copiesNow[l][h];
        }
      }
    }
    this.stepsTotal += this.stepsNow;
    this.stepsNow = 0;
    for (const row of this.copiesNow) row.fill(0);
  }

  /** A whole prompt at once: `copies[l][h]` out of `stepsScored` answer steps. */
  addPrompt(copies: number[][], stepsScored: number): void {
    check(this.stepsNow === 0, 'addPrompt called in the middle of a prompt (call endPrompt first)');
    check(Number.isInteger(stepsScored) && stepsScored >= 0, `stepsScored must be a non-negative integer (got ${stepsScored})`);
    check(copies.length === this.numLayers, `addPrompt: ${copies.length} layers given, expected ${this.numLayers}`);
    for (let l = 0; l < this.numLayers; l++) {
      check(copies[l].length === this.numHeads, `addPrompt: layer ${l} has ${copies[l].length} heads, expected ${this.numHeads}`);
      for (let h = 0; h < this.numHeads; h++) {
        const c = copies[l][h];
        check(Number.isInteger(c) && c >= 0 && c <= stepsScored, `addPrompt: copies of head ${l}.${h} = ${c} is not in 0..${stepsScored}`);
        this.copiesNow[l][h] = c;
      }
    }
    this.stepsNow = stepsScored;
    this.endPrompt();
  }

  /** Prompts with at least one scored answer step so far. */
  get prompts(): number {
    return this.promptsCounted;
  }

  /** Answer steps scored so far, over all closed prompts. */
  get answerTokens(): number {
    return this.stepsTotal;
  }

  /** Score per head (NaN when nothing was scored) with the samples it rests on (see `RetrievalAveraging`). */
  scores(): HeadScores {
    if (this.averaging === 'prompt') return this.perPrompt.result();
    return {
      numLayers: this.numLayers,
      numHeads: this.numHeads,
      mean: this.copiesTotal.map((row) => row.map((c) => (this.stepsTotal > 0 ? c / this.stepsTotal : NaN))),
      samples: this.copiesTotal.map((row) => row.map(() => this.stepsTotal)),
    };
  }

  /** Score of one head. */
  score(head: HeadId): number {
    return this.scores().mean[head.layer][head.head];
  }
}

/** Heads are retrieval heads above this score (methods.md). */
export const RETRIEVAL_THRESHOLD = 0.1;
