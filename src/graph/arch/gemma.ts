/**
 * Gemma: the Llama block with RMSNorm weights stored as offsets from 1 (x̂·(1 + w)), embeddings
 * scaled by √hidden, a GeGLU MLP (gelu_pytorch_tanh gate), tied embeddings (MQA in the 2B).
 */
import type { ModelConfig } from '../../hf/config.js';
import { llamaArch } from './llama.js';

export const gemmaArch = (c: ModelConfig) => llamaArch(c, { norm: 'rms1p', embedScaleSqrtHidden: true });
