/**
 * Building blocks shared by architecture files: norms (RMSNorm, Gemma's RMSNorm with 1 + w,
 * LayerNorm with or without affine terms), activations, gated (gate|up fused) and plain MLPs, and the
 * mixture of experts. ONNX Runtime's fused normalization kernels where it has them (CPU and WebGPU), the rest
 * written in the order of operations Hugging Face uses, so fp32 results match to ~1e-5.
 */
import type { Activation, MoeConfig } from '../../hf/config.js';
import type { GraphBuilder, Value } from '../builder.js';
import type { WeightRef } from './arch.js';
import { project, type Projection } from './projection.js';

/**
 * rmsNorm(x + skip) and the sum x + skip in one node: ONNX Runtime's SkipSimplifiedLayerNormalization
 * (com.microsoft; CPU and WebGPU both write output 0, the normed sum, and output 3, the sum itself).
 */
export function skipRmsNorm(b: GraphBuilder, x: Value, skip: Value, weight: Value, eps: number): { normed: Value; sum: Value } {
  const normed = b.freshName('SkipSimplifiedLayerNormalization');
  const sum = `${normed}:sum`;
  b.node('SkipSimplifiedLayerNormalization', [x, skip, weight], { epsilon: { float: eps } }, { domain: 'com.microsoft', outputs: [normed, '', '', sum] });
  return { normed, sum };
}

/** x / sqrt(mean(x²) + eps) · w over the last axis: ONNX Runtime's SimplifiedLayerNormalization (fp32), one node. */
export function rmsNorm(b: GraphBuilder, x: Value, weight: Value, eps: number): Value {
  return b.op('SimplifiedLayerNormalization', [x, weight], { axis: { int: -1 }, epsilon: { float: eps }, stash_type: { int: 1 } });
}

/** Gemma's RMSNorm: the weight is stored as an offset from 1 (x̂ · (1 + w)). */
export function rmsNormOffset(b: GraphBuilder, x: Value, weight: Value, eps: number): Value {
  return rmsNorm(b, x, b.add(weight, b.scalar(1)), eps);
}

export function layerNorm(b: GraphBuilder, x: Value, weight: Value, bias: Value, eps: number): Value {
  return b.op('LayerNormalization', [x, weight, bias], { axis: { int: -1 }, epsilon: { float: eps } });
}

/** LayerNorm over the last axis of width `dim` with a weight and no bias (stablelm q/k), or neither (olmo). */
export function layerNormPartial(b: GraphBuilder, x: Value, dim: number, eps: number, weight?: Value): Value {
  const ones = b.constF32(new Float32Array(dim).fill(1), [dim]);
  const zeros = b.constF32(new Float32Array(dim), [dim]);
  return b.op('LayerNormalization', [x, weight ?? ones, zeros], { axis: { int: -1 }, epsilon: { float: eps } });
}

/** GELU with the tanh approximation (gelu_new / gelu_pytorch_tanh). */
export function geluTanh(b: GraphBuilder, x: Value): Value {
  const inner = b.mul(b.scalar(Math.sqrt(2 / Math.PI)), b.add(x, b.mul(b.scalar(0.044715), b.mul(x, b.mul(x, x)))));
  return b.mul(b.mul(b.scalar(0.5), x), b.add(b.scalar(1), b.op('Tanh', [inner])));
}

/** Exact GELU: 0.5·x·(1 + erf(x/√2)). */
export function geluErf(b: GraphBuilder, x: Value): Value {
  return b.mul(b.mul(b.scalar(0.5), x), b.add(b.scalar(1), b.op('Erf', [b.mul(x, b.scalar(Math.SQRT1_2))])));
}

export function silu(b: GraphBuilder, x: Value): Value {
  return b.mul(x, b.op('Sigmoid', [x]));
}

export function activation(b: GraphBuilder, x: Value, act: Activation): Value {
  if (act === 'silu') return silu(b, x);
  return act === 'gelu' ? geluErf(b, x) : geluTanh(b, x);
}

/** A gated MLP's weights: gate|up as one projection (`projection.ts`), then down. */
export interface GatedMlpWeights {
  gateUp: Projection;
  down: string;
  downBias?: string;
}

/** The weights of a gated MLP with separate gate, up and down tensors (gate|up stacked), biases optional. */
export function gatedWeights(gate: string, up: string, down: string, size: number, biases?: [string, string, string]): GatedMlpWeights {
  return { gateUp: { weights: [gate, up], biases: biases && [biases[0], biases[1]], sizes: [size, size] }, down, downBias: biases?.[2] };
}

/** down(act(gate(x)) · up(x)): SwiGLU (silu), GeGLU (gemma); gate and up from one matmul. */
export function gatedMlp(b: GraphBuilder, w: WeightRef, x: Value, m: GatedMlpWeights, act: Activation = 'silu'): Value {
  const [gate, up] = project(b, w, x, m.gateUp);
  return b.linear(b.mul(activation(b, gate, act), up), w(m.down), m.downBias === undefined ? undefined : w(m.downBias));
}

/** fc2(act(fc1(x))) with biases (gpt2, phi, gpt_neox, starcoder2). */
export function plainMlp(b: GraphBuilder, x: Value, fc1: Value, fc2: Value, act: Activation, bias1?: Value, bias2?: Value): Value {
  return b.linear(activation(b, b.linear(x, fc1, bias1), act), fc2, bias2);
}

/**
 * Mixture of experts as Hugging Face routes it: softmax over the router logits, the top-k experts per
 * token, their weights renormalized where the family does (mixtral, qwen3_moe), the chosen experts'
 * outputs summed with those weights; qwen2_moe adds a shared expert gated by sigmoid.
 * Dense form: every expert runs on every token and the unchosen get weight 0 (E/k times the MLP
 * compute of a sparse dispatch; exact, and simple on both CPU and WebGPU).
 */
export function moeMlp(b: GraphBuilder, w: WeightRef, x: Value, moe: MoeConfig, router: string, experts: GatedMlpWeights[], act: Activation, shared?: { mlp: GatedMlpWeights; gate: string }): Value {
  const probs = b.softmax(b.linear(x, w(router)), -1);
  const [top, idx] = b.node('TopK', [probs, b.constI64([moe.topK])], { axis: { int: -1 }, largest: { int: 1 }, sorted: { int: 1 } }, { outputs: 2 });
  const weights = moe.normTopK ? b.div(top, b.reduceSum(top, [-1])) : top;
  // [q, experts]: the routing weight of each expert, 0 where not chosen.
  const dense = b.op('ScatterElements', [b.mul(probs, b.scalar(0)), idx, weights], { axis: { int: 1 } });
  let out: Value | null = null;
  experts.forEach((expert, e) => {
    const y = b.mul(gatedMlp(b, w, x, expert, act), b.slice(dense, [e], [e + 1], [1]));
    out = out === null ? y : b.add(out, y);
  });
  if (shared) {
    const s = b.mul(b.op('Sigmoid', [b.linear(x, w(shared.gate))]), gatedMlp(b, w, x, shared.mlp, act));
    out = b.add(out!, s);
  }
  return out!;
}
