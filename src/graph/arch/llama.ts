/**
 * Llama: RMSNorm, separate q/k/v/o projections (biases only if `attention_bias`), RoPE, SwiGLU MLP,
 * optionally tied embeddings. The base the other RoPE families (mistral, qwen2, qwen3) build on:
 * their differences (q/k/v biases, q/k norms) are flags of ModelConfig read here.
 */
import type { ModelConfig } from '../../hf/config.js';
import type { Arch } from './arch.js';
import { rmsNorm, swiglu } from './ops.js';
import type { WeightSpec } from '../weights.js';

export function llamaArch(c: ModelConfig): Arch {
  const L = (l: number) => `model.layers.${l}`;
  const qDim = c.numHeads * c.headDim;
  const kvDim = c.numKvHeads * c.headDim;
  const lmHead = c.tieWordEmbeddings ? 'model.embed_tokens.weight' : 'lm_head.weight';

  const weights: WeightSpec[] = [{ name: 'model.embed_tokens.weight', shape: [c.vocabSize, c.hiddenSize] }];
  for (let l = 0; l < c.numLayers; l++) {
    const p = L(l);
    weights.push(
      { name: `${p}.input_layernorm.weight`, shape: [c.hiddenSize] },
      { name: `${p}.self_attn.q_proj.weight`, shape: [qDim, c.hiddenSize] },
      { name: `${p}.self_attn.k_proj.weight`, shape: [kvDim, c.hiddenSize] },
      { name: `${p}.self_attn.v_proj.weight`, shape: [kvDim, c.hiddenSize] },
      { name: `${p}.self_attn.o_proj.weight`, shape: [c.hiddenSize, qDim] },
      { name: `${p}.post_attention_layernorm.weight`, shape: [c.hiddenSize] },
      { name: `${p}.mlp.gate_proj.weight`, shape: [c.intermediateSize, c.hiddenSize] },
      { name: `${p}.mlp.up_proj.weight`, shape: [c.intermediateSize, c.hiddenSize] },
      { name: `${p}.mlp.down_proj.weight`, shape: [c.hiddenSize, c.intermediateSize] },
    );
    if (c.qkvBias) {
      weights.push(
        { name: `${p}.self_attn.q_proj.bias`, shape: [qDim] },
        { name: `${p}.self_attn.k_proj.bias`, shape: [kvDim] },
        { name: `${p}.self_attn.v_proj.bias`, shape: [kvDim] },
      );
    }
    if (c.oBias) weights.push({ name: `${p}.self_attn.o_proj.bias`, shape: [c.hiddenSize] });
    if (c.mlpBias) {
      weights.push(
        { name: `${p}.mlp.gate_proj.bias`, shape: [c.intermediateSize] },
        { name: `${p}.mlp.up_proj.bias`, shape: [c.intermediateSize] },
        { name: `${p}.mlp.down_proj.bias`, shape: [c.hiddenSize] },
      );
    }
    if (c.qkNorm) {
      weights.push(
        { name: `${p}.self_attn.q_norm.weight`, shape: [c.headDim] },
        { name: `${p}.self_attn.k_norm.weight`, shape: [c.headDim] },
      );
    }
  }
  weights.push({ name: 'model.norm.weight', shape: [c.hiddenSize] });
  if (!c.tieWordEmbeddings) weights.push({ name: 'lm_head.weight', shape: [c.vocabSize, c.hiddenSize] });

  const bias = (on: boolean, w: (n: string) => string, name: string) => (on ? w(name) : undefined);

  return {
    weights,
    usesRope: true,
    embed: (b, w, ids) => b.gather(w('model.embed_tokens.weight'), ids),
    attnNorm: (b, w, x, l) => rmsNorm(b, x, w(`${L(l)}.input_layernorm.weight`), c.normEps),
    qkv: (b, w, x, l) => {
      const a = `${L(l)}.self_attn`;
      return {
        q: b.linear(x, w(`${a}.q_proj.weight`), bias(c.qkvBias, w, `${a}.q_proj.bias`)),
        k: b.linear(x, w(`${a}.k_proj.weight`), bias(c.qkvBias, w, `${a}.k_proj.bias`)),
        v: b.linear(x, w(`${a}.v_proj.weight`), bias(c.qkvBias, w, `${a}.v_proj.bias`)),
      };
    },
    qkNorm: c.qkNorm
      ? (b, w, q, k, l) => ({
          q: rmsNorm(b, q, w(`${L(l)}.self_attn.q_norm.weight`), c.normEps),
          k: rmsNorm(b, k, w(`${L(l)}.self_attn.k_norm.weight`), c.normEps),
        })
      : undefined,
    attnOut: (b, w, z, l) => b.linear(z, w(`${L(l)}.self_attn.o_proj.weight`), bias(c.oBias, w, `${L(l)}.self_attn.o_proj.bias`)),
    mlpNorm: (b, w, x, l) => rmsNorm(b, x, w(`${L(l)}.post_attention_layernorm.weight`), c.normEps),
    mlp: (b, w, x, l) => {
      const m = `${L(l)}.mlp`;
      const biases = c.mlpBias ? ([w(`${m}.gate_proj.bias`), w(`${m}.up_proj.bias`), w(`${m}.down_proj.bias`)] as [string, string, string]) : undefined;
      return swiglu(b, x, w(`${m}.gate_proj.weight`), w(`${m}.up_proj.weight`), w(`${m}.down_proj.weight`), biases);
    },
    finalNorm: (b, w, x) => rmsNorm(b, x, w('model.norm.weight'), c.normEps),
    lmHead: (b, w, x) => b.linear(x, w(lmHead)),
  };
}
