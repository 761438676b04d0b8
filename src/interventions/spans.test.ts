import { describe, expect, it } from 'vitest';
import { resolveSpans, type TokenOffsets } from './spans.js';
import { SpecError, parseInterventionSpec } from './spec.js';

const model = { numLayers: 4, numHeads: 2, headDim: 2 };
// "<s>" BOS has no characters; then "Mary", " is", " a", " doctor", ".", " Mary", " sings", "."
const prompt = 'Mary is a doctor. Mary sings.';
const offsets: TokenOffsets = [
  [0, 0],
  [0, 4],
  [4, 7],
  [7, 9],
  [9, 16],
  [16, 17],
  [17, 22],
  [22, 28],
  [28, 29],
];

function pasta(spans: unknown[]) {
  return parseInterventionSpec(
    [
      { op: 'ablate', heads: ['0:0'] },
      { op: 'pasta', heads: ['1:1'], params: { spans } },
    ],
    model,
  );
}

function expectSpecError(f: () => unknown, path: string, fragment: string): void {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(SpecError);
    expect((e as SpecError).path).toBe(path);
    expect((e as Error).message.startsWith(`${path}: `)).toBe(true);
    expect((e as Error).message).toContain(fragment);
    return;
  }
  expect.fail(`expected a SpecError at ${path}`);
}

describe('resolveSpans', () => {
  it('turns text, char and token spans into token spans', () => {
    const spec = pasta([
      { text: 'a doctor' },
      { text: 'Mary', occurrence: 1 },
      { chars: [5, 6] }, // inside " is"
      { tokens: [7, 9] },
    ]);
    const resolved = resolveSpans(spec, prompt, offsets);
    expect(resolved.interventions[1].params).toEqual({
      alpha: 0.01,
      spans: [{ tokens: [3, 5] }, { tokens: [6, 7] }, { tokens: [2, 3] }, { tokens: [7, 9] }],
    });
    expect(resolved.interventions[0]).toBe(spec.interventions[0]); // other ops shared, not copied
    expect(Object.isFrozen(resolved.interventions[1].params)).toBe(true);
    expect(spec.interventions[1].params).toEqual(pasta([{ text: 'a doctor' }, { text: 'Mary', occurrence: 1 }, { chars: [5, 6] }, { tokens: [7, 9] }]).interventions[1].params); // input unchanged
  });

  it('the BOS token (no characters) never joins a span starting at 0', () => {
    const resolved = resolveSpans(pasta([{ text: 'Mary is' }]), prompt, offsets);
    expect(resolved.interventions[1].params).toMatchObject({ spans: [{ tokens: [1, 3] }] });
  });

  it('names the span when text is absent', () => {
    expectSpecError(
      () => resolveSpans(pasta([{ text: 'Mary' }, { text: 'foo' }]), prompt, offsets),
      'interventions[1].params.spans[1].text',
      '"foo" does not occur in the prompt',
    );
  });

  it('names the span when the occurrence is missing', () => {
    expectSpecError(
      () => resolveSpans(pasta([{ text: 'Mary', occurrence: 2 }]), prompt, offsets),
      'interventions[1].params.spans[0].text',
      '"Mary" occurs 2 times in the prompt; occurrence 2',
    );
  });

  it('rejects char and token spans past the prompt', () => {
    expectSpecError(() => resolveSpans(pasta([{ chars: [20, 40] }]), prompt, offsets), 'interventions[1].params.spans[0].chars', 'runs past the prompt (29 characters)');
    expectSpecError(() => resolveSpans(pasta([{ tokens: [3, 12] }]), prompt, offsets), 'interventions[1].params.spans[0].tokens', 'runs past the prompt (9 tokens)');
  });

  it('rejects a char span that covers no token', () => {
    expectSpecError(() => resolveSpans(pasta([{ chars: [0, 4] }]), prompt, [[0, 0]]), 'interventions[1].params.spans[0].chars', 'overlap no token');
  });
});
