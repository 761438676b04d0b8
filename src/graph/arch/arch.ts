/**
 * What an architecture file declares to the shared graph builder: the weights it reads, per layer an
 * attention spec (score scale, soft-cap, sliding window, RoPE), the block layout (where the norms sit,
 * parallel or sequential residual, multipliers, logit soft-cap / scaling), and the pieces of a block
 * that differ between families (embedding, norms, q/k/v projections, q/k norm, output projection,
 * MLP, LM head). `graph/attention.ts` turns a spec into attention with head-level hook points over
 * the KV cache groups; `graph/decoder.ts` wires blocks from the layout.
 *
 * Every linear layer is written `b.linear(x, w(name), bias)` (fused ones too), so how weights are
 * stored and multiplied is decided in one place (`builder.ts`) for every family. Projections of one
 * input (q|k|v, gate|up) are one linear layer split after the matmul (`projection.ts`); the tensors
 * the compiler stacks for them are declared in `stacks`.
 */
import type { ModelConfig } from '../../hf/config.js';
import type { GraphBuilder, Value } from '../builder.js';
import type { RopeFrequencies } from '../rope.js';
import type { WeightSpec, WeightStack } from '../weights.js';

/** Looks up a weight by Hugging Face tensor name, as an ONNX value. */
export type WeightRef = (name: string) => Value;

export interface AttentionSpec {
  /** Multiplier of q·k (1/√headDim; gemma2/3 `query_pre_attn_scalar`^-½; granite `attention_multiplier`). */
  scale: number;
  /** tanh soft-cap of the scores, cap·tanh(s/cap), before the mask (gemma2). */
  softcap: number | null;
  /** Sliding window: a query at t sees keys s with t − s < window (the runtime's masks and caches honour it). */
  window: number | null;
  /** Rotary embedding (null: positions are learned embeddings); `id` names tables layers share. */
  rope: (RopeFrequencies & { id: string }) | null;
}

export interface BlockLayout {
  /**
   * `sequential`: h += attn(attnNorm(h)); h += mlp(mlpNorm(h)). `parallel` (gpt_neox, phi, stablelm):
   * h += attn(attnNorm(h)) + mlp(mlpNorm(h)), both reading the block input (mlpNorm may be attnNorm).
   */
  residual: 'sequential' | 'parallel';
  /** Branch outputs × this before the residual add (granite `residual_multiplier`). */
  residualScale: number;
  /** Embeddings × this (gemma √hidden, granite `embedding_multiplier`). */
  embedScale: number;
  /** Logits × this (granite 1/`logits_scaling`). */
  logitScale: number;
  /** tanh soft-cap of the logits (gemma2 `final_logit_softcapping`). */
  logitSoftcap: number | null;
}

export interface BlockParts {
  /** Token embedding (plus learned positions where the family has them): [q, hidden], before `embedScale`. */
  embed(b: GraphBuilder, w: WeightRef, ids: Value, positions: Value): Value;
  /** Norm before attention; absent: attention reads the residual stream directly (olmo2). */
  attnNorm?(b: GraphBuilder, w: WeightRef, x: Value, layer: number): Value;
  /** q, k, v as [q, heads*headDim], [q, kvHeads*headDim] ×2. */
  qkv(b: GraphBuilder, w: WeightRef, x: Value, layer: number): { q: Value; k: Value; v: Value };
  /**
   * q|k|v side by side, [q, (heads + 2·kvHeads)·headDim] — `qkv` unsplit, as GroupQueryAttention reads
   * a packed QKV (the lean GPU graph: one Split node fewer per layer); absent or null: only `qkv`.
   */
  qkvPacked?(b: GraphBuilder, w: WeightRef, x: Value, layer: number): Value | null;
  /** Optional norm of q and k ([q, heads, headDim], [q, kvHeads, headDim]) before RoPE. */
  qkNorm?(b: GraphBuilder, w: WeightRef, q: Value, k: Value, layer: number): { q: Value; k: Value };
  attnOut(b: GraphBuilder, w: WeightRef, z: Value, layer: number): Value;
  /** Norm of the attention output before the residual add (gemma2/3, olmo2). */
  postAttnNorm?(b: GraphBuilder, w: WeightRef, x: Value, layer: number): Value;
  /**
   * The attention (`attn`) or MLP (`mlp`) pre-norm of layer l applied to x + skip, and that sum, in one
   * node (`ops.skipRmsNorm`), for families whose norm there is an RMSNorm; null or absent: the graph
   * adds, then normalizes. Used by the GPU graph (KV mode `present`), where every node costs host time.
   */
  skipNorm?(b: GraphBuilder, w: WeightRef, x: Value, skip: Value, which: 'attn' | 'mlp', layer: number): { normed: Value; sum: Value } | null;
  /** Norm before the MLP; absent: the MLP reads the residual stream directly (olmo2). */
  mlpNorm?(b: GraphBuilder, w: WeightRef, x: Value, layer: number): Value;
  mlp(b: GraphBuilder, w: WeightRef, x: Value, layer: number): Value;
  /** Norm of the MLP output before the residual add (gemma2/3, olmo2). */
  postMlpNorm?(b: GraphBuilder, w: WeightRef, x: Value, layer: number): Value;
  finalNorm(b: GraphBuilder, w: WeightRef, x: Value): Value;
  lmHead(b: GraphBuilder, w: WeightRef, x: Value): Value;
}

export interface Arch extends BlockParts {
  /**
   * Every block part and the final norm take activations with a leading batch axis ([1, q, hidden])
   * as well as [q, hidden], so the no-hook GPU graph may carry the residual stream as GQA's [1, q, ·]
   * and skip the per-layer Unsqueeze/Reshape (`decoder.ts`). Default false.
   */
  anyRank?: boolean;
  /** Every tensor the graph reads, with the shape the checkpoint must have. */
  weights: WeightSpec[];
  /** Tensors the graph reads as several of `weights` stacked row-wise (fused projections, `projection.ts`). */
  stacks?: WeightStack[];
  /** Prefixes a checkpoint may put before the names in `weights` (tried in order). */
  namePrefixes?: string[];
  block: BlockLayout;
  attention(layer: number): AttentionSpec;
}

export type ArchFactory = (config: ModelConfig) => Arch;

/** The block layout of a pre-norm sequential block with no multipliers (most families). */
export const PRE_NORM: BlockLayout = { residual: 'sequential', residualScale: 1, embedScale: 1, logitScale: 1, logitSoftcap: null };
