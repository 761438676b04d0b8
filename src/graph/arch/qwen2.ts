/**
 * Qwen2: the Llama block with biases on the q, k and v projections (not on o_proj), set by the config
 * reader (`qkvBias`); sliding windows on the layers `layer_types` marks (or `max_window_layers` on).
 */
import type { ModelConfig } from '../../hf/config.js';
import { llamaArch } from './llama.js';

export const qwen2Arch = (c: ModelConfig) => llamaArch(c);
