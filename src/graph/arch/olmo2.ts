/**
 * OLMo 2: norms after attention and after the MLP instead of before (the branches read the residual
 * stream), and RMSNorm over the whole q and k projections (not per head) before RoPE.
 */
import type { ModelConfig } from '../../hf/config.js';
import { llamaArch } from './llama.js';

export const olmo2Arch = (c: ModelConfig) => llamaArch(c, { norms: 'post', qkNorm: 'flat' });
