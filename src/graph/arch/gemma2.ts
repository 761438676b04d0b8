/**
 * Gemma 2: Gemma plus four norms per block (pre and post around attention and around the MLP),
 * score scale `query_pre_attn_scalar`^-½, tanh soft-caps on attention scores and final logits, and
 * sliding-window layers alternating with global ones (`layer_types`) — all config fields the spec reads.
 */
import type { ModelConfig } from '../../hf/config.js';
import { llamaArch } from './llama.js';

export const gemma2Arch = (c: ModelConfig) => llamaArch(c, { norm: 'rms1p', norms: 'sandwich', embedScaleSqrtHidden: true });
