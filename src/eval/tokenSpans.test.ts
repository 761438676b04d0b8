import { describe, expect, it } from 'vitest';
import { specialPrefixLength, type TextTokenizer } from './textTokenizer.js';
import { rawRefTokenizer, refTokenizer } from './testTokenizers.js';
import { TokenSpanMapper } from './tokenSpans.js';

// Spaces before "?" and "," (which a cleaning decoder removes) and multi-byte characters split by
// byte-level BPE.
const text = 'Is it so ? Yes , it is. The café “naïve” — 4829371 — is 日本語 here ! End';
const words = ['Is', 'so', '?', 'Yes', 'café', 'naïve', '4829371', '日本語', 'here', 'End'];

/** Spans of `words`, each checked to be tight: it decodes to text holding the word, and dropping its
 *  first or last token loses the word. */
function spans(tokenizer: TextTokenizer) {
  const ids = tokenizer.encode(text);
  const mapper = new TokenSpanMapper(tokenizer, text, ids, specialPrefixLength(tokenizer));
  const decode = (a: number, b: number) => (a < b ? rawRefTokenizer().decode(ids.slice(a, b)) : '');
  return words.map((w) => {
    const start = text.indexOf(w);
    const span = mapper.tokenSpan({ start, end: start + w.length });
    expect(decode(span.start, span.end), w).toContain(w);
    expect(decode(span.start + 1, span.end), w).not.toContain(w);
    expect(decode(span.start, span.end - 1), w).not.toContain(w);
    return { w, span };
  });
}

describe('TokenSpanMapper', () => {
  it('gives the tokens that overlap each character span (decoder with clean-up)', () => {
    const found = spans(refTokenizer());
    // "?" follows a space that the cleaning decoder deletes: its token is " ?" itself.
    const q = found.find((f) => f.w === '?')!.span;
    expect(refTokenizer().tokenString(refTokenizer().encode(text)[q.start])).toBe(' ?');
  });

  it('gives the same spans with a decoder that does not clean up', () => {
    expect(spans(rawRefTokenizer())).toEqual(spans(refTokenizer()));
  });

  it('decoding a span gives the text back', () => {
    const tok = refTokenizer();
    const ids = tok.encode(text);
    const mapper = new TokenSpanMapper(tok, text, ids, 1);
    for (const w of ['4829371', 'naïve', '日本語']) {
      const start = text.indexOf(w);
      const span = mapper.tokenSpan({ start, end: start + w.length });
      expect(tok.decode(ids.slice(span.start, span.end)).trim().replace(/^[“”—]\s*/, '')).toBe(w);
    }
    expect(mapper.tokenAt(0)).toBe(1); // BOS is 0
  });

  it('rejects an empty span or one outside the text', () => {
    const tok = refTokenizer();
    const mapper = new TokenSpanMapper(tok, text, tok.encode(text), 1);
    expect(() => mapper.tokenSpan({ start: 3, end: 3 })).toThrow(/\[3, 3\) is empty or outside/);
    expect(() => mapper.tokenSpan({ start: 0, end: text.length + 1 })).toThrow(/outside the \d+-character text/);
  });
});

describe('specialPrefixLength', () => {
  it('is 1 for the BOS-adding reference tokenizer', () => {
    expect(specialPrefixLength(refTokenizer())).toBe(1);
    expect(refTokenizer().encode('')).toEqual([0]);
  });
  it('rejects a tokenizer that appends its special tokens', () => {
    const appending: TextTokenizer = { encode: (t) => [...Array.from(t, (c) => c.charCodeAt(0)), 0], decode: () => '' };
    expect(() => specialPrefixLength(appending)).toThrow(/special tokens must come first/);
  });
});
