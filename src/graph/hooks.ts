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
}

export const NO_HOOKS: HookOptions = { capturePattern: [], captureZ: [], headHooks: false, scoreBias: [], act: [] };

export function hookKey(h: HookOptions): string {
  return JSON.stringify([h.capturePattern, h.captureZ, h.headHooks, h.scoreBias, h.act]);
}
