/**
 * What an architecture file provides to the shared decoder builder (`graph/decoder.ts`): the weights
 * it needs, and the pieces of a block that differ between families (embedding, norms, q/k/v
 * projections, output projection, MLP, LM head). Attention itself — RoPE, KV cache groups, masks and
 * head-level hook points — is the same for all and lives in the decoder.
 */
import type { ModelConfig } from '../../hf/config.js';
import type { GraphBuilder, Value } from '../builder.js';
import type { WeightSpec } from '../weights.js';

/** Looks up a weight by Hugging Face tensor name, as an ONNX value. */
export type WeightRef = (name: string) => Value;

export interface BlockParts {
  /** Token embedding (plus learned positions where the family has them): [q, hidden]. */
  embed(b: GraphBuilder, w: WeightRef, ids: Value, positions: Value): Value;
  attnNorm(b: GraphBuilder, w: WeightRef, x: Value, layer: number): Value;
  /** q, k, v as [q, heads*headDim], [q, kvHeads*headDim] ×2. */
  qkv(b: GraphBuilder, w: WeightRef, x: Value, layer: number): { q: Value; k: Value; v: Value };
  /** Optional per-head norm of q and k ([q, heads, headDim]) before RoPE. */
  qkNorm?(b: GraphBuilder, w: WeightRef, q: Value, k: Value, layer: number): { q: Value; k: Value };
  attnOut(b: GraphBuilder, w: WeightRef, z: Value, layer: number): Value;
  mlpNorm(b: GraphBuilder, w: WeightRef, x: Value, layer: number): Value;
  mlp(b: GraphBuilder, w: WeightRef, x: Value, layer: number): Value;
  finalNorm(b: GraphBuilder, w: WeightRef, x: Value): Value;
  lmHead(b: GraphBuilder, w: WeightRef, x: Value): Value;
}

export interface Arch extends BlockParts {
  /** Every tensor the graph reads, with the shape the checkpoint must have. */
  weights: WeightSpec[];
  usesRope: boolean;
  /** Prefixes a checkpoint may put before the names in `weights` (tried in order). */
  namePrefixes?: string[];
}

export type ArchFactory = (config: ModelConfig) => Arch;
