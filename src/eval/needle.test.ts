import { describe, expect, it } from 'vitest';
import { loadHaystack } from './haystack.js';
import { generateNeedleSample, type NeedleSample, type NeedleSpec } from './needle.js';
import { MAGIC_NUMBER_TEMPLATE, PASS_KEY_TEMPLATE, SECRET_CODE_TEMPLATE, type NeedleTemplate } from './templates.js';
import { rawRefTokenizer, refTokenizer } from './testTokenizers.js';
import type { TextTokenizer } from './textTokenizer.js';

const hay = loadHaystack();
const tok = refTokenizer();
const raw = rawRefTokenizer();
const decode = (ids: number[]) => raw.decode(ids);

/** Every invariant a sample promises, checked against the tokenizer. */
function checkSample(s: NeedleSample, tokenizer: TextTokenizer = tok): void {
  expect(s.inputIds).toEqual(tokenizer.encode(s.prompt));
  expect(s.inputIds[0]).toBe(0); // BOS
  expect(s.inputIds.length).toBeLessThanOrEqual(s.contextTokens);
  expect(tokenizer.encode(s.prompt + s.answer)).toEqual([...s.inputIds, ...s.answerIds]);
  expect(decode(s.answerIds)).toBe(s.answer);
  expect(s.answer).toBe(` ${s.value}.`);
  expect(s.needles[s.target].value).toBe(s.value);
  expect(s.needles[s.target].key).toBe(s.key);
  let previousEnd = 1;
  for (const n of s.needles) {
    expect(s.prompt.slice(n.charSpan.start, n.charSpan.end)).toBe(n.text.trim());
    // The whole-needle span decodes to the needle sentence (plus the space the first token carries).
    expect(decode(s.inputIds.slice(n.span.start, n.span.end)).trim()).toBe(n.text.trim());
    expect(n.span.start).toBeGreaterThanOrEqual(previousEnd); // in prompt order, disjoint
    expect(n.span.end).toBeLessThanOrEqual(s.questionStart);
    previousEnd = n.span.end;
    expect(n.valueSpans.length).toBe(n.text.split(n.value).length - 1);
    for (const v of n.valueSpans) {
      expect(decode(s.inputIds.slice(v.start, v.end)).trim()).toBe(n.value);
      expect(v.start >= n.span.start && v.end <= n.span.end).toBe(true);
    }
  }
  expect(decode(s.inputIds.slice(s.questionStart)).trimStart()).toBe(s.prompt.slice(s.prompt.lastIndexOf('\n') + 1));
}

describe('generateNeedleSample: pass key', () => {
  const spec: NeedleSpec = { variant: 'passKey', contextTokens: 512, depth: 0.5, seed: 11 };

  it('is a function of the seed', () => {
    const a = generateNeedleSample(tok, hay, spec);
    expect(generateNeedleSample(tok, hay, spec)).toEqual(a);
    const b = generateNeedleSample(tok, hay, { ...spec, seed: 12 });
    expect(b.value).not.toBe(a.value);
    expect(b.prompt).not.toBe(a.prompt);
  });

  it('has one keyless needle whose value appears twice, and ends with the question', () => {
    const s = generateNeedleSample(tok, hay, spec);
    checkSample(s);
    expect(s.needles).toHaveLength(1);
    expect(s.key).toBeNull();
    expect(s.needles[0].valueSpans).toHaveLength(2);
    expect(s.prompt.endsWith('\nWhat is the pass key? The pass key is')).toBe(true);
    expect(s.prompt).toContain(` The pass key is ${s.value}. Remember it. ${s.value} is the pass key. `);
  });

  it('puts the needle at the requested depth', () => {
    const at = (depth: number) => generateNeedleSample(tok, hay, { ...spec, contextTokens: 1024, depth });
    const start = at(0);
    expect(start.needles[0].span.start).toBe(1); // right after BOS
    expect(start.needles[0].tokenDepth).toBe(0);
    const end = at(1);
    expect(end.questionStart - end.needles[0].span.end).toBeLessThanOrEqual(2); // " " and "\n" between
    for (const depth of [0.1, 0.25, 0.5, 0.75, 0.9]) expect(Math.abs(at(depth).needles[0].tokenDepth - depth)).toBeLessThan(0.06);
  });
});

describe('generateNeedleSample: prompt length', () => {
  it('stays at most contextTokens and within 3% of it, for every variant', () => {
    for (const contextTokens of [256, 512, 1024, 2048]) {
      for (const variant of ['passKey', 'multiKey', 'conflicting'] as const) {
        for (const seed of [1, 2]) {
          const s = generateNeedleSample(tok, hay, { variant, contextTokens, depth: 0.3, seed, keyCount: 4 } as NeedleSpec);
          expect(s.inputIds.length, `${variant} ${contextTokens} ${seed}`).toBeLessThanOrEqual(contextTokens);
          expect(s.inputIds.length, `${variant} ${contextTokens} ${seed}`).toBeGreaterThanOrEqual(Math.floor(contextTokens * 0.97));
        }
      }
    }
  });

  it('gives a shorter prompt, without repeating text, when the haystack runs out', () => {
    const small = 'A small haystack. It has two sentences.';
    const s = generateNeedleSample(tok, small, { variant: 'passKey', contextTokens: 1024, depth: 0.5, seed: 3 });
    checkSample(s);
    expect(s.inputIds.length).toBeLessThan(100);
    expect(s.prompt.split('A small haystack.').length).toBe(2);
  });

  it('refuses a context too small for the needles and the question', () => {
    expect(() => generateNeedleSample(tok, hay, { variant: 'multiKey', keyCount: 4, contextTokens: 60, depth: 0, seed: 1 })).toThrow(
      /contextTokens 60 cannot hold 4 needle\(s\) and the question/,
    );
  });
});

describe('generateNeedleSample: multi-key', () => {
  it('inserts keyCount needles with distinct keys and values and asks about the one at `depth`', () => {
    const s = generateNeedleSample(tok, hay, {
      variant: 'multiKey',
      keyCount: 4,
      contextTokens: 1024,
      depth: 0.9,
      otherDepths: [0.1, 0.4, 0.7],
      seed: 5,
    });
    checkSample(s);
    expect(s.needles.map((n) => n.depth)).toEqual([0.1, 0.4, 0.7, 0.9]);
    expect(s.target).toBe(3);
    expect(new Set(s.needles.map((n) => n.key)).size).toBe(4);
    expect(new Set(s.needles.map((n) => n.value)).size).toBe(4);
    expect(s.prompt.endsWith(`\nWhat is the special magic number for ${s.key}? The special magic number for ${s.key} is`)).toBe(true);
    for (const n of s.needles) expect(n.text).toBe(` The special magic number for ${n.key} is ${n.value}. `);
  });

  it('draws the other depths from the seed when they are left out', () => {
    const spec: NeedleSpec = { variant: 'multiKey', keyCount: 3, contextTokens: 512, depth: 0.5, seed: 8 };
    const s = generateNeedleSample(tok, hay, spec);
    checkSample(s);
    expect(s.needles[s.target].depth).toBe(0.5);
    expect(generateNeedleSample(tok, hay, spec).needles).toEqual(s.needles);
  });

  it('rejects a keyless template, a bad count and a wrong number of other depths', () => {
    const base = { variant: 'multiKey', contextTokens: 512, depth: 0.5, seed: 1 } as const;
    expect(() => generateNeedleSample(tok, hay, { ...base, keyCount: 2, template: PASS_KEY_TEMPLATE })).toThrow(/has no \{key\}/);
    expect(() => generateNeedleSample(tok, hay, { ...base, keyCount: 0 })).toThrow(/keyCount must be a positive integer/);
    expect(() => generateNeedleSample(tok, hay, { ...base, keyCount: 3, otherDepths: [0.1] })).toThrow(/1 other depths given for 2/);
    expect(() => generateNeedleSample(tok, hay, { ...base, keyCount: 2, otherDepths: [2] })).toThrow(/other depth 2 is outside/);
  });
});

describe('generateNeedleSample: conflicting', () => {
  it('gives one key two values at two depths and reports both spans', () => {
    const s = generateNeedleSample(tok, hay, { variant: 'conflicting', contextTokens: 1024, depth: 0.2, otherDepth: 0.8, seed: 21 });
    checkSample(s);
    expect(s.needles).toHaveLength(2);
    const [a, b] = s.needles;
    expect(a.key).toBe(b.key);
    expect(a.value).not.toBe(b.value);
    expect(a.span.end).toBeLessThanOrEqual(b.span.start);
    expect(decode(s.inputIds.slice(a.valueSpans[0].start, a.valueSpans[0].end)).trim()).toBe(a.value);
    expect(decode(s.inputIds.slice(b.valueSpans[0].start, b.valueSpans[0].end)).trim()).toBe(b.value);
    expect(s.target).toBe(0); // the needle at `depth`
    expect(s.value).toBe(a.value);
  });

  it('the expected needle is the one at `depth`, wherever the other one goes', () => {
    const s = generateNeedleSample(tok, hay, { variant: 'conflicting', contextTokens: 1024, depth: 0.8, otherDepth: 0.2, seed: 21 });
    checkSample(s);
    expect(s.target).toBe(1);
    expect(s.value).toBe(s.needles[1].value);
    expect(s.needles[1].depth).toBe(0.8);
  });

  it('rejects a keyless template', () => {
    expect(() =>
      generateNeedleSample(tok, hay, { variant: 'conflicting', contextTokens: 512, depth: 0.5, seed: 1, template: PASS_KEY_TEMPLATE }),
    ).toThrow(/conflicting: template pass-key has no \{key\}/);
  });
});

describe('generateNeedleSample: templates', () => {
  it('uses the secret-code phrasing when asked', () => {
    const s = generateNeedleSample(tok, hay, { variant: 'multiKey', keyCount: 2, contextTokens: 512, depth: 0.5, seed: 2, template: SECRET_CODE_TEMPLATE });
    checkSample(s);
    expect(s.prompt).toContain(` Remember: the secret code of ${s.key} is ${s.value}. `);
    expect(s.prompt.endsWith(`\nWhat is the secret code of ${s.key}? The secret code of ${s.key} is`)).toBe(true);
  });

  it('takes any template and key list', () => {
    const vault: NeedleTemplate = {
      name: 'vault',
      needle: ' The vault of {key} opens with {value}. ',
      question: '\nHow does the vault of {key} open? The vault of {key} opens with',
      answer: ' {value}.',
    };
    for (const variant of ['passKey', 'multiKey', 'conflicting'] as const) {
      const s = generateNeedleSample(tok, hay, { variant, keyCount: 3, contextTokens: 512, depth: 0.4, seed: 4, template: vault, keyWords: ['north', 'south', 'east', 'west'] } as NeedleSpec);
      checkSample(s);
      expect(['north', 'south', 'east', 'west']).toContain(s.key);
      expect(s.prompt).toContain(` The vault of ${s.key} opens with ${s.value}. `);
      expect(s.template).toBe(vault);
    }
  });

  it('a keyed template works for the pass-key variant too', () => {
    const s = generateNeedleSample(tok, hay, { variant: 'passKey', contextTokens: 256, depth: 0.5, seed: 4, template: MAGIC_NUMBER_TEMPLATE });
    checkSample(s);
    expect(s.key).not.toBeNull();
  });

  it('says so when the answer would merge with the end of the prompt', () => {
    const merging: NeedleTemplate = { ...MAGIC_NUMBER_TEMPLATE, name: 'merging', question: '\nThe number for {key} is ', answer: '{value}.' };
    expect(() => generateNeedleSample(tok, hay, { variant: 'passKey', contextTokens: 256, depth: 0.5, seed: 1, template: merging })).toThrow(
      /template merging: the answer "\d+\." merges with the end of the prompt/,
    );
  });

  it('rejects a depth outside [0, 1] and a bad context length', () => {
    expect(() => generateNeedleSample(tok, hay, { variant: 'passKey', contextTokens: 256, depth: -0.1, seed: 1 })).toThrow(/needle depth -0\.1 is outside/);
    expect(() => generateNeedleSample(tok, hay, { variant: 'passKey', contextTokens: 0, depth: 0, seed: 1 })).toThrow(/contextTokens must be a positive integer/);
  });
});

describe('generateNeedleSample: tokenizers', () => {
  it('the raw @huggingface/tokenizers wrapper and HfTokenizer give the same samples', () => {
    for (const variant of ['passKey', 'multiKey', 'conflicting'] as const) {
      const spec = { variant, keyCount: 4, contextTokens: 1024, depth: 0.6, seed: 31 } as NeedleSpec;
      expect(generateNeedleSample(raw, hay, spec)).toEqual(generateNeedleSample(tok, hay, spec));
    }
  });

  it('keeps spans exact in a haystack with spaces before punctuation and multi-byte characters', () => {
    const odd = Array.from({ length: 300 }, (_, i) => `Is it so ? Yes , café “naïve” — 日本語 ${i % 7}! Then again .`).join(' ');
    for (const tokenizer of [tok, raw]) {
      for (const seed of [1, 2, 3]) {
        const s = generateNeedleSample(tokenizer, odd, { variant: 'multiKey', keyCount: 3, contextTokens: 768, depth: 0.5, seed });
        checkSample(s, tokenizer);
      }
    }
  });

  it('answers are consistent across many seeds (prompt + answer tokenizes as inputIds ++ answerIds)', () => {
    for (let seed = 100; seed < 130; seed++) {
      const variant = (['passKey', 'multiKey', 'conflicting'] as const)[seed % 3];
      checkSample(generateNeedleSample(tok, hay, { variant, keyCount: 4, contextTokens: 256, depth: (seed % 11) / 10, seed } as NeedleSpec));
    }
  });
});
