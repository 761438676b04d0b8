/**
 * OLMo: the Llama block with LayerNorms that have no weights or biases, and q, k, v clamped to
 * ±`clip_qkv` where the config sets it.
 */
import type { ModelConfig } from '../../hf/config.js';
import { llamaArch } from './llama.js';

export const olmoArch = (c: ModelConfig) => llamaArch(c, { norm: 'none' });
