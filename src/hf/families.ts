/**
 * The supported `model_type`s and, for each, the config fields that change the math which headwise
 * reads for it. `MATH_FIELDS` lists every such field headwise knows with the values that leave the math
 * unchanged; `config.ts` refuses a field set to anything else on a family that does not read it
 * (e.g. `sliding_window` on llama, `attn_logit_softcapping` on mistral), naming the field.
 */

export const FAMILIES = [
  'llama', 'mistral', 'qwen2', 'qwen3', 'gpt2',
  'gemma', 'gemma2', 'gemma3_text', 'phi3', 'phi', 'gpt_neox', 'olmo', 'olmo2', 'granite',
  'mixtral', 'qwen2_moe', 'qwen3_moe', 'starcoder2', 'stablelm',
] as const;
export type Family = (typeof FAMILIES)[number];

/** Field -> values under which it changes nothing (null / absent always count as neutral). */
export const MATH_FIELDS: Record<string, unknown[]> = {
  sliding_window: [0],
  use_sliding_window: [false],
  max_window_layers: [],
  sliding_window_pattern: [],
  _sliding_window_pattern: [],
  rope_local_base_freq: [],
  attn_logit_softcapping: [],
  final_logit_softcapping: [],
  query_pre_attn_scalar: [],
  rotary_pct: [1, 1.0],
  rotary_emb_base: [],
  clip_qkv: [],
  embedding_multiplier: [1],
  residual_multiplier: [1],
  attention_multiplier: [],
  logits_scaling: [1],
  qk_layernorm: [false],
  use_parallel_residual: [false],
  use_qkv_bias: [false],
  use_bias: [],
  qkv_bias: [],
  num_local_experts: [],
  num_experts: [0],
  shared_expert_intermediate_size: [0],
  norm_topk_prob: [false],
  decoder_sparse_step: [1],
  mlp_only_layers: [[]],
  pretraining_tp: [1],
  alibi: [false],
  use_alibi: [false],
  use_bidirectional_attention: [false],
  scale_attn_by_inverse_layer_idx: [false],
  reorder_and_upcast_attn: [false],
  scale_attn_weights: [true],
};

const QWEN_WINDOWS = ['sliding_window', 'use_sliding_window', 'max_window_layers'];
const MOE = ['num_local_experts', 'num_experts', 'norm_topk_prob', 'decoder_sparse_step', 'mlp_only_layers'];
const GEMMA2 = ['sliding_window', 'attn_logit_softcapping', 'final_logit_softcapping', 'query_pre_attn_scalar'];

/** The math fields each family reads (beyond the ones every family reads: sizes, eps, RoPE, biases, tie). */
export const FAMILY_READS: Record<Family, string[]> = {
  llama: [],
  mistral: ['sliding_window'],
  qwen2: QWEN_WINDOWS,
  qwen3: QWEN_WINDOWS,
  gpt2: [],
  gemma: [],
  gemma2: GEMMA2,
  gemma3_text: [...GEMMA2, 'rope_local_base_freq', 'sliding_window_pattern', '_sliding_window_pattern'],
  phi3: ['sliding_window'],
  phi: [],
  gpt_neox: ['rotary_pct', 'rotary_emb_base', 'use_parallel_residual'],
  olmo: ['clip_qkv'],
  olmo2: [],
  granite: ['embedding_multiplier', 'residual_multiplier', 'attention_multiplier', 'logits_scaling'],
  mixtral: ['sliding_window', 'num_local_experts'],
  qwen2_moe: [...QWEN_WINDOWS, ...MOE, 'shared_expert_intermediate_size', 'qkv_bias'],
  qwen3_moe: [...QWEN_WINDOWS, ...MOE],
  starcoder2: ['sliding_window', 'use_bias'],
  stablelm: ['qk_layernorm', 'use_parallel_residual', 'use_qkv_bias'],
};
