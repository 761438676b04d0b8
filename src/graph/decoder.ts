/**
 * Builds the ONNX graph of a decoder-only transformer from an architecture file: embeddings, blocks,
 * final norm and LM head, with attention written out op by op (scores, mask, softmax, weighted sum)
 * so every head's pattern and output can be hooked. One call processes `q` new tokens of one
 * sequence on top of a KV cache laid out in groups (`layout.ts`); shapes drop the batch axis.
 *
 * Inputs: input_ids [q], position_ids [q], logits_at [n], mask.{class} [q, keys], past_key/value.{l}.{g}
 * [groupKvHeads, past, headDim], plus the hook inputs asked for. Outputs: logits [n, vocab],
 * present_key/value.{l}.{g}, plus the hook outputs asked for.
 */
import type { ModelConfig } from '../hf/config.js';
import { GraphBuilder, type Value } from './builder.js';
import type { Arch } from './arch/arch.js';
import { hookNames as N, INPUT_IDS, LOGITS, LOGITS_AT, POSITION_IDS, type HookOptions } from './hooks.js';
import { groupQueryHeads, layoutClasses, type KvLayout } from './layout.js';
import { DataType } from './onnxProto.js';
import { ropeInverseFrequencies } from './rope.js';

export interface DecoderGraphOptions {
  layout: KvLayout;
  hooks: HookOptions;
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

  const ids = b.input(INPUT_IDS, I, ['q']);
  const pos = b.input(POSITION_IDS, I, ['q']);
  const logitsAt = b.input(LOGITS_AT, I, ['n']);
  const masks = new Map<string, Value>();
  for (const cls of layoutClasses(opts.layout)) masks.set(cls, b.input(N.mask(cls), F, ['q', `keys_${cls}`]));

  let rope: { cos: Value; sin: Value } | null = null;
  if (arch.usesRope) {
    rope = b.scope('rope', () => {
      const invFreq = b.constF32(ropeInverseFrequencies(c), [1, D / 2]);
      const freqs = b.mul(b.unsqueeze(b.cast(pos, F), [1]), invFreq);
      const emb = b.concat([freqs, freqs], 1);
      return { cos: b.op('Cos', [emb]), sin: b.op('Sin', [emb]) };
    });
  }
  const applyRope = (x: Value): Value => {
    // x: [heads, q, D]; rotate_half(x) = cat(-x2, x1)
    const [x1, x2] = b.split(x, [D / 2, D / 2], 2);
    const rotated = b.concat([b.op('Neg', [x2]), x1], 2);
    return b.add(b.mul(x, rope!.cos), b.mul(rotated, rope!.sin));
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
      let { q, k, v } = arch.qkv(b, weightRef, x, l);
      let q3 = b.reshape(q, [0, H, D]);
      let k3 = b.reshape(k, [0, Hkv, D]);
      if (arch.qkNorm) ({ q: q3, k: k3 } = arch.qkNorm(b, weightRef, q3, k3, l));
      // [q, heads, D] -> [heads, q, D]
      let qh = b.transpose(q3, [1, 0, 2]);
      let kh = b.transpose(k3, [1, 0, 2]);
      const vh = b.transpose(b.reshape(v, [0, Hkv, D]), [1, 0, 2]);
      if (rope) {
        qh = applyRope(qh);
        kh = applyRope(kh);
      }
      qh = b.mul(qh, scale);

      const groups = opts.layout[l];
      const order: number[] = [];
      const contexts: Value[] = [];
      groups.forEach((group, g) => {
        b.scope(`attn.${g}`, () => {
          const qHeads = groupQueryHeads(group, H, Hkv);
          const whole = group.kvHeads.length === Hkv;
          const nkv = group.kvHeads.length;
          const hg = qHeads.length;
          const qg = whole ? qh : b.gather(qh, b.constI64(qHeads), 0);
          const kg = whole ? kh : b.gather(kh, b.constI64(group.kvHeads), 0);
          const vg = whole ? vh : b.gather(vh, b.constI64(group.kvHeads), 0);
          const keys = b.concat([b.input(N.pastKey(l, g), F, [nkv, `past_${group.cacheClass}`, D]), kg], 1);
          const values = b.concat([b.input(N.pastValue(l, g), F, [nkv, `past_${group.cacheClass}`, D]), vg], 1);
          b.output(keys, N.presentKey(l, g), F, [nkv, `total_${group.cacheClass}`, D]);
          b.output(values, N.presentValue(l, g), F, [nkv, `total_${group.cacheClass}`, D]);
          // GQA: the rep query heads of a KV head share one matmul against its keys.
          const scores = b.matmul(b.reshape(qg, [nkv, -1, D]), b.transpose(keys, [0, 2, 1]));
          let s = b.add(b.reshape(scores, [hg, -1, 0]), masks.get(group.cacheClass)!);
          if (biasLayers.has(l)) s = b.add(s, b.input(N.scoreBias(l, g), F, [hg, 'q', `total_${group.cacheClass}`]));
          let p = b.softmax(s, -1);
          if (actLayers.has(l)) {
            const m = b.input(N.actMask(l, g), F, [hg, 1, `total_${group.cacheClass}`]);
            const beta = b.input(N.actBeta(l, g), F, [hg, 1, 1]);
            // A' = A·m·β + A·(1−m)·(1−β·S)/(1−S), S = Σ A·m: damp hidden sinks, give the mass to the rest.
            const am = b.mul(p, m);
            const sinkMass = b.reduceSum(am, [-1]);
            const one = b.scalar(1);
            const rest = b.div(b.sub(one, b.mul(beta, sinkMass)), b.op('Max', [b.sub(one, sinkMass), b.scalar(1e-9)]));
            p = b.add(b.mul(am, beta), b.mul(b.sub(p, am), rest));
          }
          if (capture.has(l)) {
            const rows = g === 0 ? b.input(N.captureRows(l), I, ['r']) : N.captureRows(l);
            b.output(b.gather(p, rows, 1), N.pattern(l, g), F, [hg, 'r', `total_${group.cacheClass}`]);
          }
          const ctx = b.matmul(b.reshape(p, [nkv, -1, 0]), values);
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
      const zq = b.transpose(z, [1, 0, 2]);
      if (captureZ.has(l)) b.output(zq, N.z(l), F, ['q', H, D]);
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
