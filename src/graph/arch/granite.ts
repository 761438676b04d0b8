/**
 * Granite: the Llama block; its `embedding_multiplier`, `residual_multiplier`, `attention_multiplier`
 * (the score scale) and `logits_scaling` are config fields the block layout and attention spec read.
 */
import type { ModelConfig } from '../../hf/config.js';
import { llamaArch } from './llama.js';

export const graniteArch = (c: ModelConfig) => llamaArch(c);
