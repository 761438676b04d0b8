/**
 * GPT-NeoX (Pythia): LayerNorms with biases, one fused `query_key_value` projection laid out per head
 * ([heads, q|k|v, headDim], split after the matmul), partial rotary (`rotary_pct`), exact-GELU MLP,
 * untied `embed_out`, and by default a parallel residual (h + attn(ln1(h)) + mlp(ln2(h))).
 */
import type { ModelConfig } from '../../hf/config.js';
import type { Arch } from './arch.js';
import { configAttention } from './llama.js';
import { layerNorm, plainMlp } from './ops.js';
import { project } from './projection.js';
import type { WeightSpec } from '../weights.js';

export function gptNeoxArch(c: ModelConfig): Arch {
  const H = c.hiddenSize;
  const I = c.intermediateSize;
  const D = c.headDim;
  const L = (l: number) => `gpt_neox.layers.${l}`;
  const weights: WeightSpec[] = [{ name: 'gpt_neox.embed_in.weight', shape: [c.vocabSize, H] }];
  const ln = (name: string) => weights.push({ name: `${name}.weight`, shape: [H] }, { name: `${name}.bias`, shape: [H] });
  for (let l = 0; l < c.numLayers; l++) {
    const p = L(l);
    ln(`${p}.input_layernorm`);
    ln(`${p}.post_attention_layernorm`);
    weights.push(
      { name: `${p}.attention.query_key_value.weight`, shape: [3 * H, H] }, { name: `${p}.attention.query_key_value.bias`, shape: [3 * H] },
      { name: `${p}.attention.dense.weight`, shape: [H, H] }, { name: `${p}.attention.dense.bias`, shape: [H] },
      { name: `${p}.mlp.dense_h_to_4h.weight`, shape: [I, H] }, { name: `${p}.mlp.dense_h_to_4h.bias`, shape: [I] },
      { name: `${p}.mlp.dense_4h_to_h.weight`, shape: [H, I] }, { name: `${p}.mlp.dense_4h_to_h.bias`, shape: [H] },
    );
  }
  ln('gpt_neox.final_layer_norm');
  weights.push({ name: c.tieWordEmbeddings ? 'gpt_neox.embed_in.weight' : 'embed_out.weight', shape: [c.vocabSize, H] });
  const norm = (b: Parameters<Arch['finalNorm']>[0], w: Parameters<Arch['finalNorm']>[1], x: string, name: string) => layerNorm(b, x, w(`${name}.weight`), w(`${name}.bias`), c.normEps);

  return {
    weights: c.tieWordEmbeddings ? weights.slice(0, -1) : weights,
    block: { residual: c.parallelResidual ? 'parallel' : 'sequential', residualScale: 1, embedScale: 1, logitScale: 1, logitSoftcap: null },
    attention: configAttention(c),
    embed: (b, w, ids) => b.gather(w('gpt_neox.embed_in.weight'), ids),
    attnNorm: (b, w, x, l) => norm(b, w, x, `${L(l)}.input_layernorm`),
    qkv: (b, w, x, l) => {
      const a = `${L(l)}.attention.query_key_value`;
      const [q, k, v] = project(b, w, x, { weights: [`${a}.weight`], biases: [`${a}.bias`], sizes: [D, D, D], perHead: c.numHeads });
      return { q, k, v };
    },
    attnOut: (b, w, z, l) => b.linear(z, w(`${L(l)}.attention.dense.weight`), w(`${L(l)}.attention.dense.bias`)),
    mlpNorm: (b, w, x, l) => norm(b, w, x, `${L(l)}.post_attention_layernorm`),
    mlp: (b, w, x, l) => {
      const m = `${L(l)}.mlp`;
      return plainMlp(b, x, w(`${m}.dense_h_to_4h.weight`), w(`${m}.dense_4h_to_h.weight`), c.hiddenAct, w(`${m}.dense_h_to_4h.bias`), w(`${m}.dense_4h_to_h.bias`));
    },
    finalNorm: (b, w, x) => norm(b, w, x, 'gpt_neox.final_layer_norm'),
    lmHead: (b, w, x) => b.linear(x, w(c.tieWordEmbeddings ? 'gpt_neox.embed_in.weight' : 'embed_out.weight')),
  };
}
