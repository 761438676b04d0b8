import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseModelConfig } from './config.js';

const llama5 = JSON.parse(fs.readFileSync(path.resolve('models/ref-llama-7m/config.json'), 'utf8'));

describe('config.json', () => {
  it('reads transformers-5 configs (rope_parameters, dtype)', () => {
    const c = parseModelConfig(llama5);
    expect(c).toMatchObject({ family: 'llama', numLayers: 6, numHeads: 4, numKvHeads: 4, headDim: 64, tieWordEmbeddings: true, dtype: 'bfloat16' });
    expect(c.rope).toEqual({ theta: 10000, type: 'default', partialRotary: 1 });
  });

  it('reads older configs (top-level rope_theta, rope_scaling, torch_dtype) with llama3 RoPE', () => {
    const old = JSON.parse(fs.readFileSync(path.resolve('test/fixtures/models/tiny-llama/config.json'), 'utf8'));
    const c = parseModelConfig(old);
    expect(c.rope).toMatchObject({ theta: 500000, type: 'llama3', factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositions: 16 });
    expect(c.numKvHeads).toBe(2);
    expect(c.dtype).toBe('bfloat16');
  });

  it('knows each family by its differences', () => {
    const base = { hidden_size: 64, num_attention_heads: 4, num_key_value_heads: 2, num_hidden_layers: 2, intermediate_size: 128, vocab_size: 100, max_position_embeddings: 64 };
    expect(parseModelConfig({ ...base, model_type: 'qwen2' })).toMatchObject({ qkvBias: true, oBias: false, qkNorm: false });
    expect(parseModelConfig({ ...base, model_type: 'qwen3', head_dim: 32 })).toMatchObject({ qkNorm: true, headDim: 32 });
    expect(parseModelConfig({ ...base, model_type: 'mistral' })).toMatchObject({ qkvBias: false, numKvHeads: 2 });
    expect(parseModelConfig({ model_type: 'gpt2', n_embd: 64, n_head: 4, n_layer: 2, n_positions: 32, vocab_size: 50 })).toMatchObject({ family: 'gpt2', intermediateSize: 256, tieWordEmbeddings: true });
  });

  it.each([
    [{ ...llama5, model_type: 'bert' }, /model_type "bert" is not supported \(supported: llama, mistral, qwen2, qwen3, gpt2, gemma, /],
    [{ ...llama5, model_type: undefined }, /missing required field "model_type"/],
    [{ ...llama5, hidden_size: undefined }, /missing required field "hidden_size"/],
    [{ ...llama5, num_hidden_layers: 'six' }, /"num_hidden_layers" must be a number/],
    [{ ...llama5, num_key_value_heads: 3 }, /not a multiple of num_key_value_heads 3/],
    [{ ...llama5, rope_parameters: { rope_theta: 1e4, rope_type: 'ntk-by-parts' } }, /field "rope_type" "ntk-by-parts" is not supported/],
    [{ ...llama5, rope_parameters: { rope_theta: 1e4, rope_type: 'yarn', factor: 4 } }, /missing required field "original_max_position_embeddings"/],
    [{ ...llama5, sliding_window: 4096 }, /field "sliding_window" \(4096\) changes the model's math and is not implemented for model_type "llama"/],
    [{ ...llama5, model_type: 'mistral', attn_logit_softcapping: 50 }, /field "attn_logit_softcapping" \(50\) changes the model's math/],
    [{ ...llama5, model_type: 'gpt2', n_embd: 64, n_head: 4, n_layer: 2, n_positions: 32, scale_attn_by_inverse_layer_idx: true }, /field "scale_attn_by_inverse_layer_idx"/],
    [{ ...llama5, layer_types: ['full_attention'] }, /field "layer_types" has 1 entries for 6 layers/],
    [{ ...llama5, hidden_act: 'relu' }, /hidden_act "relu" is not supported/],
    [[1, 2], /must be a JSON object/],
  ])('rejects a bad config with one line naming the field (%#)', (raw, message) => {
    expect(() => parseModelConfig(raw, 'x/config.json')).toThrow(message);
    expect(() => parseModelConfig(raw, 'x/config.json')).toThrow(/^x\/config.json: /);
  });
});
