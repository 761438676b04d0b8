/**
 * A model and a prompt for exercising the web app at long contexts (the browser tests and the render
 * benchmark): random weights of a tiny Llama shape (2 layers × 2 heads) that takes 8K positions, so a
 * full prefill of an 8K-token prompt runs in seconds on a CPU, and haystack text cut to a token count.
 */
import fs from 'node:fs';
import path from 'node:path';
import { DEFAULT_MODEL } from '../cli/common.js';
import { makeRandom } from '../cli/makeRandom.js';
import { loadHaystack } from '../eval/haystack.js';
import type { Model } from '../runtime/model.js';

/** Writes the checkpoint under `dir` (once) and returns its folder. */
export function longContextModel(dir: string, positions = 8192): string {
  const out = path.join(dir, `random-long-${positions}`);
  if (fs.existsSync(path.join(out, 'config.json'))) return out;
  const like = path.join(dir, `like-long-${positions}`);
  fs.mkdirSync(like, { recursive: true });
  const raw = JSON.parse(fs.readFileSync(path.join(DEFAULT_MODEL, 'config.json'), 'utf8'));
  Object.assign(raw, { num_hidden_layers: 2, num_attention_heads: 2, num_key_value_heads: 2, head_dim: 16, hidden_size: 32, intermediate_size: 64 });
  fs.writeFileSync(path.join(like, 'config.json'), JSON.stringify(raw));
  for (const f of ['tokenizer.json', 'tokenizer_config.json']) fs.copyFileSync(path.join(DEFAULT_MODEL, f), path.join(like, f));
  makeRandom({ like, out, maxPositions: positions });
  return out;
}

/** Haystack text (repeated as needed) of about `tokens` tokens, BOS included — never more. */
export function longPrompt(model: Model, tokens: number): string {
  const base = loadHaystack();
  const perChar = model.tokenize(base.slice(0, 4000)).length / 4000;
  let text = base;
  while (text.length * perChar < tokens * 1.1) text += '\n' + base;
  text = text.slice(0, Math.ceil((tokens * 1.05) / perChar));
  // Cut off the excess tokens, then a few characters at a time until it fits.
  const ids = model.tokenize(text);
  text = model.tokenizer!.decode(ids.slice(1, tokens));
  while (model.tokenize(text).length > tokens) text = text.slice(0, -16);
  return text;
}
