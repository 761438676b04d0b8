/**
 * Phi (phi-1/1.5/2): one LayerNorm per block feeding attention and MLP in parallel
 * (h + attn(ln(h)) + mlp(ln(h))), biases on every projection (`dense` is the output projection; q|k|v
 * run as one stacked projection),
 * partial rotary (`partial_rotary_factor`), fc1 → gelu_new → fc2, `final_layernorm`, an LM head with a bias.
 */
import type { ModelConfig } from '../../hf/config.js';
import type { Arch } from './arch.js';
import { configAttention } from './llama.js';
import { layerNorm, plainMlp } from './ops.js';
import { project, projectionStacks, type Projection } from './projection.js';
import type { WeightSpec, WeightStack } from '../weights.js';

export function phiArch(c: ModelConfig): Arch {
  const H = c.hiddenSize;
  const I = c.intermediateSize;
  const qDim = c.numHeads * c.headDim;
  const kvDim = c.numKvHeads * c.headDim;
  const L = (l: number) => `model.layers.${l}`;
  const weights: WeightSpec[] = [{ name: 'model.embed_tokens.weight', shape: [c.vocabSize, H] }];
  const lin = (name: string, out: number, inp: number) => weights.push({ name: `${name}.weight`, shape: [out, inp] }, { name: `${name}.bias`, shape: [out] });
  // q|k|v as one projection (`projection.ts`): their weights and biases stacked.
  const qkvProj = (l: number): Projection => {
    const p = ['q_proj', 'k_proj', 'v_proj'].map((n) => `${L(l)}.self_attn.${n}`);
    return { weights: p.map((n) => `${n}.weight`), biases: p.map((n) => `${n}.bias`), sizes: [qDim, kvDim, kvDim] };
  };
  const stacks: WeightStack[] = [];
  for (let l = 0; l < c.numLayers; l++) {
    const p = L(l);
    stacks.push(...projectionStacks(qkvProj(l)));
    weights.push({ name: `${p}.input_layernorm.weight`, shape: [H] }, { name: `${p}.input_layernorm.bias`, shape: [H] });
    lin(`${p}.self_attn.q_proj`, qDim, H);
    lin(`${p}.self_attn.k_proj`, kvDim, H);
    lin(`${p}.self_attn.v_proj`, kvDim, H);
    lin(`${p}.self_attn.dense`, H, qDim);
    lin(`${p}.mlp.fc1`, I, H);
    lin(`${p}.mlp.fc2`, H, I);
  }
  weights.push({ name: 'model.final_layernorm.weight', shape: [H] }, { name: 'model.final_layernorm.bias', shape: [H] });
  const head = c.tieWordEmbeddings ? 'model.embed_tokens.weight' : 'lm_head.weight';
  if (!c.tieWordEmbeddings) weights.push({ name: 'lm_head.weight', shape: [c.vocabSize, H] });
  weights.push({ name: 'lm_head.bias', shape: [c.vocabSize] });
  const norm = (l: number): Arch['mlpNorm'] => (b, w, x) => layerNorm(b, x, w(`${L(l)}.input_layernorm.weight`), w(`${L(l)}.input_layernorm.bias`), c.normEps);
  const linear = (b: Parameters<Arch['lmHead']>[0], w: Parameters<Arch['lmHead']>[1], x: string, name: string) => b.linear(x, w(`${name}.weight`), w(`${name}.bias`));

  return {
    weights,
    stacks,
    block: { residual: 'parallel', residualScale: 1, embedScale: 1, logitScale: 1, logitSoftcap: null },
    attention: configAttention(c),
    embed: (b, w, ids) => b.gather(w('model.embed_tokens.weight'), ids),
    attnNorm: (b, w, x, l) => norm(l)!(b, w, x, l),
    qkv: (b, w, x, l) => {
      const [q, k, v] = project(b, w, x, qkvProj(l));
      return { q, k, v };
    },
    attnOut: (b, w, z, l) => linear(b, w, z, `${L(l)}.self_attn.dense`),
    mlpNorm: (b, w, x, l) => norm(l)!(b, w, x, l),
    mlp: (b, w, x, l) => plainMlp(b, x, w(`${L(l)}.mlp.fc1.weight`), w(`${L(l)}.mlp.fc2.weight`), c.hiddenAct, w(`${L(l)}.mlp.fc1.bias`), w(`${L(l)}.mlp.fc2.bias`)),
    finalNorm: (b, w, x) => layerNorm(b, x, w('model.final_layernorm.weight'), w('model.final_layernorm.bias'), c.normEps),
    lmHead: (b, w, x) => b.linear(x, w(head), w('lm_head.bias')),
  };
}
