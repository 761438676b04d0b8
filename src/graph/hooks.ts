/**
 * The hook vocabulary: stable, guessable names for every input and output of a compiled graph,
 * shared by the graph builder, the runtime, interventions, the CLI and the web app. Names follow
 * TransformerLens (`blocks.{l}.attn.hook_pattern`, `hook_z`); a suffix `.{g}` names a KV-head group
 * when a layer's cache is split into groups (see `layout.ts`).
 *
 * Hook points are compiled in only when asked (`GraphOptions`), so a plain graph pays nothing.
 */

export const INPUT_IDS = 'input_ids';
export const POSITION_IDS = 'position_ids';
/** Rows (token indices within this call) whose logits are computed. */
export const LOGITS_AT = 'logits_at';
export const LOGITS = 'logits';

export const hookNames = {
  /** Additive attention mask [queries, keys] of a cache class (0 or -1e30). */
  mask: (cls: string) => `mask.${cls}`,
  /** Input (KV mode `present`, or a group with `pastInput: 'group'`): cached keys/values of a group, head-major [groupKvHeads, past, headDim]. */
  pastKey: (l: number, g: number) => `past_key.${l}.${g}`,
  pastValue: (l: number, g: number) => `past_value.${l}.${g}`,
  /** Input (KV mode `append`): cached keys/values of KV head j of a group, [past, headDim]. */
  pastKeyHead: (l: number, g: number, j: number) => `past_key.${l}.${g}.${j}`,
  pastValueHead: (l: number, g: number, j: number) => `past_value.${l}.${g}.${j}`,
  /** Output (KV mode `append`): keys/values of this call's tokens, head-major [groupKvHeads, q, headDim]. */
  newKey: (l: number, g: number) => `new_key.${l}.${g}`,
  newValue: (l: number, g: number) => `new_value.${l}.${g}`,
  /** Output (KV mode `present`): past and new keys/values joined, head-major [groupKvHeads, past + q, headDim]. */
  presentKey: (l: number, g: number) => `present_key.${l}.${g}`,
  presentValue: (l: number, g: number) => `present_value.${l}.${g}`,
  /** Inputs (fused attention, `fusedAttention.ts`): keys of a cache class this call sees minus one, int32 [1], and the count itself, int32 scalar. */
  attnSeqlensK: (cls: string) => `attn_seqlens_k.${cls}`,
  attnTotalLength: (cls: string) => `attn_total_length.${cls}`,
  /** Output: post-softmax attention [groupHeads, rows, keys] of the rows picked by `captureRows`. */
  pattern: (l: number, g: number) => `blocks.${l}.attn.hook_pattern.${g}`,
  /** Input: query rows (indices within this call) whose attention is captured. */
  captureRows: (l: number) => `blocks.${l}.attn.capture_rows`,
  /** Output: per-head attention output before o_proj, [queries, heads, headDim]. */
  z: (l: number) => `blocks.${l}.attn.hook_z`,
  /** Input: per-head output scale [heads] (0 ablates). */
  headScale: (l: number) => `blocks.${l}.attn.head_scale`,
  /** Input: per-head vector added to the head output after scaling, [heads, headDim]. */
  headAdd: (l: number) => `blocks.${l}.attn.head_add`,
  /** Input: additive pre-softmax score bias [groupHeads, queries, keys]. */
  scoreBias: (l: number, g: number) => `blocks.${l}.attn.score_bias.${g}`,
  /** Inputs: ACT calibration, mask over keys [groupHeads, 1, keys] and β [groupHeads, 1, 1]. */
  actMask: (l: number, g: number) => `blocks.${l}.attn.act_mask.${g}`,
  actBeta: (l: number, g: number) => `blocks.${l}.attn.act_beta.${g}`,
} as const;

/**
 * Read-only hook points, named as in TransformerLens; each is a graph output when listed in
 * `HookOptions.capture` (shapes drop the batch axis; q = this call's tokens, keys = cached + new keys
 * of the head's cache class, d = hidden size, H = query heads, Hkv = KV heads, D = headDim):
 *
 * | name | shape | what |
 * | --- | --- | --- |
 * | `blocks.{l}.hook_resid_pre` | [q, d] | residual stream entering block l (embeddings, scaled, for l = 0) |
 * | `blocks.{l}.attn.hook_q` | [q, H, D] | queries after q-norm and RoPE, before the score scale |
 * | `blocks.{l}.attn.hook_k` | [q, Hkv, D] | this call's keys after k-norm and RoPE (one per KV head) |
 * | `blocks.{l}.attn.hook_v` | [q, Hkv, D] | this call's values |
 * | `blocks.{l}.attn.hook_attn_scores.{g}` | [groupHeads, q, keys] | scaled (and soft-capped) scores before the mask and softmax; the runtime drops pad/slack columns and joins groups |
 * | `blocks.{l}.attn.hook_pattern.{g}` | [groupHeads, rows, keys] | post-softmax attention of the `captureRows` rows (`capturePattern`) |
 * | `blocks.{l}.attn.hook_z` | [q, H, D] | each head's output before o_proj, after head hooks (`captureZ`) |
 * | `blocks.{l}.attn.hook_result` | [q, H, d] | each head's write to the residual: z_h times its slice of o_proj, no bias |
 * | `blocks.{l}.hook_attn_out` | [q, d] | attention output (o_proj, bias included), before any post-attention norm |
 * | `blocks.{l}.hook_resid_mid` | [q, d] | residual after the attention branch (sequential blocks only) |
 * | `blocks.{l}.hook_mlp_out` | [q, d] | MLP output, before any post-MLP norm |
 * | `blocks.{l}.hook_resid_post` | [q, d] | residual stream leaving block l |
 * | `ln_final.hook_normalized` | [q, d] | final norm of the last residual stream, every row |
 * | `blocks.{l}.hook_logit_lens` | [n, vocab] | logit lens (`logitLens`): block l's output through the final norm and LM head, at the `logits_at` rows |
 */
export const CAPTURE_POINTS = [
  'hook_resid_pre', 'attn.hook_q', 'attn.hook_k', 'attn.hook_v', 'attn.hook_attn_scores', 'attn.hook_pattern', 'attn.hook_z',
  'attn.hook_result', 'hook_attn_out', 'hook_resid_mid', 'hook_mlp_out', 'hook_resid_post',
] as const;
export type BlockHookPoint = (typeof CAPTURE_POINTS)[number];
/** A full hook name: `blocks.{l}.{point}` or `ln_final.hook_normalized`. */
export type HookName = `blocks.${number}.${BlockHookPoint}` | 'ln_final.hook_normalized';
export const LN_FINAL = 'ln_final.hook_normalized';
export const blockHook = (l: number, point: BlockHookPoint): HookName => `blocks.${l}.${point}`;
export const logitLensName = (l: number) => `blocks.${l}.hook_logit_lens`;
/** The graph output of a group's scores. */
export const scoresOutput = (l: number, g: number) => `blocks.${l}.attn.hook_attn_scores.${g}`;

/** Which hook points a graph has. Layers are listed explicitly; an empty list means none. */
export interface HookOptions {
  /** Layers whose attention patterns can be captured. */
  capturePattern: number[];
  /** Layers whose per-head outputs (hook_z) are returned. */
  captureZ: number[];
  /** Per-head output scale/add inputs on every layer. */
  headHooks: boolean;
  /** Layers with a pre-softmax score bias input. */
  scoreBias: number[];
  /** Layers with ACT calibration inputs. */
  act: number[];
  /** Read-only hook points returned as outputs (`HookName`s other than hook_pattern / hook_z, which have their own options). */
  capture?: readonly string[];
  /** Logit lens outputs on every layer. */
  logitLens?: boolean;
  /**
   * Build only blocks [from, to) (a segment of a graph cut at residual-stream hook points, for
   * `runWithHooks`), the final norm and LM head counting as block numLayers: `residIn` reads the
   * residual stream from the input `RESID_IN` instead of embedding the tokens (every segment but the
   * first); to ≤ numLayers outputs it as `RESID_OUT` instead of the logits. A cut inside a block:
   * `fromPoint` starts inside block `from` after that point, reading its value from `POINT_IN` and the
   * residual the rest of the block adds to from `RESID_IN`; `toPoint` ends inside block `to` at that
   * point, outputting its value as `POINT_OUT` and that residual as `RESID_OUT` (`SEGMENT_POINTS`).
   */
  segment?: { from: number; to: number; residIn: boolean; fromPoint?: SegmentPoint; toPoint?: SegmentPoint };
}

/**
 * Cut points inside a block, in block order. The residual crossing with the value is the block's
 * input for `attn.hook_z` and `hook_attn_out`, and for `hook_mlp_out` the residual the MLP output is
 * added to (resid_mid; in a parallel block, resid_pre plus the attention output).
 */
export const SEGMENT_POINTS = ['attn.hook_z', 'hook_attn_out', 'hook_mlp_out'] as const;
export type SegmentPoint = (typeof SEGMENT_POINTS)[number];

/** Segment graphs: the residual stream [q, d] entering the first block built, and leaving the last. */
export const RESID_IN = 'segment.resid_in';
export const RESID_OUT = 'segment.resid_out';
/** Segment graphs cut inside a block: the value at `fromPoint` read, and at `toPoint` returned. */
export const POINT_IN = 'segment.point_in';
export const POINT_OUT = 'segment.point_out';

export const NO_HOOKS: HookOptions = { capturePattern: [], captureZ: [], headHooks: false, scoreBias: [], act: [] };

export function hookKey(h: HookOptions): string {
  const base: unknown[] = [h.capturePattern, h.captureZ, h.headHooks, h.scoreBias, h.act];
  // Graphs without the read-only points keep the keys (and cached files) they had before these existed.
  if (h.capture?.length || h.logitLens) base.push([...(h.capture ?? [])].sort(), h.logitLens ?? false);
  if (h.segment) {
    const { from, to, residIn, fromPoint, toPoint } = h.segment;
    base.push(fromPoint || toPoint ? ['segment', from, to, residIn, fromPoint ?? null, toPoint ?? null] : ['segment', from, to, residIn]);
  }
  return JSON.stringify(base);
}

/** Whether `h` captures `name`. */
export function captures(h: HookOptions, name: string): boolean {
  return h.capture?.includes(name) ?? false;
}
