/**
 * StarCoder2: the Llama block with LayerNorms (weight and bias), biases on every projection
 * (`use_bias`), a plain MLP c_fc → gelu_pytorch_tanh → c_proj, and a sliding window on every layer.
 */
import type { ModelConfig } from '../../hf/config.js';
import { llamaArch } from './llama.js';

export const starcoder2Arch = (c: ModelConfig) => llamaArch(c, { norm: 'layer', mlp: 'plain' });
