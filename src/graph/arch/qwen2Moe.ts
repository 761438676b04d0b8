/**
 * Qwen2-MoE: the Qwen2 block with a mixture of experts (top-k of softmax routing, renormalized only
 * with `norm_topk_prob`) plus a shared expert gated by sigmoid(`shared_expert_gate`(x)); layers in
 * `mlp_only_layers` or off `decoder_sparse_step` keep a dense MLP.
 */
import type { ModelConfig } from '../../hf/config.js';
import { llamaArch } from './llama.js';

const m = 'model.layers.{l}.mlp';
const proj = (p: string): [string, string, string] => [`${p}.gate_proj.weight`, `${p}.up_proj.weight`, `${p}.down_proj.weight`];

export const qwen2MoeArch = (c: ModelConfig) => llamaArch(c, {
  mlp: 'moe',
  moeNames: { router: `${m}.gate.weight`, expert: (e) => proj(`${m}.experts.${e}`), shared: { names: proj(`${m}.shared_expert`), gate: `${m}.shared_expert_gate.weight` } },
});

/** Qwen3-MoE: the Qwen3 block (q/k norm) with Qwen2-MoE's experts and no shared expert. */
export const qwen3MoeArch = (c: ModelConfig) => llamaArch(c, {
  mlp: 'moe',
  qkNorm: 'head',
  moeNames: { router: `${m}.gate.weight`, expert: (e) => proj(`${m}.experts.${e}`) },
});
