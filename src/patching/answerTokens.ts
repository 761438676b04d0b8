/**
 * Answers as token ids: the text of an answer tokenized on its own (no special tokens), as it is
 * teacher-forced after a prompt. Shared by `patch.ts` and `importance.ts`.
 */
import { HeadwiseError } from '../errors.js';
import type { Model } from '../runtime/model.js';
import type { TokenText } from './format.js';

export function promptTokens(model: Model, prompt: string | readonly number[], what: string): number[] {
  if (typeof prompt !== 'string') {
    if (prompt.length === 0) throw new HeadwiseError(`${what}: no tokens`);
    return [...prompt];
  }
  if (!model.tokenizer) throw new HeadwiseError(`${model.ckpt.dir}: no tokenizer.json; give ${what} as token ids`);
  return model.tokenize(prompt);
}

export function answerTokens(model: Model, answer: string | readonly number[], what: string): number[] {
  if (typeof answer !== 'string') {
    if (answer.length === 0) throw new HeadwiseError(`${what}: no tokens`);
    return [...answer];
  }
  if (!model.tokenizer) throw new HeadwiseError(`${model.ckpt.dir}: no tokenizer.json; give ${what} as token ids`);
  const ids = model.tokenizer.encode(answer, false);
  if (ids.length === 0) throw new HeadwiseError(`${what}: ${JSON.stringify(answer)} has no tokens`);
  return ids;
}

export function tokenTexts(model: Model, ids: readonly number[]): TokenText[] {
  return ids.map((id) => ({ id, text: model.tokenizer ? model.tokenizer.tokenString(id) : String(id) }));
}
