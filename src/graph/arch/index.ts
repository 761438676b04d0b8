/** The architecture registry: model family -> the file that says how its blocks are built. */
import type { Family } from '../../hf/config.js';
import type { ArchFactory } from './arch.js';
import { gemmaArch } from './gemma.js';
import { gemma2Arch } from './gemma2.js';
import { gemma3Arch } from './gemma3.js';
import { gpt2Arch } from './gpt2.js';
import { gptNeoxArch } from './gptNeox.js';
import { graniteArch } from './granite.js';
import { llamaArch } from './llama.js';
import { mistralArch } from './mistral.js';
import { mixtralArch } from './mixtral.js';
import { olmoArch } from './olmo.js';
import { olmo2Arch } from './olmo2.js';
import { phiArch } from './phi.js';
import { phi3Arch } from './phi3.js';
import { qwen2Arch } from './qwen2.js';
import { qwen2MoeArch, qwen3MoeArch } from './qwen2Moe.js';
import { qwen3Arch } from './qwen3.js';
import { stablelmArch } from './stablelm.js';
import { starcoder2Arch } from './starcoder2.js';

/** One line per family: what it declares beyond the Llama block (for `headwise models` and the docs). */
export const ARCHITECTURE_SUMMARY: Record<Family, string> = {
  llama: 'RMSNorm, RoPE (all scaling types), SwiGLU, GQA; optional attention/MLP biases, tied embeddings',
  mistral: 'the Llama block; sliding_window on every layer',
  qwen2: 'q/k/v biases; sliding windows per layer_types / max_window_layers',
  qwen3: 'per-head RMSNorm on q and k; free head_dim',
  gpt2: 'learned positions, LayerNorm, fused Conv1D q|k|v, GELU MLP, tied head',
  gemma: 'RMSNorm (1 + w), embeddings × √hidden, GeGLU, tied head',
  gemma2: 'four norms per block, query_pre_attn_scalar, attention and final-logit soft-caps, alternating sliding/global layers',
  gemma3_text: 'gemma2 plus (1 + w) q/k norm and a local RoPE base on sliding layers',
  phi3: 'fused qkv_proj and gate_up_proj, longrope',
  phi: 'parallel attention + MLP on one LayerNorm, partial rotary, biases everywhere, LM-head bias',
  gpt_neox: 'fused per-head query_key_value, partial rotary (rotary_pct), parallel residual, exact GELU',
  olmo: 'LayerNorm without weights, clip_qkv',
  olmo2: 'post-norms only (after attention and MLP), RMSNorm over whole q and k projections',
  granite: 'embedding / residual / attention multipliers, logits_scaling',
  mixtral: 'mixture of experts (top-k, renormalized), dense all-experts evaluation',
  qwen2_moe: 'qwen2 with mixture of experts (top-k, norm_topk_prob) plus a sigmoid-gated shared expert',
  qwen3_moe: 'qwen3 with mixture of experts (top-k, norm_topk_prob)',
  starcoder2: 'LayerNorm, biases everywhere, plain GELU-tanh MLP, sliding window',
  stablelm: 'LayerNorm, partial rotary, optional q/k/v biases, per-head q/k LayerNorm, parallel residual',
};

export const ARCHITECTURES: Record<Family, ArchFactory> = {
  llama: (c) => llamaArch(c),
  mistral: mistralArch,
  qwen2: qwen2Arch,
  qwen3: qwen3Arch,
  gpt2: gpt2Arch,
  gemma: gemmaArch,
  gemma2: gemma2Arch,
  gemma3_text: gemma3Arch,
  phi3: phi3Arch,
  phi: phiArch,
  gpt_neox: gptNeoxArch,
  olmo: olmoArch,
  olmo2: olmo2Arch,
  granite: graniteArch,
  mixtral: mixtralArch,
  qwen2_moe: qwen2MoeArch,
  qwen3_moe: qwen3MoeArch,
  starcoder2: starcoder2Arch,
  stablelm: stablelmArch,
};
