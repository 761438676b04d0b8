/**
 * Fused attention for the GPU graph (KV mode `present`): one ONNX Runtime `GroupQueryAttention`
 * (com.microsoft; flash attention on the WebGPU EP) per layer instead of the explicit
 * scores → mask → softmax → weighted-sum ops of `attention.ts`, for layers whose attention
 * probabilities nothing rescales or reads whole (no ACT hook, hook_attn_scores or hook_pattern), whose KV heads form one
 * group, and whose `AttentionSpec` GQA can compute (`gqaExpresses`); a score-bias hook is added to
 * the mask. A pattern capture of some rows (`capturePattern`, the atlas's every 16th row) is computed
 * beside GQA for those rows only, from its queries and present keys (`fusedPatternRows`), so the rest
 * of the prompt still attends fused. The explicit graph stays the path for every other layer, so hooks
 * work wherever they are asked for.
 *
 * What of a spec GQA expresses: the score scale (its `scale` attribute); RoPE (partial too) and q/k
 * norm happen before attention, on the graph's q and k; a sliding window is the runtime's mask (and
 * cache), passed as the bias. Not the score soft-cap: ONNX Runtime 1.30's WebGPU kernel reads the
 * `softcap` attribute but no shader applies it (measured on lavapipe: output identical with and
 * without it, prefill and decode, while the CPU kernel caps), so soft-capped layers (gemma2) attend
 * explicitly.
 *
 * Same inputs and outputs as the explicit present-mode layer: past [1, nkv, past, D] in, present
 * [1, nkv, past + q, D] out (GQA's own layout), new tokens at the end. The runtime's
 * additive mask [q, past + q] goes in as `attention_bias` [1, 1, q, T] (with a score bias [H, q, T]:
 * their sum, [1, H, q, T]; GQA's query head h reads KV head ⌊h / (H / nkv)⌋, the graph's order) — GQA's own causal rule
 * (query i sees keys up to past + i) contains every mask the runtime builds (windows, sinks,
 * branches), so the bias gives exactly the explicit graph's visibility. GQA needs the key count as
 * int32 (`seqlens_k` = T − 1 and the scalar `total_sequence_length`); WebGPU casts no int64, so the
 * runtime feeds both per cache class (`hookNames.attnSeqlensK` / `attnTotalLength`, see forward.ts).
 */
import type { AttentionSpec } from './arch/arch.js';
import type { GraphBuilder, Value } from './builder.js';
import { hookNames as N } from './hooks.js';
import { DataType } from './onnxProto.js';

/** Whether GroupQueryAttention computes attention as `spec` declares it (see the header: no soft-cap). */
export function gqaExpresses(spec: AttentionSpec): boolean {
  return spec.softcap === null;
}

/** Which GroupQueryAttention a call is: its layer, group, cache class, head shape and score scale. */
interface GqaShape {
  /** Multiplier of q·k (`AttentionSpec.scale`). */
  scale: number;
  cacheClass: string;
  layer: number;
  group: number;
  heads: number;
  kvHeads: number;
  headDim: number;
}

export interface FusedLayerInputs extends GqaShape {
  /** Queries after RoPE / qk-norm, token-major [q, H, D], not scaled. */
  q: Value;
  /** New keys and values, token-major [q, nkv, D]. */
  k: Value;
  v: Value;
  /** The layer's additive mask [q, past + q]. */
  mask: Value;
  /** Score-bias hook input [H, q, past + q], if the layer has one. */
  scoreBias?: Value;
}

/** The length inputs GQA needs for a cache class, declared once per graph. */
function lengthInputs(b: GraphBuilder, cls: string): { seqlensK: Value; total: Value } {
  const seqlensK = N.attnSeqlensK(cls);
  const total = N.attnTotalLength(cls);
  if (!b.hasInput(seqlensK)) {
    b.input(seqlensK, DataType.INT32, [1]);
    b.input(total, DataType.INT32, []);
  }
  return { seqlensK, total };
}

/** What one GroupQueryAttention node reads, new tokens as [1, q, heads·D]; or q|k|v packed in `q`, [1, q, (heads + 2·nkv)·D], with `k` and `v` ''. */
export interface GqaCall extends GqaShape {
  q: Value;
  k: Value;
  v: Value;
  /** Additive bias [1, 1 | H, q, T]; absent: GQA's own causal rule (query i sees keys up to past + i) is the mask. */
  bias?: Value;
  /** RoPE applied by GQA itself (`do_rotary`): cos/sin tables [positions, rotaryDim/2], read at past + i. */
  rotary?: { cos: Value; sin: Value };
}

/**
 * One GroupQueryAttention over the group's past [1, nkv, past, D], registering present_key/value
 * [1, nkv, past + q, D] (the present-mode cache layout, `attention.ts`); returns GQA's output [1, q, H·D].
 */
export function groupQueryAttention(b: GraphBuilder, x: GqaCall): Value {
  const { heads: H, kvHeads: nkv, headDim: D, layer: l, group: g } = x;
  const F = DataType.FLOAT;
  const past = `past_${x.cacheClass}`;
  const keys = `keys_${x.cacheClass}`;
  const kPast = b.input(N.pastKey(l, g), F, [1, nkv, past, D]);
  const vPast = b.input(N.pastValue(l, g), F, [1, nkv, past, D]);
  const { seqlensK, total } = lengthInputs(b, x.cacheClass);
  const inputs = [x.q, x.k, x.v, kPast, vPast, seqlensK, total, x.rotary?.cos ?? '', x.rotary?.sin ?? '', '', x.bias ?? ''];
  while (inputs[inputs.length - 1] === '') inputs.pop();
  const [out, kAll, vAll] = b.node(
    'GroupQueryAttention',
    inputs,
    { num_heads: { int: H }, kv_num_heads: { int: nkv }, scale: { float: x.scale }, ...(x.rotary ? { do_rotary: { int: 1 }, rotary_interleaved: { int: 0 } } : {}) },
    { domain: 'com.microsoft', outputs: 3 },
  );
  b.output(kAll, N.presentKey(l, g), F, [1, nkv, keys, D]);
  b.output(vAll, N.presentValue(l, g), F, [1, nkv, keys, D]);
  return out;
}

/** ctx head-major [H, q, D] (as the explicit path returns it); registers present_key/value outputs. */
export function fusedGroupAttention(b: GraphBuilder, x: FusedLayerInputs): Value {
  const { heads: H, kvHeads: nkv, headDim: D } = x;
  const bias = x.scoreBias ? b.unsqueeze(b.add(x.scoreBias, x.mask), [0]) : b.unsqueeze(x.mask, [0, 1]);
  const out = groupQueryAttention(b, {
    ...x, bias, q: b.reshape(x.q, [1, -1, H * D]), k: b.reshape(x.k, [1, -1, nkv * D]), v: b.reshape(x.v, [1, -1, nkv * D]),
  });
  return b.transpose(b.reshape(out, [-1, H, D]), [1, 0, 2]);
}

/**
 * The post-softmax attention [H, r, T] of the query rows `rows` (int64 [r], indices into this call's
 * new tokens) of a fused layer, as the explicit graph captures it (`attention.ts`: scaled q·k, plus
 * mask and score bias, softmax): q [q, H, D] before scaling, keys GQA's present [1, nkv, T, D] (query
 * head h reads KV head ⌊h / (H / nkv)⌋). Costs r query rows, not the call's q.
 */
export function fusedPatternRows(b: GraphBuilder, x: FusedLayerInputs & { rows: Value; keys: Value }): Value {
  const { heads: H, kvHeads: nkv, headDim: D } = x;
  const qr = b.transpose(b.mul(b.gather(x.q, x.rows, 0), b.scalar(x.scale)), [1, 0, 2]); // [H, r, D]
  const kT = b.transpose(b.reshape(x.keys, [nkv, -1, D]), [0, 2, 1]); // [nkv, D, T]
  const s = b.reshape(b.matmul(b.reshape(qr, [nkv, -1, D]), kT), [H, -1, 0]); // [H, r, T]
  // A score bias may come as [H, 1, 1] (a layer the hook leaves alone, forward.ts): rows are taken
  // from its sum with the mask, [H, q, T].
  const bias = x.scoreBias ? b.gather(b.add(x.scoreBias, x.mask), x.rows, 1) : b.gather(x.mask, x.rows, 0);
  return b.softmax(b.add(s, bias), -1);
}
