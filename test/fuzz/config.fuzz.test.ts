/**
 * Fuzz: config.json. Mutated configs of every fixture family (each field replaced by edge values —
 * 1e9 layers, 2^53, negative eps, theta 0 / Infinity, llama3 factor 0 —, keys dropped or added,
 * nesting thousands deep) through `parseModelConfig` and `checkModelConfig` with the tensors of the real
 * checkpoint; a share also through `Checkpoint.open` on a folder that links the real weights. Every
 * case is accepted or refused cleanly, and an accepted config never claims more than the tensors hold.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { Checkpoint } from '../../src/hf/checkpoint.js';
import { parseModelConfig } from '../../src/hf/config.js';
import { checkModelConfig, CONFIG_BOUNDS } from '../../src/hf/configChecks.js';
import { SafetensorsFile } from '../../src/hf/safetensors.js';
import { clean, mutate, newTally, record, seeded } from './fuzz.js';

const MODELS = ['models/ref-llama-7m', ...fs.readdirSync('test/fixtures/models').map((m) => `test/fixtures/models/${m}`)].filter((d) => fs.existsSync(path.join(d, 'model.safetensors')));
const bases = MODELS.map((dir) => {
  const raw = JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8')) as Record<string, unknown>;
  const f = SafetensorsFile.open(path.join(dir, 'model.safetensors'));
  const tensors = [...f.tensors.values()].map((t) => ({ name: t.name, shape: t.shape }));
  f.close();
  return { dir, raw, tensors };
});
const KEYS = ['num_hidden_layers', 'hidden_size', 'num_attention_heads', 'num_key_value_heads', 'head_dim', 'vocab_size', 'max_position_embeddings',
  'rms_norm_eps', 'rope_theta', 'rope_scaling', 'rope_parameters', 'n_layer', 'n_head', 'n_embd', 'n_positions', 'layer_norm_epsilon', 'bos_token_id', 'eos_token_id', 'torch_dtype', 'dtype'];
const LLAMA3 = { rope_type: 'llama3', rope_theta: 500000, factor: 8, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 64 };

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'headwise-fuzz-cfg-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

it('fuzz: 2 400 mutated config.json objects are accepted within bounds or refused with one clean line', () => {
  const rng = seeded(21);
  const tally = newTally();
  for (const b of bases) expect(clean(tally, `${b.dir} as is`, () => checkModelConfig(parseModelConfig(b.raw, 'config.json'), 'config.json', b.tensors))).toBe('accepted');
  for (let i = 0; i < 2400; i++) {
    const b = rng.pick(bases);
    let start = b.raw;
    if (b.raw.model_type !== 'gpt2' && rng.chance(0.2)) start = { ...b.raw, rope_parameters: { ...LLAMA3 } };
    const doc = mutate(start, rng, { keys: KEYS });
    clean(tally, `config case ${i} (${b.dir})`, () => {
      const c = parseModelConfig(doc, 'config.json');
      checkModelConfig(c, 'config.json', b.tensors);
      for (const [key, [lo, hi]] of Object.entries(CONFIG_BOUNDS)) {
        const v = c[key as keyof typeof CONFIG_BOUNDS];
        expect(v >= lo && v <= hi, `${key} = ${v} accepted`).toBe(true);
      }
      expect(c.normEps > 0 && c.normEps < 1).toBe(true);
    });
  }
  record('config.json objects', tally);
  expect(tally.cases).toBeGreaterThanOrEqual(2400);
});

it('fuzz: 200 mutated config.json files through Checkpoint.open (real weights linked)', () => {
  const rng = seeded(22);
  const tally = newTally();
  for (let i = 0; i < 200; i++) {
    const b = rng.pick(bases);
    const dir = path.join(tmp, `m${i}`);
    fs.mkdirSync(dir);
    fs.symlinkSync(path.resolve(b.dir, 'model.safetensors'), path.join(dir, 'model.safetensors'));
    const doc = mutate(b.raw, rng, { keys: KEYS });
    fs.writeFileSync(path.join(dir, 'config.json'), rng.chance(0.05) ? JSON.stringify(doc).slice(0, rng.int(0, 40)) : JSON.stringify(doc));
    clean(tally, `checkpoint case ${i} (${b.dir})`, () => Checkpoint.open(dir).close());
  }
  record('config.json via Checkpoint.open', tally);
  expect(tally.cases).toBe(200);
});
