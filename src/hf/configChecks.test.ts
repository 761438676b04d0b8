import fs from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseModelConfig, type ModelConfig } from './config.js';
import { checkModelConfig } from './configChecks.js';

const base = parseModelConfig(JSON.parse(fs.readFileSync('models/ref-llama-7m/config.json', 'utf8')));
const tensors = [
  { name: 'model.embed_tokens.weight', shape: [8192, 256] },
  ...Array.from({ length: 6 }, (_, l) => ({ name: `model.layers.${l}.self_attn.q_proj.weight`, shape: [256, 256] })),
];
const withRope = (rope: Partial<NonNullable<ModelConfig['rope']>>): ModelConfig => ({ ...base, rope: { ...base.rope!, ...rope } });
const llama3 = { type: 'llama3' as const, factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositions: 64 };

describe('checkModelConfig', () => {
  it('accepts the bundled model with its tensors', () => {
    expect(() => checkModelConfig(base, 'config.json', tensors)).not.toThrow();
    expect(() => checkModelConfig(withRope(llama3), 'config.json', tensors)).not.toThrow();
  });

  it.each<[string, ModelConfig, RegExp]>([
    ['1e9 layers', { ...base, numLayers: 1e9 }, /num_hidden_layers 1000000000 is not plausible \(expected an integer from 1 to 1024\)/],
    ['2^53 layers', { ...base, numLayers: 2 ** 53 }, /num_hidden_layers 9007199254740992/],
    ['fractional heads', { ...base, numHeads: 2.5 }, /num_attention_heads 2.5/],
    ['huge vocab', { ...base, vocabSize: 2 ** 30 }, /vocab_size 1073741824 is not plausible/],
    ['context of 2', { ...base, maxPositions: 2 }, /max_position_embeddings 2 is not plausible/],
    ['kv > heads', { ...base, numKvHeads: 8 }, /not a multiple of num_key_value_heads 8/],
    ['eps -1', { ...base, normEps: -1 }, /norm epsilon -1 must lie in \(0, 1\)/],
    ['eps 1e308', { ...base, normEps: 1e308 }, /norm epsilon 1e\+308/],
    ['eps 0', { ...base, normEps: 0 }, /norm epsilon 0/],
    ['theta 0', withRope({ theta: 0 }), /rope_theta 0 must be a finite number > 0/],
    ['theta Infinity', withRope({ theta: Infinity }), /rope_theta Infinity/],
    ['theta NaN', withRope({ theta: NaN }), /rope_theta NaN/],
    ['llama3 factor 0', withRope({ ...llama3, factor: 0 }), /rope_parameters\.factor 0 must be a finite number > 0/],
    ['llama3 high ≤ low', withRope({ ...llama3, highFreqFactor: 1 }), /high_freq_factor 1 must be greater than low_freq_factor 1/],
    ['bos outside vocab', { ...base, bosTokenId: 8192 }, /bos_token_id 8192 is outside the vocabulary of 8192/],
    ['eos negative', { ...base, eosTokenIds: [-1] }, /eos_token_id -1/],
  ])('refuses %s', (_name, config, re) => {
    expect(() => checkModelConfig(config, 'config.json')).toThrow(re);
  });

  it('refuses a config that does not fit the tensors present', () => {
    expect(() => checkModelConfig({ ...base, numLayers: 7 }, 'config.json', tensors)).toThrow(/num_hidden_layers 7 but the checkpoint has tensors for 6 layers/);
    expect(() => checkModelConfig({ ...base, vocabSize: 9000 }, 'config.json', tensors)).toThrow(/vocab_size 9000 but model\.embed_tokens\.weight has 8192 rows/);
    expect(() => checkModelConfig({ ...base, hiddenSize: 512 }, 'config.json', tensors)).toThrow(/hidden size 512 but model\.embed_tokens\.weight is 256 wide/);
    expect(() => checkModelConfig({ ...base, numLayers: 5 }, 'config.json', tensors)).not.toThrow(); // fewer layers than stored is a valid truncation
  });
});
