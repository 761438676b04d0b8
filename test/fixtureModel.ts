/**
 * A tiny fixture family with the bundled ref-llama-7m's tokenizer: the fixture's config with the
 * reference's vocabulary and special tokens, random weights of that shape (seed 7), written to
 * `dir/name` — so tests can tokenize real text on every architecture family.
 */
import fs from 'node:fs';
import path from 'node:path';
import { ARCHITECTURES } from '../src/graph/arch/index.js';
import { parseModelConfig } from '../src/hf/config.js';
import { writeRandomCheckpoint } from '../src/hf/randomCheckpoint.js';

export const REF_7M = path.resolve('models/ref-llama-7m');

/** Writes the checkpoint and returns its folder. */
export function fixtureWithRefTokenizer(name: string, dir: string): string {
  const raw = JSON.parse(fs.readFileSync(path.resolve(`test/fixtures/models/${name}/config.json`), 'utf8'));
  const refConfig = JSON.parse(fs.readFileSync(path.join(REF_7M, 'config.json'), 'utf8'));
  const like = { ...raw, vocab_size: refConfig.vocab_size, bos_token_id: refConfig.bos_token_id, eos_token_id: refConfig.eos_token_id, max_position_embeddings: 256 };
  const config = parseModelConfig(like, name);
  const out = path.join(dir, name);
  writeRandomCheckpoint({ rawConfig: like, tensors: ARCHITECTURES[config.family](config).weights, outDir: out, sourceDir: REF_7M, seed: 7 });
  return out;
}
