/**
 * StableLM: the Llama block with LayerNorms (weight and bias), partial rotary (`partial_rotary_factor`),
 * optional q/k/v biases (`use_qkv_bias`), optional per-head LayerNorm on q and k with one weight per head
 * (`qk_layernorm`), and optionally a parallel residual where attention and MLP both read
 * input_layernorm(h) (`use_parallel_residual`).
 */
import type { ModelConfig } from '../../hf/config.js';
import { llamaArch } from './llama.js';

export const stablelmArch = (c: ModelConfig) => llamaArch(c, { norm: 'layer', qkNorm: c.qkNorm ? 'stablelm' : undefined, parallel: c.parallelResidual });
