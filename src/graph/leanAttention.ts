/**
 * The lean fused layer (KV mode `present`, the GPU graph): attention of a layer that nothing hooks
 * anywhere inside attention, from the normed residual [q, hidden] to the output projection's result,
 * with as few nodes as ONNX Runtime will take. Decode on the GPU is bound by the host's cost per node
 * (~10–50 µs each on the WebGPU EP, whatever the node does), so this path keeps the new tokens in the
 * layout GroupQueryAttention and RotaryEmbedding read, [1, q, heads·D], from the projections to GQA's
 * output: no head-major transposes and no [q, heads, D] round trips (`attention.ts`'s explicit and
 * hookable fused paths keep those, for the hooks).
 *
 * Two cases by the layer's cache class:
 * - a class the runtime declared causal (`AttentionContext.causalClasses`: full, in-order history in
 *   every call) takes no mask: without `attention_bias` GQA's own rule (query i sees keys up to
 *   past + i) is the mask, and the WebGPU EP may then use its flash-attention kernel (ORT 1.30's
 *   `CanApplyFlashAttention` requires no bias). Its keys sit at positions 0..past + q − 1, so RoPE is
 *   GQA's too (`do_rotary`, cos/sin tables over every position as initializers), where the tables are
 *   plain (no longrope switch) and of bounded size;
 * - any other class (windows, sinks, branches) passes the runtime's mask as the bias and rotates q
 *   and k with RotaryEmbedding at the call's positions, as the hookable fused path does.
 * Per layer: 3 Unsqueeze (q, k, v; q/k-norm families 4 Reshapes more), 1 Reshape of GQA's output and
 * GQA (the cache is GQA's [1, nkv, T, D]) — against 16 Reshapes, 2 RotaryEmbeddings and a Transpose
 * before. Where q and k need nothing apart (no q/k norm, RoPE by GQA or none) and the family has the
 * projection as one matmul (`qkvPacked`), GQA reads q|k|v packed: the Split goes too (on the 1B shape
 * a Split cost ~55 µs of host time per decode step and layer, measured on the H200).
 */
import type { Arch, AttentionSpec, WeightRef } from './arch/arch.js';
import { applyRope, fusedLayer, ropeTables, type AttentionContext } from './attention.js';
import type { GraphBuilder, Value } from './builder.js';
import { groupQueryAttention } from './fusedAttention.js';
import { blockHook, captures } from './hooks.js';
import { DataType } from './onnxProto.js';

/** Most float32 values a GQA cos (or sin) table may hold: 32 MiB each (Llama-3.2's 131072 positions × 32 fit). */
const MAX_ROTARY_TABLE = 1 << 23;

/** The per-layer read-only hook points inside attention (`hooks.ts`): any of them keeps the layer off the lean path. */
const ATTENTION_POINTS = ['attn.hook_q', 'attn.hook_k', 'attn.hook_v', 'attn.hook_result', 'hook_attn_out'] as const;

/**
 * Whether layer l attends lean: it attends fused (`fusedLayer`) and nothing reads or changes anything
 * between its attention norm and its output projection's result (q/k/v, z, per-head results, head
 * scale/add, score bias).
 */
export function leanLayer(ctx: AttentionContext, l: number, spec: AttentionSpec): boolean {
  const h = ctx.hooks;
  return fusedLayer(ctx, l, spec) && !h.headHooks && !h.scoreBias.includes(l) && !h.captureZ.includes(l) && !h.capturePattern.includes(l)
    && ATTENTION_POINTS.every((p) => !captures(h, blockHook(l, p)));
}

/** GQA's own RoPE tables for a spec: cos/sin [maxPositions, rotaryDim/2] (× the rope's scale), once per rope id; null where GQA cannot take them. */
function gqaRotaryTables(b: GraphBuilder, ctx: AttentionContext, rope: NonNullable<AttentionSpec['rope']>): { cos: Value; sin: Value } | null {
  const half = rope.rotaryDim / 2;
  // Partial rotary stays with RotaryEmbedding (split + concat); longrope switches tables per call.
  if (rope.long || rope.rotaryDim !== ctx.headDim || ctx.maxPositions * half > MAX_ROTARY_TABLE) return null;
  const cosName = `rope.${rope.id}.gqa_cos`;
  const sinName = `rope.${rope.id}.gqa_sin`;
  if (!b.hasInitializer(cosName)) {
    const P = ctx.maxPositions;
    const cos = new Float32Array(P * half);
    const sin = new Float32Array(P * half);
    for (let p = 0; p < P; p++) {
      for (let i = 0; i < half; i++) {
        // As the graph computes it (ropeTables): float32 position × float32 frequency, then cos/sin.
        const f = Math.fround(p * rope.inv[i]);
        cos[p * half + i] = Math.cos(f) * rope.scale;
        sin[p * half + i] = Math.sin(f) * rope.scale;
      }
    }
    b.constRaw(cosName, DataType.FLOAT, [P, half], new Uint8Array(cos.buffer));
    b.constRaw(sinName, DataType.FLOAT, [P, half], new Uint8Array(sin.buffer));
  }
  return { cos: cosName, sin: sinName };
}

const biases = new WeakMap<AttentionContext, Map<string, Value>>();

/** A class's mask as GQA's attention_bias [1, 1, q, keys], one Unsqueeze per graph and class. */
function maskBias(b: GraphBuilder, ctx: AttentionContext, cls: string): Value {
  let byClass = biases.get(ctx);
  if (!byClass) biases.set(ctx, (byClass = new Map()));
  if (!byClass.has(cls)) byClass.set(cls, b.unsqueeze(ctx.mask(cls), [0, 1]));
  return byClass.get(cls)!;
}

/** x [1, q, heads·D] rotated at this call's positions by RotaryEmbedding (the table rows are the call's tokens). */
function rotateFlat(b: GraphBuilder, ctx: AttentionContext, x: Value, heads: number, rope: NonNullable<AttentionSpec['rope']>): Value {
  if (rope.rotaryDim !== ctx.headDim) return b.unsqueeze(b.reshape(applyRope(b, ctx, b.reshape(x, [-1, heads, ctx.headDim]), heads, rope), [-1, heads * ctx.headDim]), [0]);
  const { cos, sin } = ropeTables(b, ctx, rope);
  return b.node('RotaryEmbedding', [x, b.constI64([0]), cos, sin], { interleaved: { int: 0 }, num_heads: { int: heads } }, { domain: 'com.microsoft' })[0];
}

/**
 * Layer l's attention on the normed residual x [q, hidden], lean (see the header): the output
 * projection's result [q, hidden]. `batched`: x is [1, q, hidden] (the residual stream of a graph
 * that is lean throughout, `decoder.ts`) and so is the result: no Unsqueeze or Reshape at all.
 */
export function leanAttention(b: GraphBuilder, ctx: AttentionContext, arch: Arch, w: WeightRef, x: Value, l: number, batched = false): Value {
  const { numHeads: H, numKvHeads: Hkv, headDim: D } = ctx;
  const spec = arch.attention(l);
  const cls = ctx.layout[l][0].cacheClass;
  const causal = ctx.causalClasses.has(cls);
  const rotary = causal && spec.rope ? gqaRotaryTables(b, ctx, spec.rope) : null;
  const flat = (t: Value) => (batched ? t : b.unsqueeze(t, [0]));
  // Nothing to do to q and k apart (no q/k norm; RoPE by GQA or none): GQA reads q|k|v packed.
  const packed = !arch.qkNorm && (!spec.rope || rotary) ? arch.qkvPacked?.(b, w, x, l) ?? null : null;
  let qf: Value;
  let kf = '';
  let vf = '';
  if (packed !== null) {
    qf = flat(packed);
  } else {
    const { q, k, v } = arch.qkv(b, w, x, l);
    qf = flat(q);
    kf = flat(k);
    vf = flat(v);
    if (arch.qkNorm) {
      // [1, q, heads, D] around the norm: the WebGPU EP fuses Reshape → per-head norm → Reshape → GQA
      // into GQA, which then reads the projection's output, so that must already be [1, q, heads·D].
      const n = arch.qkNorm(b, w, b.reshape(qf, [1, -1, H, D]), b.reshape(kf, [1, -1, Hkv, D]), l);
      qf = b.reshape(n.q, [1, -1, H * D]);
      kf = b.reshape(n.k, [1, -1, Hkv * D]);
    }
    if (spec.rope && !rotary) {
      qf = rotateFlat(b, ctx, qf, H, spec.rope);
      kf = rotateFlat(b, ctx, kf, Hkv, spec.rope);
    }
  }
  const out = b.scope('attn.0', () => groupQueryAttention(b, {
    q: qf, k: kf, v: vf, bias: causal ? undefined : maskBias(b, ctx, cls), rotary: rotary ?? undefined,
    scale: spec.scale, cacheClass: cls, layer: l, group: 0, heads: H, kvHeads: Hkv, headDim: D,
  }));
  return arch.attnOut(b, w, batched ? out : b.reshape(out, [-1, H * D]), l);
}
