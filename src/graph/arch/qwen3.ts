/**
 * Qwen3: the Llama block plus an RMSNorm over head_dim on every query and key head before RoPE
 * (`q_norm`, `k_norm`), and a head_dim that need not equal hidden_size / heads.
 */
import type { ModelConfig } from '../../hf/config.js';
import { llamaArch } from './llama.js';

export const qwen3Arch = (c: ModelConfig) => llamaArch(c, { qkNorm: 'head' });
