/**
 * Binding PASTA's highlighted spans to one prompt: text and character spans become token spans, using the
 * tokenizer's per-token character offsets. A spec is written once and resolved per prompt; lowering
 * (`lower.ts`) accepts only token spans. Tokenising the prompt is left to the caller.
 */

import { SpecError, deepFreeze, type InterventionSpec, type SpanRange, type SpanRef } from './spec.js';

/**
 * Character range `[start, end)` of each prompt token, in JavaScript string indices (UTF-16 code units) —
 * the same unit the spec's `chars` spans and `prompt` use. Tokens that cover no text (BOS and other
 * special tokens) have `start === end`.
 */
export type TokenOffsets = ReadonlyArray<readonly [start: number, end: number]>;

/**
 * Return `spec` with every PASTA span turned into a `{tokens: [start, end)}` span over this prompt: the
 * tokens whose characters overlap the span. Token spans are checked against the prompt's token count.
 *
 * @example
 * // prompt "Mary is a doctor." tokenised as ["Mary", " is", " a", " doctor", "."]
 * resolveSpans(spec, 'Mary is a doctor.', [[0, 4], [4, 7], [7, 9], [9, 16], [16, 17]]);
 * // {text: "a doctor"} -> {tokens: [2, 4]}
 */
export function resolveSpans(spec: InterventionSpec, prompt: string, tokenOffsets: TokenOffsets): InterventionSpec {
  const interventions = spec.interventions.map((iv, i) => {
    if (iv.op !== 'pasta') return iv;
    const spans = iv.params.spans.map((span, j) =>
      Object.freeze({ tokens: toTokens(span, `interventions[${i}].params.spans[${j}]`, prompt, tokenOffsets) }),
    );
    return { ...iv, params: { ...iv.params, spans } };
  });
  return deepFreeze({ ...spec, interventions });
}

function toTokens(span: SpanRef, path: string, prompt: string, offsets: TokenOffsets): SpanRange {
  if ('tokens' in span) {
    const [start, end] = span.tokens;
    if (end > offsets.length) {
      throw new SpecError(`${path}.tokens`, `[${start}, ${end}] runs past the prompt (${offsets.length} tokens)`);
    }
    return span.tokens;
  }
  let chars: SpanRange;
  let label: string;
  if ('text' in span) {
    const start = nthIndexOf(prompt, span.text, span.occurrence);
    if (start < 0) {
      const count = countOccurrences(prompt, span.text);
      throw new SpecError(
        `${path}.text`,
        count === 0
          ? `${JSON.stringify(span.text)} does not occur in the prompt`
          : `${JSON.stringify(span.text)} occurs ${count} time${count === 1 ? '' : 's'} in the prompt; occurrence ${span.occurrence} (from 0) does not exist`,
      );
    }
    chars = [start, start + span.text.length];
    label = `${path}.text`;
  } else {
    chars = span.chars;
    label = `${path}.chars`;
    if (chars[1] > prompt.length) {
      throw new SpecError(label, `[${chars[0]}, ${chars[1]}] runs past the prompt (${prompt.length} characters)`);
    }
  }
  let first = -1;
  let last = -1;
  offsets.forEach(([s, e], t) => {
    if (e > s && s < chars[1] && e > chars[0]) {
      if (first < 0) first = t;
      last = t;
    }
  });
  if (first < 0) {
    throw new SpecError(label, `characters [${chars[0]}, ${chars[1]}) overlap no token of the prompt (check the token offsets)`);
  }
  return [first, last + 1];
}

function nthIndexOf(haystack: string, needle: string, n: number): number {
  let at = -1;
  for (let k = 0; k <= n; k++) {
    at = haystack.indexOf(needle, at + 1);
    if (at < 0) return -1;
  }
  return at;
}

function countOccurrences(haystack: string, needle: string): number {
  let count = 0;
  for (let at = haystack.indexOf(needle); at >= 0; at = haystack.indexOf(needle, at + 1)) count++;
  return count;
}
