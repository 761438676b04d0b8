/**
 * Whether ONNX Runtime's fused GroupQueryAttention (`graph/fusedAttention.ts`) computes attention
 * right on this process's WebGPU adapter, for a model's head shape: one GQA node run on webgpu and on
 * the CPU with 40 new tokens and no past, once with a causal `attention_bias` (as the GPU graph feeds
 * masked classes) and once without (GQA's own causal rule, the causal classes of `leanAttention.ts`;
 * on the WebGPU EP the flash-attention kernel where the adapter has subgroups). The GPU graph attends
 * fused by default only where both agree (`Model.session`).
 *
 * Why: ORT 1.30's WebGPU kernel is wrong on Mesa's lavapipe from 32 new tokens in one call on
 * (max |Δ| ~5e-2 on unit-scale inputs, with or without a bias; below 32, and decode, it agrees to
 * ~5e-7), while on the H200 it matched the CPU in 86-token chunks. A device whose kernel disagrees
 * keeps the explicit attention graph instead of giving wrong logits.
 */
import { GraphBuilder } from '../graph/builder.js';
import { DataType } from '../graph/onnxProto.js';
import { createSession, ort } from './ort.js';

/** New tokens of the probe call: past the 32 from which lavapipe goes wrong. */
const QUERIES = 40;
/** Agreement bound on unit-scale inputs (agreeing kernels differ by ~1e-6). */
const TOLERANCE = 1e-3;

const probes = new Map<string, Promise<boolean>>();

function gqaGraph(heads: number, kvHeads: number, headDim: number, biased: boolean): Uint8Array {
  const b = new GraphBuilder('fused-attention-probe');
  const F = DataType.FLOAT;
  const ins = [
    b.input('q', F, [1, QUERIES, heads * headDim]),
    b.input('k', F, [1, QUERIES, kvHeads * headDim]),
    b.input('v', F, [1, QUERIES, kvHeads * headDim]),
    b.input('past_k', F, [1, kvHeads, 0, headDim]),
    b.input('past_v', F, [1, kvHeads, 0, headDim]),
    b.input('seqlens_k', DataType.INT32, [1]),
    b.input('total', DataType.INT32, []),
  ];
  const bias = biased ? [b.input('bias', F, [1, 1, QUERIES, QUERIES])] : [];
  const [out] = b.node('GroupQueryAttention', biased ? [...ins, '', '', '', ...bias] : ins, { num_heads: { int: heads }, kv_num_heads: { int: kvHeads }, scale: { float: 1 / Math.sqrt(headDim) } }, { domain: 'com.microsoft', outputs: 3 });
  b.output(out, 'out', F, [1, QUERIES, heads * headDim]);
  return b.toBytes();
}

function feeds(heads: number, kvHeads: number, headDim: number, biased: boolean): Record<string, ort.Tensor> {
  const wave = (n: number, phase: number) => Float32Array.from({ length: n }, (_, i) => Math.sin(i * 1.7 + phase));
  const mask = new Float32Array(QUERIES * QUERIES);
  for (let i = 0; i < QUERIES; i++) for (let j = i + 1; j < QUERIES; j++) mask[i * QUERIES + j] = -1e30;
  return {
    q: new ort.Tensor('float32', wave(QUERIES * heads * headDim, 1), [1, QUERIES, heads * headDim]),
    k: new ort.Tensor('float32', wave(QUERIES * kvHeads * headDim, 2), [1, QUERIES, kvHeads * headDim]),
    v: new ort.Tensor('float32', wave(QUERIES * kvHeads * headDim, 3), [1, QUERIES, kvHeads * headDim]),
    past_k: new ort.Tensor('float32', new Float32Array(0), [1, kvHeads, 0, headDim]),
    past_v: new ort.Tensor('float32', new Float32Array(0), [1, kvHeads, 0, headDim]),
    seqlens_k: new ort.Tensor('int32', Int32Array.of(QUERIES - 1), [1]),
    total: new ort.Tensor('int32', Int32Array.of(QUERIES), []),
    ...(biased ? { bias: new ort.Tensor('float32', mask, [1, 1, QUERIES, QUERIES]) } : {}),
  };
}

/** Max |webgpu − cpu| of the probe calls (with and without a bias) for this head shape. */
export async function fusedAttentionDeviation(heads: number, kvHeads: number, headDim: number): Promise<number> {
  let worst = 0;
  for (const biased of [true, false]) {
    const graph = gqaGraph(heads, kvHeads, headDim, biased);
    const outs: Float32Array[] = [];
    for (const device of ['cpu', 'webgpu'] as const) {
      const s = await createSession(graph, { device, threads: 1 });
      try {
        outs.push((await s.run(feeds(heads, kvHeads, headDim, biased))).out.data as Float32Array);
      } finally {
        await s.release();
      }
    }
    if (Number.isNaN(outs[1].reduce((a, x) => a + x, 0))) return Infinity;
    for (let i = 0; i < outs[0].length; i++) worst = Math.max(worst, Math.abs(outs[0][i] - outs[1][i]));
  }
  return worst;
}

/** Whether fused attention of this head shape agrees with the CPU on this WebGPU adapter (memoized). */
export function fusedAttentionAgrees(heads: number, kvHeads: number, headDim: number): Promise<boolean> {
  const key = `${heads}/${kvHeads}/${headDim}`;
  let p = probes.get(key);
  if (!p) {
    p = fusedAttentionDeviation(heads, kvHeads, headDim).then((d) => d <= TOLERANCE, () => false);
    probes.set(key, p);
  }
  return p;
}
