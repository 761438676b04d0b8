/**
 * GPT-2: learned absolute positions, LayerNorm with biases, one fused Conv1D `c_attn` producing
 * q|k|v (Conv1D stores weights [in, out]), a GELU (tanh) MLP, tied LM head.
 */
import type { ModelConfig } from '../../hf/config.js';
import { PRE_NORM, type Arch } from './arch.js';
import { activation, layerNorm } from './ops.js';
import { project } from './projection.js';
import type { WeightSpec } from '../weights.js';

export function gpt2Arch(c: ModelConfig): Arch {
  const H = c.hiddenSize;
  const L = (l: number) => `h.${l}`;
  // Checkpoints saved from GPT2LMHeadModel prefix names with "transformer."; the base model doesn't.
  const weights: WeightSpec[] = [
    { name: 'wte.weight', shape: [c.vocabSize, H] },
    { name: 'wpe.weight', shape: [c.maxPositions, H] },
  ];
  for (let l = 0; l < c.numLayers; l++) {
    const p = L(l);
    weights.push(
      { name: `${p}.ln_1.weight`, shape: [H] }, { name: `${p}.ln_1.bias`, shape: [H] },
      { name: `${p}.attn.c_attn.weight`, shape: [H, 3 * H] }, { name: `${p}.attn.c_attn.bias`, shape: [3 * H] },
      { name: `${p}.attn.c_proj.weight`, shape: [H, H] }, { name: `${p}.attn.c_proj.bias`, shape: [H] },
      { name: `${p}.ln_2.weight`, shape: [H] }, { name: `${p}.ln_2.bias`, shape: [H] },
      { name: `${p}.mlp.c_fc.weight`, shape: [H, c.intermediateSize] }, { name: `${p}.mlp.c_fc.bias`, shape: [c.intermediateSize] },
      { name: `${p}.mlp.c_proj.weight`, shape: [c.intermediateSize, H] }, { name: `${p}.mlp.c_proj.bias`, shape: [H] },
    );
  }
  weights.push({ name: 'ln_f.weight', shape: [H] }, { name: 'ln_f.bias', shape: [H] });

  return {
    weights,
    namePrefixes: ['', 'transformer.'],
    block: PRE_NORM,
    attention: () => ({ scale: 1 / Math.sqrt(c.headDim), softcap: null, window: null, rope: null }),
    embed: (b, w, ids, pos) => b.add(b.gather(w('wte.weight'), ids), b.gather(w('wpe.weight'), pos)),
    attnNorm: (b, w, x, l) => layerNorm(b, x, w(`${L(l)}.ln_1.weight`), w(`${L(l)}.ln_1.bias`), c.normEps),
    qkv: (b, w, x, l) => {
      const [q, k, v] = project(b, w, x, { weights: [`${L(l)}.attn.c_attn.weight`], biases: [`${L(l)}.attn.c_attn.bias`], sizes: [H, H, H], conv1d: true });
      return { q, k, v };
    },
    attnOut: (b, w, z, l) => b.gemm(z, w(`${L(l)}.attn.c_proj.weight`), w(`${L(l)}.attn.c_proj.bias`)),
    mlpNorm: (b, w, x, l) => layerNorm(b, x, w(`${L(l)}.ln_2.weight`), w(`${L(l)}.ln_2.bias`), c.normEps),
    mlp: (b, w, x, l) => {
      const h = activation(b, b.gemm(x, w(`${L(l)}.mlp.c_fc.weight`), w(`${L(l)}.mlp.c_fc.bias`)), c.hiddenAct === 'gelu' ? 'gelu' : 'gelu_new');
      return b.gemm(h, w(`${L(l)}.mlp.c_proj.weight`), w(`${L(l)}.mlp.c_proj.bias`));
    },
    finalNorm: (b, w, x) => layerNorm(b, x, w('ln_f.weight'), w('ln_f.bias'), c.normEps),
    lmHead: (b, w, x) => b.linear(x, w('wte.weight')),
  };
}
