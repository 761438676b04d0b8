/**
 * Llama: RMSNorm, q/k/v/o projections (biases only if `attention_bias`; q|k|v run as one stacked
 * projection, as do gate|up: `projection.ts`), RoPE, SwiGLU MLP, optionally tied embeddings. Also the
 * base of the families that keep Llama's tensor names and differ in declared features
 * (`LlamaVariant`): norm kind, where the norms sit, checkpoint-fused projections, the MLP (gated with
 * another activation, plain, mixture of experts), q/k norm. Each such family's file says only which
 * variant it is.
 */
import type { ModelConfig } from '../../hf/config.js';
import { type Arch, type AttentionSpec, type WeightRef } from './arch.js';
import { gatedMlp, gatedWeights, layerNorm, layerNormPartial, moeMlp, plainMlp, rmsNorm, rmsNormOffset, skipRmsNorm, type GatedMlpWeights } from './ops.js';
import { project, projectPacked, projectionStacks, type Projection } from './projection.js';
import type { GraphBuilder, Value } from '../builder.js';
import { ropeFrequencies } from '../rope.js';
import type { WeightSpec, WeightStack } from '../weights.js';

export interface LlamaVariant {
  /** `rms` (default), `rms1p` (gemma: x̂·(1 + w)), `layer` (LayerNorm with bias), `none` (olmo: no affine terms). */
  norm?: 'rms' | 'rms1p' | 'layer' | 'none';
  /** `pre` (default); `sandwich` (gemma2/3: also post-attention and post-MLP norms); `post` (olmo2: only those). */
  norms?: 'pre' | 'sandwich' | 'post';
  /** phi3: one `qkv_proj` and one `gate_up_proj`. */
  fused?: boolean;
  /** `gated` (default, gate/up/down with the config's activation), `plain` (starcoder2 c_fc / c_proj), `moe`. */
  mlp?: 'gated' | 'plain' | 'moe';
  /** q/k norm: per head (`head`, qwen3 / gemma3), over the whole projection (`flat`, olmo2), per-head LayerNorm with a weight per head (`stablelm`). */
  qkNorm?: 'head' | 'flat' | 'stablelm';
  /** stablelm `use_parallel_residual`: attention and MLP both read input_layernorm(h). */
  parallel?: boolean;
  /** Embeddings × √hidden (gemma). */
  embedScaleSqrtHidden?: boolean;
  /** MoE weight names: router, expert e's gate/up/down, shared expert. */
  moeNames?: { router: string; expert: (e: number) => [string, string, string]; shared?: { names: [string, string, string]; gate: string } };
}

/** The attention spec most families declare: the config's scale, soft-cap, window and RoPE (gemma3: local RoPE on window layers). */
export function configAttention(c: ModelConfig): (layer: number) => AttentionSpec {
  const global = c.rope ? { ...ropeFrequencies(c.rope, c.headDim, c.maxPositions), id: 'global' } : null;
  const local = c.localRope ? { ...ropeFrequencies(c.localRope, c.headDim, c.maxPositions), id: 'local' } : null;
  return (l) => {
    const window = c.layerWindows[l];
    return { scale: c.attnScale, softcap: c.attnSoftcap, window, rope: window !== null && local ? local : global };
  };
}

export function llamaArch(c: ModelConfig, v: LlamaVariant = {}): Arch {
  const L = (l: number) => `model.layers.${l}`;
  const H = c.hiddenSize;
  const qDim = c.numHeads * c.headDim;
  const kvDim = c.numKvHeads * c.headDim;
  const I = c.intermediateSize;
  const normKind = v.norm ?? 'rms';
  const norms = v.norms ?? 'pre';
  const lmHead = c.tieWordEmbeddings ? 'model.embed_tokens.weight' : 'lm_head.weight';
  const weights: WeightSpec[] = [{ name: 'model.embed_tokens.weight', shape: [c.vocabSize, H] }];
  const normWeights = (name: string, dim = H) => {
    if (normKind === 'none') return;
    weights.push({ name: `${name}.weight`, shape: [dim] });
    if (normKind === 'layer') weights.push({ name: `${name}.bias`, shape: [dim] });
  };
  const norm = (b: GraphBuilder, w: WeightRef, x: Value, name: string, dim = H): Value => {
    switch (normKind) {
      case 'rms': return rmsNorm(b, x, w(`${name}.weight`), c.normEps);
      case 'rms1p': return rmsNormOffset(b, x, w(`${name}.weight`), c.normEps);
      case 'layer': return layerNorm(b, x, w(`${name}.weight`), w(`${name}.bias`), c.normEps);
      case 'none': return layerNormPartial(b, x, dim, c.normEps);
    }
  };
  // Which norm sits where: Llama's names for pre-norm blocks; gemma2/3 and olmo2 name the post-norms.
  const preAttn = norms === 'post' ? null : 'input_layernorm';
  const postAttn = norms === 'pre' ? null : 'post_attention_layernorm';
  const preMlp = v.parallel ? preAttn : norms === 'pre' ? 'post_attention_layernorm' : norms === 'sandwich' ? 'pre_feedforward_layernorm' : null;
  const postMlp = norms === 'pre' ? null : 'post_feedforward_layernorm';
  const mlpKind = v.mlp ?? 'gated';
  const moe = mlpKind === 'moe' ? c.moe! : null;
  // The projections of one input, each one matmul (`projection.ts`); their stacked tensors are declared below.
  const qkvProj = (l: number): Projection => {
    const a = `${L(l)}.self_attn`;
    if (v.fused) return { weights: [`${a}.qkv_proj.weight`], sizes: [qDim, kvDim, kvDim] };
    const p = ['q_proj', 'k_proj', 'v_proj'].map((n) => `${a}.${n}`);
    return { weights: p.map((n) => `${n}.weight`), biases: c.qkvBias ? p.map((n) => `${n}.bias`) : undefined, sizes: [qDim, kvDim, kvDim] };
  };
  const denseMlp = (l: number): GatedMlpWeights => {
    const m = `${L(l)}.mlp`;
    if (v.fused) return { gateUp: { weights: [`${m}.gate_up_proj.weight`], sizes: [I, I] }, down: `${m}.down_proj.weight` };
    const biases = c.mlpBias ? ([`${m}.gate_proj.bias`, `${m}.up_proj.bias`, `${m}.down_proj.bias`] as [string, string, string]) : undefined;
    return gatedWeights(`${m}.gate_proj.weight`, `${m}.up_proj.weight`, `${m}.down_proj.weight`, I, biases);
  };
  const moeMlps = (l: number): { experts: GatedMlpWeights[]; shared?: { mlp: GatedMlpWeights; gate: string } } => {
    const n = v.moeNames!;
    const sub = (s: string) => s.replace('{l}', String(l));
    const experts = Array.from({ length: moe!.experts }, (_, e) => {
      const [g, u, d] = n.expert(e).map(sub);
      return gatedWeights(g, u, d, moe!.intermediateSize);
    });
    if (!n.shared || moe!.sharedIntermediateSize <= 0) return { experts };
    const [g, u, d] = n.shared.names.map(sub);
    return { experts, shared: { mlp: gatedWeights(g, u, d, moe!.sharedIntermediateSize), gate: sub(n.shared.gate) } };
  };
  const stacks: WeightStack[] = [];

  for (let l = 0; l < c.numLayers; l++) {
    const p = L(l);
    const a = `${p}.self_attn`;
    for (const n of new Set([preAttn, postAttn, preMlp, postMlp])) if (n) normWeights(`${p}.${n}`);
    stacks.push(...projectionStacks(qkvProj(l)));
    if (v.fused) weights.push({ name: `${a}.qkv_proj.weight`, shape: [qDim + 2 * kvDim, H] });
    else {
      weights.push({ name: `${a}.q_proj.weight`, shape: [qDim, H] }, { name: `${a}.k_proj.weight`, shape: [kvDim, H] }, { name: `${a}.v_proj.weight`, shape: [kvDim, H] });
      if (c.qkvBias) weights.push({ name: `${a}.q_proj.bias`, shape: [qDim] }, { name: `${a}.k_proj.bias`, shape: [kvDim] }, { name: `${a}.v_proj.bias`, shape: [kvDim] });
    }
    weights.push({ name: `${a}.o_proj.weight`, shape: [H, qDim] });
    if (c.oBias) weights.push({ name: `${a}.o_proj.bias`, shape: [H] });
    if (v.qkNorm === 'head') weights.push({ name: `${a}.q_norm.weight`, shape: [c.headDim] }, { name: `${a}.k_norm.weight`, shape: [c.headDim] });
    if (v.qkNorm === 'flat') weights.push({ name: `${a}.q_norm.weight`, shape: [qDim] }, { name: `${a}.k_norm.weight`, shape: [kvDim] });
    if (v.qkNorm === 'stablelm') {
      for (let h = 0; h < c.numHeads; h++) weights.push({ name: `${a}.q_layernorm.norms.${h}.weight`, shape: [c.headDim] });
      for (let h = 0; h < c.numKvHeads; h++) weights.push({ name: `${a}.k_layernorm.norms.${h}.weight`, shape: [c.headDim] });
    }
    const m = `${p}.mlp`;
    if (moe && moe.sparseLayers[l]) {
      const { experts, shared } = moeMlps(l);
      for (const e of [...experts, ...(shared ? [shared.mlp] : [])]) stacks.push(...projectionStacks(e.gateUp));
      const names = v.moeNames!;
      weights.push({ name: names.router.replace('{l}', String(l)), shape: [moe.experts, H] });
      for (let e = 0; e < moe.experts; e++) {
        const [g, u, d] = names.expert(e).map((n) => n.replace('{l}', String(l)));
        weights.push({ name: g, shape: [moe.intermediateSize, H] }, { name: u, shape: [moe.intermediateSize, H] }, { name: d, shape: [H, moe.intermediateSize] });
      }
      if (names.shared && moe.sharedIntermediateSize > 0) {
        const S = moe.sharedIntermediateSize;
        const [g, u, d] = names.shared.names.map((n) => n.replace('{l}', String(l)));
        weights.push({ name: g, shape: [S, H] }, { name: u, shape: [S, H] }, { name: d, shape: [H, S] }, { name: names.shared.gate.replace('{l}', String(l)), shape: [1, H] });
      }
    } else if (mlpKind === 'plain') {
      weights.push({ name: `${m}.c_fc.weight`, shape: [I, H] }, { name: `${m}.c_proj.weight`, shape: [H, I] });
      if (c.mlpBias) weights.push({ name: `${m}.c_fc.bias`, shape: [I] }, { name: `${m}.c_proj.bias`, shape: [H] });
    } else if (v.fused) {
      weights.push({ name: `${m}.gate_up_proj.weight`, shape: [2 * I, H] }, { name: `${m}.down_proj.weight`, shape: [H, I] });
    } else {
      stacks.push(...projectionStacks(denseMlp(l).gateUp));
      weights.push({ name: `${m}.gate_proj.weight`, shape: [I, H] }, { name: `${m}.up_proj.weight`, shape: [I, H] }, { name: `${m}.down_proj.weight`, shape: [H, I] });
      if (c.mlpBias) weights.push({ name: `${m}.gate_proj.bias`, shape: [I] }, { name: `${m}.up_proj.bias`, shape: [I] }, { name: `${m}.down_proj.bias`, shape: [H] });
    }
  }
  normWeights('model.norm');
  if (!c.tieWordEmbeddings) weights.push({ name: 'lm_head.weight', shape: [c.vocabSize, H] });

  const bias = (on: boolean, w: WeightRef, name: string) => (on ? w(name) : undefined);
  const at = (name: string | null) => (name ? (b: GraphBuilder, w: WeightRef, x: Value, l: number) => norm(b, w, x, `${L(l)}.${name}`) : undefined);
  const clip = (b: GraphBuilder, x: Value) => (c.clipQkv === null ? x : b.op('Clip', [x, b.scalar(-c.clipQkv), b.scalar(c.clipQkv)]));
  const stack = (b: GraphBuilder, w: WeightRef, name: (h: number) => string, heads: number) =>
    b.concat(Array.from({ length: heads }, (_, h) => b.reshape(w(name(h)), [1, c.headDim])), 0);

  return {
    weights,
    stacks,
    // Multipliers and the logit soft-cap are config fields (1 / null except for granite and gemma2/3).
    block: {
      residual: v.parallel ? 'parallel' : 'sequential',
      embedScale: v.embedScaleSqrtHidden ? Math.fround(Math.sqrt(H)) : c.embeddingMultiplier,
      residualScale: c.residualMultiplier,
      logitScale: c.logitsScaling === 1 ? 1 : 1 / c.logitsScaling,
      logitSoftcap: c.finalSoftcap,
    },
    attention: configAttention(c),
    // Projections split on the last axis and norms reduce over it; the mixture of experts routes rows of [q, hidden].
    anyRank: mlpKind !== 'moe',
    embed: (b, w, ids) => b.gather(w('model.embed_tokens.weight'), ids),
    attnNorm: at(preAttn),
    qkv: (b, w, x, l) => {
      const [q, k, vv] = project(b, w, x, qkvProj(l)).map((t) => clip(b, t));
      return { q, k, v: vv };
    },
    // Clip is elementwise: the packed output clipped is the pieces clipped.
    qkvPacked: (b, w, x, l) => {
      const packed = projectPacked(b, w, x, qkvProj(l));
      return packed === null ? null : clip(b, packed);
    },
    qkNorm: v.qkNorm
      ? (b, w, q, k, l) => {
          const a = `${L(l)}.self_attn`;
          if (v.qkNorm === 'flat') {
            // [q, heads, D] (or the lean GPU path's [1, q, heads, D]) -> [q, heads·D] -> normed [q, heads, D].
            const flat = (x: Value, name: string, heads: number) => b.reshape(rmsNorm(b, b.reshape(x, [-1, heads * c.headDim]), w(name), c.normEps), [-1, heads, c.headDim]);
            return { q: flat(q, `${a}.q_norm.weight`, c.numHeads), k: flat(k, `${a}.k_norm.weight`, c.numKvHeads) };
          }
          if (v.qkNorm === 'stablelm') {
            const perHead = (x: Value, name: string, heads: number) =>
              b.mul(layerNormPartial(b, x, c.headDim, c.normEps), stack(b, w, (h) => `${a}.${name}.norms.${h}.weight`, heads));
            return { q: perHead(q, 'q_layernorm', c.numHeads), k: perHead(k, 'k_layernorm', c.numKvHeads) };
          }
          const n = normKind === 'rms1p' ? rmsNormOffset : rmsNorm;
          return { q: n(b, q, w(`${a}.q_norm.weight`), c.normEps), k: n(b, k, w(`${a}.k_norm.weight`), c.normEps) };
        }
      : undefined,
    attnOut: (b, w, z, l) => b.linear(z, w(`${L(l)}.self_attn.o_proj.weight`), bias(c.oBias, w, `${L(l)}.self_attn.o_proj.bias`)),
    postAttnNorm: at(postAttn),
    mlpNorm: at(preMlp),
    // RMSNorm families (gemma's 1 + w too: ONNX Runtime folds the constant Add into the weight).
    skipNorm: normKind === 'rms' || normKind === 'rms1p'
      ? (b, w, x, skip, which, l) => {
          const name = which === 'attn' ? preAttn : preMlp;
          if (!name) return null;
          const weight = w(`${L(l)}.${name}.weight`);
          return skipRmsNorm(b, x, skip, normKind === 'rms1p' ? b.add(weight, b.scalar(1)) : weight, c.normEps);
        }
      : undefined,
    mlp: (b, w, x, l) => {
      const m = `${L(l)}.mlp`;
      if (moe && moe.sparseLayers[l]) {
        const { experts, shared } = moeMlps(l);
        return moeMlp(b, w, x, moe, v.moeNames!.router.replace('{l}', String(l)), experts, c.hiddenAct, shared);
      }
      if (mlpKind === 'plain') return plainMlp(b, x, w(`${m}.c_fc.weight`), w(`${m}.c_proj.weight`), c.hiddenAct, bias(c.mlpBias, w, `${m}.c_fc.bias`), bias(c.mlpBias, w, `${m}.c_proj.bias`));
      return gatedMlp(b, w, x, denseMlp(l), c.hiddenAct);
    },
    postMlpNorm: at(postMlp),
    finalNorm: (b, w, x) => norm(b, w, x, 'model.norm'),
    lmHead: (b, w, x) => b.linear(x, w(lmHead)),
  };
}

