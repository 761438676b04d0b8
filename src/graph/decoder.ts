/**
 * Builds the ONNX graph of a decoder-only transformer from an architecture file: embeddings, blocks,
 * final norm and LM head, with attention written out op by op (scores, mask, softmax, weighted sum)
 * so every head's pattern and output can be hooked. One call processes `q` new tokens of one
 * sequence on top of a KV cache laid out in groups (`layout.ts`); shapes drop the batch axis.
 *
 * Inputs: input_ids [q], position_ids [q], logits_at [n], mask.{class} [q, past + q],
 * past_key/value.{l}.{g} [groupKvHeads, past, headDim] (read in place from the runtime's head-major
 * buffers; `past` may include unfilled rows that the mask hides) or, for a group laid out with
 * `pastInput: 'head'`, past_key/value.{l}.{g}.{j} [past, headDim] for each KV head j, plus the hook
 * inputs asked for. Outputs: logits [n, vocab],
 * new_key/value.{l}.{g} [groupKvHeads, q, headDim] for the runtime to append to its buffers, plus the
 * hook outputs asked for.
 *
 * KV mode `present` (GPU): past_key/value.{l}.{g} are head-major [groupKvHeads, past, headDim], the
 * graph concatenates the new tokens and outputs present_key/value.{l}.{g} [groupKvHeads, past + q,
 * headDim], which the runtime keeps on the device and feeds back next step. Standard ONNX ops only
 * (no com.microsoft FusedMatMul), so every node runs on the WebGPU execution provider.
 */
import type { ModelConfig } from '../hf/config.js';
import { GraphBuilder, type Dim, type Value, type WeightPlan } from './builder.js';
import type { Arch } from './arch/arch.js';
import { hookNames as N, INPUT_IDS, LOGITS, LOGITS_AT, POSITION_IDS, type HookOptions } from './hooks.js';
import { groupQueryHeads, layoutClasses, type KvLayout } from './layout.js';
import { DataType } from './onnxProto.js';
import { ropeInverseFrequencies } from './rope.js';

/** `append`: per-KV-head past read in place, new K/V out (CPU). `present`: head-major past + new K/V concatenated and returned (GPU). */
export type KvMode = 'append' | 'present';

/** From this many new tokens on, CPU attention joins past and new keys instead of their scores (measured crossover: prefill). */
export const MANY_QUERIES = 16;

export interface DecoderGraphOptions {
  layout: KvLayout;
  hooks: HookOptions;
  /** Default `append`. */
  kvMode?: KvMode;
  /** Compact linear weights (`quant.ts`); default float32. */
  weightPlan?: WeightPlan;
}

export function buildDecoderGraph(config: ModelConfig, arch: Arch, weightRef: (name: string) => Value, opts: DecoderGraphOptions): GraphBuilder {
  const c = config;
  const b = new GraphBuilder(`headwise-${c.family}`);
  const F = DataType.FLOAT;
  const I = DataType.INT64;
  const D = c.headDim;
  const H = c.numHeads;
  const Hkv = c.numKvHeads;
  const rep = H / Hkv;
  const hooks = opts.hooks;
  const present = opts.kvMode === 'present';
  // The GPU graph: linear layers as MatMul with [in, out] weights (WebGPU's Gemm(transB) is much slower).
  b.matmulLinear = present;
  b.weightPlan = opts.weightPlan ?? null;

  const ids = b.input(INPUT_IDS, I, ['q']);
  const pos = b.input(POSITION_IDS, I, ['q']);
  const logitsAt = b.input(LOGITS_AT, I, ['n']);
  const masks = new Map<string, Value>();
  for (const cls of layoutClasses(opts.layout)) masks.set(cls, b.input(N.mask(cls), F, ['q', `keys_${cls}`]));

  // CPU attention takes one of two forms by the number of new tokens (an If node; see below).
  const manyQueries = present ? null : b.op('Greater', [b.op('Shape', [ids]), b.constI64([MANY_QUERIES - 1])]);
  let rope: { cos: Value; sin: Value } | null = null;
  if (arch.usesRope) {
    rope = b.scope('rope', () => {
      const invFreq = b.constF32(ropeInverseFrequencies(c), [1, D / 2]);
      // WebGPU has no Cast from int64: present mode (the GPU graph) looks positions up in a float table.
      const posF = present && c.maxPositions <= 1 << 24
        ? b.gather(b.constF32(Float32Array.from({ length: c.maxPositions }, (_, i) => i), [c.maxPositions]), pos)
        : b.cast(pos, F);
      const freqs = b.mul(b.unsqueeze(posF, [1]), invFreq);
      // Half-width tables [q, D/2]: RotaryEmbedding reads row t for token t (position ids 0..q-1).
      return { cos: b.op('Cos', [freqs]), sin: b.op('Sin', [freqs]) };
    });
  }
  const applyRope = (x: Value, heads: number): Value => {
    // x: [q, heads, D] -> [1, q, heads·D]; ONNX Runtime's RotaryEmbedding (CPU and WebGPU) computes
    // x·cos + rotate_half(x)·sin per element, rotate_half(x) = cat(−x2, x1), as Hugging Face does.
    const x3 = b.reshape(x, [1, -1, heads * D]);
    const y = b.node('RotaryEmbedding', [x3, b.constI64([0]), rope!.cos, rope!.sin], { interleaved: { int: 0 }, num_heads: { int: heads } }, { domain: 'com.microsoft' })[0];
    return b.reshape(y, [-1, heads, D]);
  };
  const scale = b.scalar(1 / Math.sqrt(D));
  const capture = new Set(hooks.capturePattern);
  const captureZ = new Set(hooks.captureZ);
  const biasLayers = new Set(hooks.scoreBias);
  const actLayers = new Set(hooks.act);

  let h = arch.embed(b, weightRef, ids, pos);
  for (let l = 0; l < c.numLayers; l++) {
    h = b.scope(`blocks.${l}`, () => {
      const x = arch.attnNorm(b, weightRef, h, l);
      const { q, k, v } = arch.qkv(b, weightRef, x, l);
      // Token-major [q, heads, D] throughout; only queries go head-major for the score matmul.
      let q3 = b.reshape(q, [0, H, D]);
      let k3 = b.reshape(k, [0, Hkv, D]);
      const v3 = b.reshape(v, [0, Hkv, D]);
      if (arch.qkNorm) ({ q: q3, k: k3 } = arch.qkNorm(b, weightRef, q3, k3, l));
      if (rope) {
        q3 = applyRope(q3, H);
        k3 = applyRope(k3, Hkv);
      }
      const qh = b.transpose(b.mul(q3, scale), [1, 0, 2]);

      const groups = opts.layout[l];
      const order: number[] = [];
      const contexts: Value[] = [];
      groups.forEach((group, g) => {
        b.scope(`attn.${g}`, () => {
          const qHeads = groupQueryHeads(group, H, Hkv);
          const whole = group.kvHeads.length === Hkv;
          const nkv = group.kvHeads.length;
          const hg = qHeads.length;
          const cls = group.cacheClass;
          const qg = b.reshape(whole ? qh : b.gather(qh, b.constI64(qHeads), 0), [nkv, -1, D]);
          const kSel = whole ? k3 : b.gather(k3, b.constI64(group.kvHeads), 1);
          const vSel = whole ? v3 : b.gather(v3, b.constI64(group.kvHeads), 1);
          // Hook inputs are graph inputs, declared here so both attention branches below can read them.
          const biasIn = biasLayers.has(l) ? b.input(N.scoreBias(l, g), F, [hg, 'q', `keys_${cls}`]) : null;
          const actIn = actLayers.has(l) ? { m: b.input(N.actMask(l, g), F, [hg, 1, `keys_${cls}`]), beta: b.input(N.actBeta(l, g), F, [hg, 1, 1]) } : null;
          const rowsIn = capture.has(l) ? (g === 0 ? b.input(N.captureRows(l), I, ['r']) : N.captureRows(l)) : null;
          /** Mask, hooks, softmax and the weighted sum over `scores` [nkv, rep·q, keys]: ctx [nkv, rep·q, D] and the captured rows. */
          const attend = (ab: GraphBuilder, scores: Value, weighted: (pr: Value) => Value): { ctx: Value; pattern: Value | null } => {
            let s = ab.add(ab.reshape(scores, [hg, -1, 0]), masks.get(cls)!);
            if (biasIn) s = ab.add(s, biasIn);
            let p = ab.softmax(s, -1);
            if (actIn) {
              const { m, beta } = actIn;
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
            const pattern = rowsIn ? ab.gather(p, rowsIn, 1) : null;
            return { ctx: weighted(ab.reshape(p, [nkv, -1, 0])), pattern };
          };
          let ctx: Value;
          let pattern: Value | null;
          if (present) {
            // Head-major cache: [nkv, past, D] ++ [nkv, q, D] -> present [nkv, past + q, D], returned
            // for the runtime to keep on the device; scores and the weighted sum read the whole of it.
            const kPast = b.input(N.pastKey(l, g), F, [nkv, `past_${cls}`, D]);
            const vPast = b.input(N.pastValue(l, g), F, [nkv, `past_${cls}`, D]);
            const kAll = b.output(b.concat([kPast, b.transpose(kSel, [1, 0, 2])], 1), N.presentKey(l, g), F, [nkv, `keys_${cls}`, D]);
            const vAll = b.output(b.concat([vPast, b.transpose(vSel, [1, 0, 2])], 1), N.presentValue(l, g), F, [nkv, `keys_${cls}`, D]);
            ({ ctx, pattern } = attend(b, b.matmul(qg, b.transpose(kAll, [0, 2, 1])), (pr) => b.matmul(pr, vAll)));
          } else {
            // New keys/values go back to the runtime, which appends them to its own buffers. The past is
            // one head-major [nkv, past, D] input read in place (layout.ts), or with `pastInput: 'head'`
            // one contiguous [past, D] input per KV head.
            const kNew = b.output(b.transpose(kSel, [1, 0, 2]), N.newKey(l, g), F, [nkv, 'q', D]);
            const vNew = b.output(b.transpose(vSel, [1, 0, 2]), N.newValue(l, g), F, [nkv, 'q', D]);
            const grouped = group.pastInput !== 'head';
            const kPast = grouped
              ? [b.input(N.pastKey(l, g), F, [nkv, `past_${cls}`, D])]
              : group.kvHeads.map((_, j) => b.input(N.pastKeyHead(l, g, j), F, [`past_${cls}`, D]));
            const vPast = grouped
              ? [b.input(N.pastValue(l, g), F, [nkv, `past_${cls}`, D])]
              : group.kvHeads.map((_, j) => b.input(N.pastValueHead(l, g, j), F, [`past_${cls}`, D]));
            // Many queries (prefill): one copy of the past joins the new keys, [nkv, past + q, D], and
            // scores, softmax and weighted sum run batched over the group's heads. Few queries (decode):
            // the past is never copied; per-head score blocks are concatenated instead, which is cheap
            // for few rows but costs a copy of the whole [heads, q, keys] scores for many.
            const byKeys = (ab: GraphBuilder) => {
              const all = (past: Value[], fresh: Value): Value => {
                if (grouped) return ab.concat([past[0], fresh], 1);
                const freshHeads = nkv === 1 ? [fresh] : ab.split(fresh, new Array<number>(nkv).fill(1), 0);
                const pieces = past.flatMap((pj, j) => [pj, ab.reshape(freshHeads[j], [-1, D])]);
                return ab.reshape(ab.concat(pieces, 0), [nkv, -1, D]);
              };
              const vAll = all(vPast, vNew);
              return attend(ab, ab.fusedMatMul(qg, all(kPast, kNew), { transB: true }), (pr) => ab.matmul(pr, vAll));
            };
            const byScores = (ab: GraphBuilder) => {
              const perHead = (x: Value, f: (xj: Value, j: number) => Value): Value =>
                nkv === 1 || grouped ? f(x, 0) : ab.concat(ab.split(x, new Array<number>(nkv).fill(1), 0).map(f), 0);
              // [nkv, rep*q, past + q]; GQA: a KV head's rep query heads share one matmul.
              const scores = ab.concat([
                perHead(qg, (qj, j) => ab.fusedMatMul(qj, kPast[j], { transB: true })),
                ab.fusedMatMul(qg, kNew, { transB: true }),
              ], 2);
              return attend(ab, scores, (pr) => {
                const pastLen = ab.slice(ab.op('Shape', [kPast[0]]), [grouped ? 1 : 0], [grouped ? 2 : 1], [0]);
                const pPast = ab.op('Slice', [pr, ab.constI64([0]), pastLen, ab.constI64([2])]);
                const pNew = ab.op('Slice', [pr, pastLen, ab.constI64([Number.MAX_SAFE_INTEGER]), ab.constI64([2])]);
                return ab.add(perHead(pPast, (pj, j) => ab.matmul(pj, vPast[j])), ab.matmul(pNew, vNew));
              });
            };
            const exposed = (r: { ctx: Value; pattern: Value | null }) => [
              { value: r.ctx, elemType: F, dims: [nkv, 'rq', D] as Dim[] },
              ...(r.pattern ? [{ value: r.pattern, elemType: F, dims: [hg, 'r', `keys_${cls}`] as Dim[] }] : []),
            ];
            const keysBranch = b.subgraph('by_keys', (sb) => exposed(byKeys(sb)));
            const scoresBranch = b.subgraph('by_scores', (sb) => exposed(byScores(sb)));
            const outs = b.ifElse(manyQueries!, keysBranch.body, scoresBranch.body, keysBranch.outputs.length);
            ctx = outs[0];
            pattern = outs[1] ?? null;
          }
          if (pattern) b.output(pattern, N.pattern(l, g), F, [hg, 'r', `keys_${cls}`]);
          contexts.push(b.reshape(ctx, [hg, -1, D]));
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
        z = b.mul(z, b.reshape(b.input(N.headScale(l), F, [H]), [H, 1, 1]));
        z = b.add(z, b.reshape(b.input(N.headAdd(l), F, [H, D]), [H, 1, D]));
      }
      let zq = b.transpose(z, [1, 0, 2]);
      // output() renames the value, so later ops must use the name it returns.
      if (captureZ.has(l)) zq = b.output(zq, N.z(l), F, ['q', H, D]);
      const attn = arch.attnOut(b, weightRef, b.reshape(zq, [0, H * D]), l);
      const h1 = b.add(h, attn);
      return b.add(h1, arch.mlp(b, weightRef, arch.mlpNorm(b, weightRef, h1, l), l));
    });
  }
  const last = b.gather(h, logitsAt, 0);
  const logits = arch.lmHead(b, weightRef, arch.finalNorm(b, weightRef, last));
  b.output(logits, LOGITS, F, ['n', c.vocabSize]);
  return b;
}
