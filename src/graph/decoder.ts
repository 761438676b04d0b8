/**
 * Builds the ONNX graph of a decoder-only transformer from an architecture file: embeddings, the
 * blocks wired as the architecture's `BlockLayout` says (two residual lines, or one parallel), final
 * norm and LM head. Attention is `attention.ts`. One call processes `q` new tokens of one sequence on
 * top of a KV cache laid out in groups (`layout.ts`); shapes drop the batch axis.
 *
 * Inputs: input_ids [q], position_ids [q], logits_at [n], mask.{class} [q, past + q],
 * past_key/value.{l}.{g} [groupKvHeads, past, headDim] (read in place from the runtime's head-major
 * buffers; `past` may include unfilled rows that the mask hides) or, for a group laid out with
 * `pastInput: 'head'`, past_key/value.{l}.{g}.{j} [past, headDim] for each KV head j, plus the hook
 * inputs asked for. Outputs: logits [n, vocab],
 * new_key/value.{l}.{g} [groupKvHeads, q, headDim] for the runtime to append to its buffers, plus the
 * hook outputs asked for.
 *
 * KV mode `present` (GPU): past_key/value.{l}.{g} are [1, groupKvHeads, past, headDim]
 * (GroupQueryAttention's layout), the graph concatenates the new tokens and outputs
 * present_key/value.{l}.{g} [1, groupKvHeads, past + q, headDim], which the runtime keeps on the
 * device and feeds back next step. Only ops the WebGPU execution provider runs (no com.microsoft
 * FusedMatMul; its GroupQueryAttention, RotaryEmbedding and Skip/SimplifiedLayerNormalization). With
 * fused attention, an unhooked layer is `leanAttention.ts`; RMSNorm families add the residual inside
 * the next norm (`Arch.skipNorm`).
 */
import type { ModelConfig } from '../hf/config.js';
import { GraphBuilder, type Value, type WeightPlan } from './builder.js';
import type { Arch, WeightRef } from './arch/arch.js';
import { attentionOut, attentionZ, type AttentionContext, type KvMode, MANY_QUERIES } from './attention.js';
import { leanAttention, leanLayer } from './leanAttention.js';
import { blockHook, captures, hookKey, hookNames as N, NO_HOOKS, INPUT_IDS, LN_FINAL, LOGITS, LOGITS_AT, logitLensName, POINT_IN, POINT_OUT, POSITION_IDS, RESID_IN, RESID_OUT, SEGMENT_POINTS, type HookOptions, type SegmentPoint } from './hooks.js';
import { layoutClasses, type KvLayout } from './layout.js';
import { DataType } from './onnxProto.js';

export { MANY_QUERIES, type KvMode } from './attention.js';

export interface DecoderGraphOptions {
  layout: KvLayout;
  hooks: HookOptions;
  /** Default `append`. */
  kvMode?: KvMode;
  /**
   * KV mode `present`: layers whose attention ONNX Runtime's fused GroupQueryAttention can compute
   * (one KV-head group, no pattern capture or ACT hook, a spec GQA expresses) use it
   * (`fusedAttention.ts`), a score bias added to the mask. Default false.
   */
  fusedAttention?: boolean;
  /**
   * KV mode `present` with fused attention: cache classes the runtime guarantees full, in-order
   * history in every call (no window, no pad rows, no branches); their lean layers drop the mask
   * (`leanAttention.ts`). Default none.
   */
  causalClasses?: string[];
  /** Compact linear weights (`quant.ts`); default float32. */
  weightPlan?: WeightPlan;
}

export function buildDecoderGraph(config: ModelConfig, arch: Arch, w: WeightRef, opts: DecoderGraphOptions): GraphBuilder {
  const b = new GraphBuilder(`headwise-${config.family}`);
  const F = DataType.FLOAT;
  const I = DataType.INT64;
  const present = opts.kvMode === 'present';
  // The GPU graph: linear layers as MatMul with [in, out] weights (WebGPU's Gemm(transB) is much slower).
  b.matmulLinear = present;
  b.weightPlan = opts.weightPlan ?? null;

  const ids = b.input(INPUT_IDS, I, ['q']);
  const positions = b.input(POSITION_IDS, I, ['q']);
  const logitsAt = b.input(LOGITS_AT, I, ['n']);
  const fused = present && opts.fusedAttention === true;
  const causalClasses = new Set(fused ? opts.causalClasses ?? [] : []);
  // Every class's mask is an input, but a causal class's only if a layer reads it (lean layers do not).
  const masks = new Map<string, Value>();
  const mask = (cls: string): Value => {
    if (!masks.has(cls)) masks.set(cls, b.input(N.mask(cls), F, ['q', `keys_${cls}`]));
    return masks.get(cls)!;
  };
  for (const cls of layoutClasses(opts.layout)) if (!causalClasses.has(cls)) mask(cls);
  const ctx: AttentionContext = {
    hiddenSize: config.hiddenSize, numHeads: config.numHeads, numKvHeads: config.numKvHeads, headDim: config.headDim,
    layout: opts.layout, hooks: opts.hooks, present, mask, causalClasses, positions, maxPositions: config.maxPositions,
    manyQueries: present ? null : b.op('Greater', [b.op('Shape', [ids]), b.constI64([MANY_QUERIES - 1])]),
    ropeTables: new Map(),
    fused,
  };
  const { block } = arch;
  const scaled = (x: Value, s: number) => (s === 1 ? x : b.mul(x, b.scalar(s)));
  const branch = (x: Value, norm: typeof arch.attnNorm, l: number) => (norm ? norm(b, w, x, l) : x);

  // Read-only hook points (hooks.ts): output() renames a value, so the wiring goes on with the name it returns.
  const d = config.hiddenSize;
  const hook = (x: Value, name: string, dims: (string | number)[] = ['q', d]) => (captures(opts.hooks, name) ? b.output(x, name, F, dims) : x);
  const head = (x: Value) => {
    const logits = scaled(arch.lmHead(b, w, x), block.logitScale);
    return block.logitSoftcap === null ? logits : b.mul(b.op('Tanh', [b.mul(logits, b.scalar(1 / block.logitSoftcap))]), b.scalar(block.logitSoftcap));
  };
  // A segment (runWithHooks): blocks [from, to), the final norm and head being block numLayers; a cut
  // inside a block is a stage of it (0 its input, 1 + SEGMENT_POINTS index, 4 its output).
  const seg = opts.hooks.segment ?? { from: 0, to: config.numLayers + 1, residIn: false };
  const stageOf = (p: SegmentPoint | undefined) => (p === undefined ? 4 : 1 + SEGMENT_POINTS.indexOf(p));
  const pointDims = (p: SegmentPoint): (string | number)[] => (p === 'attn.hook_z' ? ['q', config.numHeads, config.headDim] : ['q', d]);
  if (seg.fromPoint && !seg.residIn) throw new Error('segment: a cut inside a block reads the residual (residIn)');
  // The residual stream as base + delta not yet added, so that the next pre-norm can add it in the
  // same node (`Arch.skipNorm`, GPU graph only: there every node costs host time); `flat` adds.
  type Stream = { base: Value; delta: Value | null };
  const flat = (s: Stream): Value => (s.delta === null ? s.base : b.add(s.base, s.delta));
  const skipNorms = present && arch.skipNorm !== undefined;
  const normAndSum = (s: Stream, norm: typeof arch.attnNorm, which: 'attn' | 'mlp', l: number): { normed: Value; sum: Value } => {
    if (s.delta !== null && skipNorms && norm) {
      const r = arch.skipNorm!(b, w, s.delta, s.base, which, l);
      if (r) return r;
    }
    const sum = flat(s);
    return { normed: branch(sum, norm, l), sum };
  };
  const hooked = (s: Stream, name: string): Stream => (captures(opts.hooks, name) ? { base: hook(flat(s), name), delta: null } : s);
  // A graph without hooks whose every layer is lean, of a family whose parts take any rank, carries the
  // residual stream as [1, q, hidden] (GQA's layout) from the embedding to the final norm's rows.
  const batched = fused && arch.anyRank === true && !opts.hooks.segment && hookKey(opts.hooks) === hookKey(NO_HOOKS)
    && Array.from({ length: config.numLayers }, (_, l) => leanLayer(ctx, l, arch.attention(l))).every(Boolean);
  const embedded = seg.residIn ? b.input(RESID_IN, F, ['q', d]) : scaled(arch.embed(b, w, ids, positions), block.embedScale);
  let h: Stream = { base: batched ? b.unsqueeze(embedded, [0]) : embedded, delta: null };
  // Block l from stage `start` (h the residual carried there, v the value at the cut) to stage `stop`.
  const runBlock = (l: number, start: number, stop: number, hIn: Stream, vIn: Value | null): { h: Stream; v: Value | null } => b.scope(`blocks.${l}`, () => {
    const input = start === 0 ? hooked(hIn, blockHook(l, 'hook_resid_pre')) : hIn;
    let v = vIn;
    let x: Value;
    // A lean layer (leanAttention.ts) goes from the normed input to the output projection in one piece.
    const lean = start < 1 && stop >= 2 && leanLayer(ctx, l, arch.attention(l));
    if (start < 1) {
      const { normed, sum } = normAndSum(input, arch.attnNorm, 'attn', l);
      x = sum;
      v = lean ? leanAttention(b, ctx, arch, w, normed, l, batched) : attentionZ(b, ctx, arch, w, normed, l);
      if (stop === 1) return { h: { base: x, delta: null }, v };
    } else x = flat(input);
    if (start < 2) {
      if (!lean) v = attentionOut(b, ctx, arch, w, v!, l);
      if (stop === 2) return { h: { base: x, delta: null }, v };
    }
    let carry = x;
    if (start < 3) {
      const attn = branch(v!, arch.postAttnNorm, l);
      if (block.residual === 'parallel') {
        v = hook(arch.mlp(b, w, branch(x, arch.mlpNorm, l), l), blockHook(l, 'hook_mlp_out'));
        carry = b.add(x, scaled(attn, block.residualScale));
      } else {
        const mid = hooked({ base: x, delta: scaled(attn, block.residualScale) }, blockHook(l, 'hook_resid_mid'));
        const { normed, sum } = normAndSum(mid, arch.mlpNorm, 'mlp', l);
        carry = sum;
        v = hook(arch.mlp(b, w, normed, l), blockHook(l, 'hook_mlp_out'));
      }
      if (stop === 3) return { h: { base: carry, delta: null }, v };
    }
    const mlp = block.residual === 'parallel' ? v! : branch(v!, arch.postMlpNorm, l);
    return { h: hooked({ base: carry, delta: scaled(mlp, block.residualScale) }, blockHook(l, 'hook_resid_post')), v: null };
  });
  let v: Value | null = seg.fromPoint ? b.input(POINT_IN, F, pointDims(seg.fromPoint)) : null;
  const end = seg.toPoint ? seg.to + 1 : Math.min(seg.to, config.numLayers);
  for (let l = seg.from; l < end; l++) {
    const stop = seg.toPoint && l === seg.to ? stageOf(seg.toPoint) : 4;
    ({ h, v } = runBlock(l, l === seg.from ? stageOf(seg.fromPoint) % 4 : 0, stop, h, v));
    if (stop < 4) {
      b.output(flat(h), RESID_OUT, F, ['q', d]);
      b.output(v!, POINT_OUT, F, pointDims(seg.toPoint!));
      return b;
    }
    if (opts.hooks.logitLens) b.output(head(arch.finalNorm(b, w, b.gather(flat(h), logitsAt, 0))), logitLensName(l), F, ['n', config.vocabSize]);
  }
  const last = batched ? b.reshape(flat(h), [-1, d]) : flat(h);
  if (seg.to <= config.numLayers) {
    b.output(last, RESID_OUT, F, ['q', d]);
    return b;
  }
  // With ln_final hooked every row is normalized (and the logits rows gathered from it); else only the logits rows.
  const normed = captures(opts.hooks, LN_FINAL) ? b.gather(hook(arch.finalNorm(b, w, last), LN_FINAL), logitsAt, 0) : arch.finalNorm(b, w, b.gather(last, logitsAt, 0));
  b.output(head(normed), LOGITS, F, ['n', config.vocabSize]);
  return b;
}
