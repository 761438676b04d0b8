/**
 * Mistral: the Llama block unchanged (GQA, RoPE, SwiGLU, no biases). Its `sliding_window` applies to
 * every layer: the config reader puts it in `layerWindows`, the attention spec declares it, and the
 * runtime's masks and caches honour it.
 */
import type { ModelConfig } from '../../hf/config.js';
import { llamaArch } from './llama.js';

export const mistralArch = (c: ModelConfig) => llamaArch(c);
