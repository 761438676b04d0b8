import { describe, expect, it } from 'vitest';
import {
  checkTemplate,
  DEFAULT_TEMPLATES,
  fillTemplate,
  MAGIC_NUMBER_TEMPLATE,
  PASS_KEY_TEMPLATE,
  SECRET_CODE_TEMPLATE,
  templateUsesKey,
} from './templates.js';

describe('default templates (../shared/models/README.md)', () => {
  it('are the three training phrasings, character for character', () => {
    const f = (t: typeof MAGIC_NUMBER_TEMPLATE) => ({
      needle: fillTemplate(t.needle, 'garden', '4829371'),
      question: fillTemplate(t.question, 'garden', '4829371'),
      answer: fillTemplate(t.answer, 'garden', '4829371'),
    });
    expect(f(MAGIC_NUMBER_TEMPLATE)).toEqual({
      needle: ' The special magic number for garden is 4829371. ',
      question: '\nWhat is the special magic number for garden? The special magic number for garden is',
      answer: ' 4829371.',
    });
    expect(f(SECRET_CODE_TEMPLATE)).toEqual({
      needle: ' Remember: the secret code of garden is 4829371. ',
      question: '\nWhat is the secret code of garden? The secret code of garden is',
      answer: ' 4829371.',
    });
    expect(f(PASS_KEY_TEMPLATE)).toEqual({
      needle: ' The pass key is 4829371. Remember it. 4829371 is the pass key. ',
      question: '\nWhat is the pass key? The pass key is',
      answer: ' 4829371.',
    });
    expect(DEFAULT_TEMPLATES).toHaveLength(3);
    DEFAULT_TEMPLATES.forEach((t) => expect(() => checkTemplate(t)).not.toThrow());
  });

  it('pass key has no key; the others do', () => {
    expect(DEFAULT_TEMPLATES.map(templateUsesKey)).toEqual([true, true, false]);
  });
});

describe('checkTemplate', () => {
  const base = { name: 'x', needle: ' {key} is {value}. ', question: '\nWhat is {key}?', answer: ' {value}.' };
  it('wants the value in the needle and the answer, not in the question', () => {
    expect(() => checkTemplate({ ...base, needle: ' {key} is here. ' })).toThrow(/needle has no \{value\}/);
    expect(() => checkTemplate({ ...base, answer: ' yes.' })).toThrow(/answer has no \{value\}/);
    expect(() => checkTemplate({ ...base, question: '\n{key} is {value}?' })).toThrow(/gives the \{value\} away/);
  });
  it('wants {key} in both needle and question or in neither', () => {
    expect(() => checkTemplate({ ...base, question: '\nWhat is it?' })).toThrow(/\{key\} must appear in both/);
    expect(() => checkTemplate({ ...base, needle: ' It is {value}. ', question: '\nWhat is it?' })).not.toThrow();
  });
});
