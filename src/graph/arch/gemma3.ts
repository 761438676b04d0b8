/**
 * Gemma 3 (text): Gemma 2's block plus a (1 + w) RMSNorm over head_dim on queries and keys before
 * RoPE, and a different RoPE on sliding-window layers (`rope_local_base_freq` /
 * rope_parameters.sliding_attention) than on global ones.
 */
import type { ModelConfig } from '../../hf/config.js';
import { llamaArch } from './llama.js';

export const gemma3Arch = (c: ModelConfig) => llamaArch(c, { norm: 'rms1p', norms: 'sandwich', qkNorm: 'head', embedScaleSqrtHidden: true });
