/**
 * Fused projections: several linear maps of one input (q, k and v; gate and up) computed as one
 * matmul whose output is split into the pieces, so a layer runs two projection nodes where it would
 * run five. A projection's weight is either one checkpoint tensor that already holds the pieces
 * (phi3 `qkv_proj` / `gate_up_proj`, gpt_neox `query_key_value`, gpt2 `c_attn`) or several tensors
 * that the compiler stacks row-wise into one stored tensor (`WeightStack`: q|k|v, gate|up, per
 * layer). Stacking rows is exact in every weight format: f32 and f16 element by element, q8/q4
 * because their blocks run along a row. Biases are stacked the same way.
 */
import type { GraphBuilder, Value } from '../builder.js';
import type { WeightStack } from '../weights.js';
import type { WeightRef } from './arch.js';

export interface Projection {
  /** Weight tensors ([out, in] each, Linear), their rows stacked in order when more than one; or one [in, out] Conv1D (`conv1d`). */
  weights: string[];
  /** Bias tensors, one per weight, stacked the same way. */
  biases?: string[];
  /** Widths of the pieces the output splits into, in order (per head with `perHead`). */
  sizes: number[];
  /** GPT-2's Conv1D: the one weight is stored [in, out]. */
  conv1d?: boolean;
  /** The output is laid out per head, [heads, Σ sizes] (gpt_neox): each piece is taken from every head. */
  perHead?: number;
}

/** The name the graph reads a stack of tensors under (a single tensor keeps its own name). */
export const stackName = (parts: string[]): string => (parts.length === 1 ? parts[0] : parts.join('+'));

/** The stacked tensors a projection reads (none when it reads single tensors). */
export function projectionStacks(p: Projection): WeightStack[] {
  const stacks: WeightStack[] = [];
  if (p.weights.length > 1) stacks.push({ name: stackName(p.weights), parts: p.weights });
  if (p.biases && p.biases.length > 1) stacks.push({ name: stackName(p.biases), parts: p.biases });
  return stacks;
}

/** The projection's one linear layer on x [q, in], before its output is split: [q, Σ sizes]. */
function projectWhole(b: GraphBuilder, w: WeightRef, x: Value, p: Projection): Value {
  const weight = w(stackName(p.weights));
  const bias = p.biases ? w(stackName(p.biases)) : undefined;
  return p.conv1d ? b.gemm(x, weight, bias) : b.linear(x, weight, bias);
}

/**
 * The projection's output unsplit, [q, Σ sizes] with the pieces side by side (q|k|v as
 * GroupQueryAttention reads a packed QKV); null where the output is laid out per head (`perHead`).
 */
export function projectPacked(b: GraphBuilder, w: WeightRef, x: Value, p: Projection): Value | null {
  return p.perHead ? null : projectWhole(b, w, x, p);
}

/** The projection of x [q, in]: one linear layer, then its pieces [q, size] (per head: [q, heads·size]). */
export function project(b: GraphBuilder, w: WeightRef, x: Value, p: Projection): Value[] {
  const y = projectWhole(b, w, x, p);
  if (p.perHead) {
    const heads = p.perHead;
    const total = p.sizes.reduce((s, n) => s + n, 0);
    return b.split(b.reshape(y, [0, heads, total]), p.sizes, 2).map((t, i) => b.reshape(t, [0, heads * p.sizes[i]]));
  }
  return p.sizes.length === 1 ? [y] : b.split(y, p.sizes, -1);
}
