/**
 * Character spans of a prompt → token positions in its ids. Needle spans must be exact: the retrieval
 * score checks whether a head's top key lies inside them. The tokenizer is only known through
 * `encode`/`decode`, so boundaries come from decoding token prefixes: the first i tokens cover the
 * first len(decode(ids[..i])) decoded characters. Two details keep this exact:
 * - a decoder may clean up spaces (" ?" → "?"), so a character position of the prompt is first taken to
 *   decoded coordinates by decoding the tokens of the prompt's own prefix (for a span start, the prefix
 *   through its first character, so a deleted space just before it cannot shift it);
 * - byte-level BPE may split a multi-byte character across tokens; a prefix that ends inside one
 *   decodes with a trailing U+FFFD, which counts as begun (for span starts) but not as complete (for
 *   span ends), so a span covers every token holding a byte of its characters.
 */
import { check } from '../errors.js';
import type { TextTokenizer } from './textTokenizer.js';

/** Character positions [start, end) in a string. */
export interface CharSpan {
  start: number;
  end: number;
}

/** Token positions [start, end) in a sequence of ids (special prefix included, so BOS is 0). */
export interface TokenSpan {
  start: number;
  end: number;
}

/** Maps character spans of `text` to token spans of `ids = tokenizer.encode(text)`. */
export class TokenSpanMapper {
  private readonly content: number[];
  private readonly decoded = new Map<number, string>();
  /** Whether decoding the ids gives the text back exactly (then every character position maps to itself). */
  private roundTrip: boolean | undefined;
  /** Cumulative lengths of single-token decodes: a guess of `lengthUpTo`, checked before it is used. */
  private guess: number[] | undefined;

  constructor(
    private readonly tokenizer: TextTokenizer,
    private readonly text: string,
    readonly ids: number[],
    private readonly prefix: number,
  ) {
    this.content = ids.slice(prefix);
  }

  /** Decoded length of the first i content tokens, and that length without a trailing partial character. */
  private lengthUpTo(i: number): { begun: number; complete: number } {
    if (i === 0) return { begun: 0, complete: 0 };
    let text = this.decoded.get(i);
    if (text === undefined) {
      text = this.tokenizer.decode(this.content.slice(0, i));
      this.decoded.set(i, text);
    }
    return { begun: text.length, complete: text.endsWith('\uFFFD') ? text.length - 1 : text.length };
  }

  /** Decoded length of the text's first x characters. */
  private decodedPosition(x: number): number {
    if (x === 0) return 0;
    // When the whole text survives encode → decode unchanged, no clean-up applies to any prefix either
    // (a pattern in a prefix is a pattern in the text), so positions map to themselves.
    this.roundTrip ??= this.lengthUpTo(this.content.length).begun === this.text.length && this.decoded.get(this.content.length) === this.text;
    if (this.roundTrip) return x;
    const ids = this.tokenizer.encode(this.text.slice(0, x)).slice(this.prefix);
    return ids.length === 0 ? 0 : this.tokenizer.decode(ids).length;
  }

  /**
   * Smallest i in [lo, hi] with pred(i), for a predicate that is false then true (hi if none). `hint`
   * (a guess of the answer) is tried first: two evaluations confirm it, otherwise binary search.
   */
  private static firstTrue(lo: number, hi: number, pred: (i: number) => boolean, hint?: number): number {
    if (hint !== undefined && hint >= lo && hint <= hi && (hint === hi || pred(hint)) && (hint === lo || !pred(hint - 1))) return hint;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (pred(mid)) hi = mid;
      else lo = mid + 1;
    }
    return lo;
  }

  /** Tokens that overlap the characters [span.start, span.end); throws for an empty span. */
  tokenSpan(span: CharSpan): TokenSpan {
    check(span.start < span.end && span.start >= 0 && span.end <= this.text.length,
      `character span [${span.start}, ${span.end}) is empty or outside the ${this.text.length}-character text`);
    const n = this.content.length;
    const first = String.fromCodePoint(this.text.codePointAt(span.start)!).length;
    const s = this.decodedPosition(span.start + first) - first;
    const e = this.decodedPosition(span.end);
    const start = TokenSpanMapper.firstTrue(0, n - 1, (i) => this.lengthUpTo(i + 1).begun > s, this.guessFirst((i) => this.guessAt(i + 1) > s, 0, n - 1));
    const end = TokenSpanMapper.firstTrue(start + 1, n, (i) => this.lengthUpTo(i).complete >= e, this.guessFirst((i) => this.guessAt(i) >= e, start + 1, n));
    return { start: start + this.prefix, end: end + this.prefix };
  }

  /** Guessed decoded length of the first i content tokens (single-token decodes added up). */
  private guessAt(i: number): number {
    if (!this.guess) {
      const g = [0];
      for (const id of this.content) g.push(g[g.length - 1] + this.tokenizer.decode([id]).length);
      this.guess = g;
    }
    return this.guess[i];
  }

  /** `firstTrue` over the guessed lengths (cheap), as a hint for the exact search. */
  private guessFirst(pred: (i: number) => boolean, lo: number, hi: number): number {
    return TokenSpanMapper.firstTrue(lo, hi, pred);
  }

  /** Token index that holds character `x` (the first token whose decoded end passes it). */
  tokenAt(x: number): number {
    return this.tokenSpan({ start: x, end: x + 1 }).start;
  }
}
