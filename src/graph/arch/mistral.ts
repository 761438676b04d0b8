/**
 * Mistral: the Llama block unchanged (GQA, RoPE, SwiGLU, no biases). Its sliding window, where a
 * config sets one, is a masking rule applied by the runtime, not a graph difference.
 */
import { llamaArch } from './llama.js';

export const mistralArch = llamaArch;
