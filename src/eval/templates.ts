/**
 * Needle templates: the sentence hidden in the haystack, the question at the end of the prompt, and
 * the expected answer, with `{key}` and `{value}` placeholders. The defaults are the three phrasings
 * the reference models were trained on (../shared/models/README.md); any other template works the same
 * way. Which template a variant uses, and where needles go, is `needle.ts`'s business.
 */
import { check } from '../errors.js';

export interface NeedleTemplate {
  /** Short name for reports. */
  name: string;
  /** Inserted into the haystack; must contain `{value}`. Keep its leading/trailing spaces. */
  needle: string;
  /** Ends the prompt, right before the answer. */
  question: string;
  /** What follows the question when the model is right; must contain `{value}`. */
  answer: string;
}

export const MAGIC_NUMBER_TEMPLATE: NeedleTemplate = {
  name: 'magic-number',
  needle: ' The special magic number for {key} is {value}. ',
  question: '\nWhat is the special magic number for {key}? The special magic number for {key} is',
  answer: ' {value}.',
};

export const SECRET_CODE_TEMPLATE: NeedleTemplate = {
  name: 'secret-code',
  needle: ' Remember: the secret code of {key} is {value}. ',
  question: '\nWhat is the secret code of {key}? The secret code of {key} is',
  answer: ' {value}.',
};

export const PASS_KEY_TEMPLATE: NeedleTemplate = {
  name: 'pass-key',
  needle: ' The pass key is {value}. Remember it. {value} is the pass key. ',
  question: '\nWhat is the pass key? The pass key is',
  answer: ' {value}.',
};

export const DEFAULT_TEMPLATES: readonly NeedleTemplate[] = [MAGIC_NUMBER_TEMPLATE, SECRET_CODE_TEMPLATE, PASS_KEY_TEMPLATE];

/** Whether the template names a key (pass-key templates do not, so they allow one needle only). */
export function templateUsesKey(template: NeedleTemplate): boolean {
  return template.needle.includes('{key}') || template.question.includes('{key}');
}

/** Throws unless the needle and the answer carry the value, and a keyed question names the key. */
export function checkTemplate(template: NeedleTemplate): void {
  check(template.needle.includes('{value}'), `template ${template.name}: the needle has no {value}`);
  check(template.answer.includes('{value}'), `template ${template.name}: the answer has no {value}`);
  check(!template.question.includes('{value}'), `template ${template.name}: the question gives the {value} away`);
  check(
    template.needle.includes('{key}') === template.question.includes('{key}'),
    `template ${template.name}: {key} must appear in both the needle and the question, or in neither`,
  );
}

/** Replaces every `{key}` and `{value}`. */
export function fillTemplate(text: string, key: string, value: string): string {
  return text.replaceAll('{key}', key).replaceAll('{value}', value);
}
