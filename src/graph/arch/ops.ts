/**
 * Building blocks shared by architecture files: RMSNorm, LayerNorm, SwiGLU and GELU MLPs — ONNX
 * Runtime's fused normalization kernels where it has them (CPU and WebGPU), the rest written in the
 * order of operations Hugging Face uses, so fp32 results match to ~1e-5.
 */
import type { GraphBuilder, Value } from '../builder.js';

/** x / sqrt(mean(x²) + eps) · w over the last axis: ONNX Runtime's SimplifiedLayerNormalization (fp32), one node. */
export function rmsNorm(b: GraphBuilder, x: Value, weight: Value, eps: number): Value {
  return b.op('SimplifiedLayerNormalization', [x, weight], { axis: { int: -1 }, epsilon: { float: eps }, stash_type: { int: 1 } });
}

export function layerNorm(b: GraphBuilder, x: Value, weight: Value, bias: Value, eps: number): Value {
  return b.op('LayerNormalization', [x, weight, bias], { axis: { int: -1 }, epsilon: { float: eps } });
}

/** down(silu(gate(x)) · up(x)). */
export function swiglu(b: GraphBuilder, x: Value, gate: Value, up: Value, down: Value, biases?: [Value, Value, Value]): Value {
  const g = b.linear(x, gate, biases?.[0]);
  const silu = b.mul(g, b.op('Sigmoid', [g]));
  return b.linear(b.mul(silu, b.linear(x, up, biases?.[1])), down, biases?.[2]);
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
