/**
 * Phi-3: the Llama block with q|k|v fused into one `qkv_proj` and gate|up into one `gate_up_proj`
 * (split after the matmul); its `longrope` scaling is a RoPE type (`rope.ts`).
 */
import type { ModelConfig } from '../../hf/config.js';
import { llamaArch } from './llama.js';

export const phi3Arch = (c: ModelConfig) => llamaArch(c, { fused: true });
