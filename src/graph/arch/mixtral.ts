/**
 * Mixtral: the Mistral block with a mixture of experts for the MLP (`block_sparse_moe`: router `gate`,
 * experts w1 = gate, w3 = up, w2 = down), top-k routing with renormalized weights.
 */
import type { ModelConfig } from '../../hf/config.js';
import { llamaArch } from './llama.js';

const moe = 'model.layers.{l}.block_sparse_moe';

export const mixtralArch = (c: ModelConfig) => llamaArch(c, {
  mlp: 'moe',
  moeNames: { router: `${moe}.gate.weight`, expert: (e) => [`${moe}.experts.${e}.w1.weight`, `${moe}.experts.${e}.w3.weight`, `${moe}.experts.${e}.w2.weight`] },
});
