/**
 * Qwen2: the Llama block with biases on the q, k and v projections (not on o_proj). The config
 * reader sets `qkvBias` for this family; the Llama builder honours it.
 */
import type { ModelConfig } from '../../hf/config.js';
import { llamaArch } from './llama.js';

export const qwen2Arch = (c: ModelConfig) => llamaArch({ ...c, qkvBias: true, oBias: false });
