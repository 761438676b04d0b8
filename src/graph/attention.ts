/**
 * Multi-head attention of one layer, written out op by op from the architecture's `AttentionSpec`
 * (score scale, soft-cap, RoPE; the sliding window is the runtime's mask and cache) so every head's
 * pattern and output can be hooked: q/k/v projections, q/k norm, RoPE, then per KV-cache group
 * (`layout.ts`) scores, mask, hooks, softmax and the weighted sum, then the per-head hooks on z and
 * the output projection.
 *
 * Shapes drop the batch axis and stay token-major [q, heads, D]; only queries go head-major for the
 * score matmul. Two KV modes: `append` (CPU) reads each group's past in place and returns only the new
 * tokens' keys/values; `present` (GPU) concatenates past and new and returns the whole, as
 * [1, nkv, tokens, D] (GroupQueryAttention's layout, whichever way the layer attends).
 * In `append` mode attention takes one of two forms by the number of new tokens (an If node): many
 * queries (prefill) join past and new keys and attend with one batched matmul; few (decode) never copy
 * the past and concatenate per-head score blocks instead. In `present` mode a layer that nothing
 * hooks inside attention may instead attend with one fused GroupQueryAttention (`fusedAttention.ts`).
 */
import { GraphBuilder, type Dim, type Value } from './builder.js';
import type { Arch, AttentionSpec, WeightRef } from './arch/arch.js';
import { fusedGroupAttention, fusedPatternRows, gqaExpresses } from './fusedAttention.js';
import { blockHook, captures, hookNames as N, scoresOutput, type HookOptions } from './hooks.js';
import { groupQueryHeads, type KvGroup, type KvLayout } from './layout.js';
import { DataType } from './onnxProto.js';

/** `append`: per-KV-head past read in place, new K/V out (CPU). `present`: head-major past + new K/V concatenated and returned (GPU). */
export type KvMode = 'append' | 'present';

/** From this many new tokens on, CPU attention joins past and new keys instead of their scores (measured crossover: prefill). */
export const MANY_QUERIES = 16;

const F = DataType.FLOAT;
const I = DataType.INT64;

/** What every layer's attention shares in one graph: shapes, inputs, hook choices, RoPE tables. */
export interface AttentionContext {
  hiddenSize: number;
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  layout: KvLayout;
  hooks: HookOptions;
  present: boolean;
  /** The mask.{class} input [q, keys], declared on first use (a class that only lean layers read has none: `leanAttention.ts`). */
  mask: (cls: string) => Value;
  /**
   * Classes the runtime promises hold full, in-order history in every call (no window, no pad, no
   * branches: `Model.session`'s `causalClasses`): lean fused layers of such a class drop the mask and
   * let GroupQueryAttention apply its causal rule and RoPE itself (`leanAttention.ts`).
   */
  causalClasses: ReadonlySet<string>;
  /** append mode: the If condition "many new tokens". */
  manyQueries: Value | null;
  positions: Value;
  maxPositions: number;
  /** cos/sin tables [q, rotaryDim/2] by RoPE id, built on first use. */
  ropeTables: Map<string, { cos: Value; sin: Value }>;
  /** present mode: fused GroupQueryAttention on the layers `fusedLayer` admits. */
  fused: boolean;
}

/**
 * Whether layer l attends fused: present mode with fusion asked for, one KV-cache group holding every
 * KV head in order, no pattern capture or ACT hook (they read or rescale the probabilities GQA keeps
 * inside), and a spec GQA computes (`gqaExpresses`: no score soft-cap).
 */
export function fusedLayer(ctx: AttentionContext, l: number, spec: AttentionSpec): boolean {
  const groups = ctx.layout[l];
  return ctx.present && ctx.fused && groups.length === 1 && groups[0].kvHeads.every((h, i) => h === i) && groups[0].kvHeads.length === ctx.numKvHeads
    && !ctx.hooks.act.includes(l) && gqaExpresses(spec)
    && !captures(ctx.hooks, blockHook(l, 'attn.hook_attn_scores')) && !captures(ctx.hooks, blockHook(l, 'attn.hook_pattern'));
}

/** The cos/sin tables of a spec's RoPE for this call's positions (shared by layers with the same id). */
export function ropeTables(b: GraphBuilder, ctx: AttentionContext, rope: NonNullable<AttentionSpec['rope']>): { cos: Value; sin: Value } {
  const cached = ctx.ropeTables.get(rope.id);
  if (cached) return cached;
  const tables = b.scope(`rope.${rope.id}`, () => {
    const half = rope.rotaryDim / 2;
    // WebGPU has no Cast from int64: present mode (the GPU graph) looks positions up in a float table.
    const posF = ctx.present && ctx.maxPositions <= 1 << 24
      ? b.gather(b.constF32(Float32Array.from({ length: ctx.maxPositions }, (_, i) => i), [ctx.maxPositions]), ctx.positions)
      : b.cast(ctx.positions, F);
    let inv = b.constF32(rope.inv, [1, half]);
    if (rope.long) {
      // longrope: the long factors once the call reaches past the original context (as Hugging Face switches per call).
      const last = b.op('ReduceMax', [posF], { keepdims: { int: 0 } });
      const isLong = b.op('Greater', [b.add(last, b.scalar(1)), b.scalar(rope.long.from)]);
      inv = b.op('Where', [isLong, b.constF32(rope.long.inv, [1, half]), inv]);
    }
    const freqs = b.mul(b.unsqueeze(posF, [1]), inv);
    let cos = b.op('Cos', [freqs]);
    let sin = b.op('Sin', [freqs]);
    if (rope.scale !== 1) {
      cos = b.mul(cos, b.scalar(rope.scale));
      sin = b.mul(sin, b.scalar(rope.scale));
    }
    // Half-width tables [q, rotaryDim/2]: RotaryEmbedding reads row t for token t (position ids 0..q-1).
    return { cos, sin };
  });
  ctx.ropeTables.set(rope.id, tables);
  return tables;
}

/**
 * x [q, heads, D] rotated on its first rotaryDim dims: ONNX Runtime's RotaryEmbedding (CPU and
 * WebGPU) computes x·cos + rotate_half(x)·sin, rotate_half(x) = cat(−x2, x1), as Hugging Face does.
 */
export function applyRope(b: GraphBuilder, ctx: AttentionContext, x: Value, heads: number, rope: NonNullable<AttentionSpec['rope']>): Value {
  const D = ctx.headDim;
  const R = rope.rotaryDim;
  const { cos, sin } = ropeTables(b, ctx, rope);
  const rotate = (v: Value) => {
    const y = b.node('RotaryEmbedding', [b.reshape(v, [1, -1, heads * R]), b.constI64([0]), cos, sin], { interleaved: { int: 0 }, num_heads: { int: heads } }, { domain: 'com.microsoft' })[0];
    return b.reshape(y, [-1, heads, R]);
  };
  if (R === D) return rotate(x);
  const [rot, pass] = b.split(x, [R, D - R], 2);
  return b.concat([rotate(rot), pass], 2);
}

/** One KV-cache group's graph inputs for hooks, declared once so both attention branches can read them. */
interface GroupHooks {
  /** Expose the scores (hook_attn_scores). */
  scores: boolean;
  bias: Value | null;
  act: { m: Value; beta: Value } | null;
  rows: Value | null;
}

interface GroupShape {
  nkv: number;
  hg: number;
  cls: string;
  spec: AttentionSpec;
  mask: Value;
  hooks: GroupHooks;
}

/** Soft-cap, mask, score bias, softmax, ACT and the weighted sum over scores [nkv, rep·q, keys]: ctx [nkv, rep·q, D] and the captured rows. */
function attend(ab: GraphBuilder, g: GroupShape, scores: Value, weighted: (p: Value) => Value): { ctx: Value; pattern: Value | null; scores: Value | null } {
  let s = scores;
  if (g.spec.softcap !== null) s = ab.mul(ab.op('Tanh', [ab.mul(s, ab.scalar(1 / g.spec.softcap))]), ab.scalar(g.spec.softcap));
  const grid = ab.reshape(s, [g.hg, -1, 0]);
  s = ab.add(grid, g.mask);
  if (g.hooks.bias) s = ab.add(s, g.hooks.bias);
  let p = ab.softmax(s, -1);
  if (g.hooks.act) {
    const { m, beta } = g.hooks.act;
    // A' = A·m·β + A·(1−m)·(1−β·S)/(1−S), S = Σ A·m: damp hidden sinks, give the mass to the rest.
    const am = ab.mul(p, m);
    const sinkMass = ab.reduceSum(am, [-1]);
    const one = ab.scalar(1);
    const free = ab.sub(one, sinkMass);
    const rest = ab.div(ab.sub(one, ab.mul(beta, sinkMass)), ab.op('Max', [free, ab.scalar(1e-6)]));
    // A row that attends only to sinks has nowhere to move mass: leave it unchanged.
    const calibrated = ab.add(ab.mul(am, beta), ab.mul(ab.sub(p, am), rest));
    p = ab.op('Where', [ab.op('Less', [free, ab.scalar(1e-6)]), p, calibrated]);
  }
  const pattern = g.hooks.rows ? ab.gather(p, g.hooks.rows, 1) : null;
  return { ctx: weighted(ab.reshape(p, [g.nkv, -1, 0])), pattern, scores: g.hooks.scores ? grid : null };
}

/**
 * Present mode: past [1, nkv, past, D] ++ new [nkv, q, D], returned for the runtime to keep on the
 * device in GroupQueryAttention's layout (so fused and explicit graphs share one cache).
 */
function attendPresent(b: GraphBuilder, l: number, gi: number, g: GroupShape, qg: Value, kNew: Value, vNew: Value, D: number) {
  const kPast = b.input(N.pastKey(l, gi), F, [1, g.nkv, `past_${g.cls}`, D]);
  const vPast = b.input(N.pastValue(l, gi), F, [1, g.nkv, `past_${g.cls}`, D]);
  const kAll = b.output(b.concat([kPast, b.unsqueeze(kNew, [0])], 2), N.presentKey(l, gi), F, [1, g.nkv, `keys_${g.cls}`, D]);
  const vAll = b.output(b.concat([vPast, b.unsqueeze(vNew, [0])], 2), N.presentValue(l, gi), F, [1, g.nkv, `keys_${g.cls}`, D]);
  const v3 = b.reshape(vAll, [g.nkv, -1, D]);
  return attend(b, g, b.matmul(qg, b.transpose(b.reshape(kAll, [g.nkv, -1, D]), [0, 2, 1])), (p) => b.matmul(p, v3));
}

/**
 * Append mode: new keys/values go back to the runtime, which appends them to its own buffers. The
 * past is one head-major [nkv, past, D] input read in place (layout.ts), or with `pastInput: 'head'`
 * one contiguous [past, D] input per KV head.
 */
function attendAppend(b: GraphBuilder, ctx: AttentionContext, l: number, gi: number, group: KvGroup, g: GroupShape, qg: Value, kSel: Value, vSel: Value) {
  const D = ctx.headDim;
  const { nkv, cls } = g;
  const kNew = b.output(b.transpose(kSel, [1, 0, 2]), N.newKey(l, gi), F, [nkv, 'q', D]);
  const vNew = b.output(b.transpose(vSel, [1, 0, 2]), N.newValue(l, gi), F, [nkv, 'q', D]);
  const grouped = group.pastInput !== 'head';
  const pastInputs = (whole: (l: number, g: number) => string, head: (l: number, g: number, j: number) => string) => grouped
    ? [b.input(whole(l, gi), F, [nkv, `past_${cls}`, D])]
    : group.kvHeads.map((_, j) => b.input(head(l, gi, j), F, [`past_${cls}`, D]));
  const kPast = pastInputs(N.pastKey, N.pastKeyHead);
  const vPast = pastInputs(N.pastValue, N.pastValueHead);

  // Many queries: one copy of the past joins the new keys, [nkv, past + q, D]; one batched matmul.
  const byKeys = (ab: GraphBuilder) => {
    const all = (past: Value[], fresh: Value): Value => {
      if (grouped) return ab.concat([past[0], fresh], 1);
      const freshHeads = nkv === 1 ? [fresh] : ab.split(fresh, new Array<number>(nkv).fill(1), 0);
      const pieces = past.flatMap((pj, j) => [pj, ab.reshape(freshHeads[j], [-1, D])]);
      return ab.reshape(ab.concat(pieces, 0), [nkv, -1, D]);
    };
    const vAll = all(vPast, vNew);
    return attend(ab, g, ab.fusedMatMul(qg, all(kPast, kNew), { transB: true }), (p) => ab.matmul(p, vAll));
  };
  // Few queries: the past is never copied; per-head score blocks are concatenated (cheap for few rows).
  const byScores = (ab: GraphBuilder) => {
    const perHead = (x: Value, f: (xj: Value, j: number) => Value): Value =>
      nkv === 1 || grouped ? f(x, 0) : ab.concat(ab.split(x, new Array<number>(nkv).fill(1), 0).map(f), 0);
    // [nkv, rep*q, past + q]; GQA: a KV head's rep query heads share one matmul.
    const scores = ab.concat([perHead(qg, (qj, j) => ab.fusedMatMul(qj, kPast[j], { transB: true })), ab.fusedMatMul(qg, kNew, { transB: true })], 2);
    return attend(ab, g, scores, (p) => {
      const pastLen = ab.slice(ab.op('Shape', [kPast[0]]), [grouped ? 1 : 0], [grouped ? 2 : 1], [0]);
      const pPast = ab.op('Slice', [p, ab.constI64([0]), pastLen, ab.constI64([2])]);
      const pNew = ab.op('Slice', [p, pastLen, ab.constI64([Number.MAX_SAFE_INTEGER]), ab.constI64([2])]);
      return ab.add(perHead(pPast, (pj, j) => ab.matmul(pj, vPast[j])), ab.matmul(pNew, vNew));
    });
  };
  const exposed = (r: { ctx: Value; pattern: Value | null; scores: Value | null }) => [
    { value: r.ctx, elemType: F, dims: [nkv, 'rq', D] as Dim[] },
    ...(r.pattern ? [{ value: r.pattern, elemType: F, dims: [g.hg, 'r', `keys_${cls}`] as Dim[] }] : []),
    ...(r.scores ? [{ value: r.scores, elemType: F, dims: [g.hg, 'q', `keys_${cls}`] as Dim[] }] : []),
  ];
  const keysBranch = b.subgraph('by_keys', (sb) => exposed(byKeys(sb)));
  const scoresBranch = b.subgraph('by_scores', (sb) => exposed(byScores(sb)));
  const outs = b.ifElse(ctx.manyQueries!, keysBranch.body, scoresBranch.body, keysBranch.outputs.length);
  const at = g.hooks.rows ? 2 : 1;
  return { ctx: outs[0], pattern: g.hooks.rows ? outs[1] : null, scores: g.hooks.scores ? outs[at] : null };
}

/** Layer l's attention on x [q, hidden]: the output projection's result [q, hidden]. */
export function attention(b: GraphBuilder, ctx: AttentionContext, arch: Arch, w: WeightRef, x: Value, l: number): Value {
  return attentionOut(b, ctx, arch, w, attentionZ(b, ctx, arch, w, x, l), l);
}

/** Layer l's attention on x [q, hidden] up to z [q, heads, headDim], after the head hooks (a graph cut at hook_z ends here). */
export function attentionZ(b: GraphBuilder, ctx: AttentionContext, arch: Arch, w: WeightRef, x: Value, l: number): Value {
  const { numHeads: H, numKvHeads: Hkv, headDim: D, hooks } = ctx;
  const spec = arch.attention(l);
  const { q, k, v } = arch.qkv(b, w, x, l);
  let q3 = b.reshape(q, [0, H, D]);
  let k3 = b.reshape(k, [0, Hkv, D]);
  const v3 = b.reshape(v, [0, Hkv, D]);
  if (arch.qkNorm) ({ q: q3, k: k3 } = arch.qkNorm(b, w, q3, k3, l));
  if (spec.rope) {
    q3 = applyRope(b, ctx, q3, H, spec.rope);
    k3 = applyRope(b, ctx, k3, Hkv, spec.rope);
  }
  // output() renames the value, so later ops must use the name it returns.
  if (captures(hooks, blockHook(l, 'attn.hook_q'))) q3 = b.output(q3, blockHook(l, 'attn.hook_q'), F, ['q', H, D]);
  if (captures(hooks, blockHook(l, 'attn.hook_k'))) k3 = b.output(k3, blockHook(l, 'attn.hook_k'), F, ['q', Hkv, D]);
  const v3c = captures(hooks, blockHook(l, 'attn.hook_v')) ? b.output(v3, blockHook(l, 'attn.hook_v'), F, ['q', Hkv, D]) : v3;
  const fused = fusedLayer(ctx, l, spec);
  // GQA scales q·k itself and reads token-major queries.
  const qh = fused ? '' : b.transpose(b.mul(q3, b.scalar(spec.scale)), [1, 0, 2]);

  const order: number[] = [];
  const contexts: Value[] = [];
  ctx.layout[l].forEach((group, gi) => {
    b.scope(`attn.${gi}`, () => {
      const qHeads = groupQueryHeads(group, H, Hkv);
      const whole = group.kvHeads.length === Hkv;
      const nkv = group.kvHeads.length;
      const hg = qHeads.length;
      const cls = group.cacheClass;
      if (fused) {
        const scoreBias = hooks.scoreBias.includes(l) ? b.input(N.scoreBias(l, gi), F, [hg, 'q', `keys_${cls}`]) : undefined;
        const call = { q: q3, k: k3, v: v3c, mask: ctx.mask(cls), scoreBias, scale: spec.scale, cacheClass: cls, layer: l, group: gi, heads: H, kvHeads: Hkv, headDim: D };
        contexts.push(fusedGroupAttention(b, call));
        // Captured rows: their probabilities beside GQA, from its present keys, at the cost of those rows only.
        if (hooks.capturePattern.includes(l)) {
          const rows = b.input(N.captureRows(l), I, ['r']);
          b.output(fusedPatternRows(b, { ...call, rows, keys: N.presentKey(l, gi) }), N.pattern(l, gi), F, [hg, 'r', `keys_${cls}`]);
        }
        order.push(...qHeads);
        return;
      }
      const qg = b.reshape(whole ? qh : b.gather(qh, b.constI64(qHeads), 0), [nkv, -1, D]);
      const kSel = whole ? k3 : b.gather(k3, b.constI64(group.kvHeads), 1);
      const vSel = whole ? v3c : b.gather(v3c, b.constI64(group.kvHeads), 1);
      const g: GroupShape = {
        nkv, hg, cls, spec, mask: ctx.mask(cls),
        hooks: {
          scores: captures(hooks, blockHook(l, 'attn.hook_attn_scores')),
          bias: hooks.scoreBias.includes(l) ? b.input(N.scoreBias(l, gi), F, [hg, 'q', `keys_${cls}`]) : null,
          act: hooks.act.includes(l) ? { m: b.input(N.actMask(l, gi), F, [hg, 1, `keys_${cls}`]), beta: b.input(N.actBeta(l, gi), F, [hg, 1, 1]) } : null,
          rows: hooks.capturePattern.includes(l) ? (gi === 0 ? b.input(N.captureRows(l), I, ['r']) : N.captureRows(l)) : null,
        },
      };
      const r = ctx.present
        ? attendPresent(b, l, gi, g, qg, b.transpose(kSel, [1, 0, 2]), b.transpose(vSel, [1, 0, 2]), D)
        : attendAppend(b, ctx, l, gi, group, g, qg, kSel, vSel);
      if (r.pattern) b.output(r.pattern, N.pattern(l, gi), F, [hg, 'r', `keys_${cls}`]);
      if (r.scores) b.output(r.scores, scoresOutput(l, gi), F, [hg, 'q', `keys_${cls}`]);
      contexts.push(b.reshape(r.ctx, [hg, -1, D]));
      order.push(...qHeads);
    });
  });
  let z = contexts.length === 1 ? contexts[0] : b.concat(contexts, 0);
  if (order.some((head, i) => head !== i)) {
    const inverse = new Array<number>(H);
    order.forEach((head, i) => (inverse[head] = i));
    z = b.gather(z, b.constI64(inverse), 0);
  }
  if (hooks.headHooks) {
    z = b.mul(z, b.reshape(b.input(N.headScale(l), F, ['head_scale']), [H, -1, 1])); // [H] or [H, q]
    z = b.add(z, b.reshape(b.input(N.headAdd(l), F, [H, D]), [H, 1, D]));
  }
  let zq = b.transpose(z, [1, 0, 2]);
  // output() renames the value, so later ops must use the name it returns.
  if (hooks.captureZ.includes(l)) zq = b.output(zq, N.z(l), F, ['q', H, D]);
  return zq;
}

/** Layer l's attention from z [q, heads, headDim] on: the output projection's result [q, hidden]. */
export function attentionOut(b: GraphBuilder, ctx: AttentionContext, arch: Arch, w: WeightRef, zq: Value, l: number): Value {
  const { numHeads: H, headDim: D, hooks } = ctx;
  if (captures(hooks, blockHook(l, 'attn.hook_result'))) b.output(headResults(b, arch, w, zq, l, H, D, ctx.hiddenSize), blockHook(l, 'attn.hook_result'), F, ['q', H, ctx.hiddenSize]);
  let out = arch.attnOut(b, w, b.reshape(zq, [0, H * D]), l);
  if (captures(hooks, blockHook(l, 'hook_attn_out'))) out = b.output(out, blockHook(l, 'hook_attn_out'), F, ['q', ctx.hiddenSize]);
  return out;
}

/**
 * hook_result [q, H, d]: head h's write to the residual, o_proj applied to z with every other head
 * zeroed, minus o_proj of zero (its bias). o_proj is linear, so the heads sum to the attention output
 * less the bias, whatever the family's projection looks like. Costs H output projections: hooked only.
 */
function headResults(b: GraphBuilder, arch: Arch, w: WeightRef, zq: Value, l: number, H: number, D: number, d: number): Value {
  const eye = new Float32Array(H * H);
  for (let h = 0; h < H; h++) eye[h * H + h] = 1;
  const masked = b.mul(b.constF32(eye, [H, 1, H, 1]), b.unsqueeze(zq, [0])); // [H, q, H, D]
  const all = arch.attnOut(b, w, b.reshape(masked, [-1, H * D]), l); // [H·q, d]
  const bias = arch.attnOut(b, w, b.constF32(new Float32Array(H * D), [1, H * D]), l); // [1, d]
  return b.transpose(b.reshape(b.sub(all, bias), [H, -1, d]), [1, 0, 2]);
}
