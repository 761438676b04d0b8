/**
 * The half-precision pass on a hand-made one-block graph (norm, q/k matmuls, masked softmax, weighted
 * sum, output projection with bias, residual, final norm, head, a KV output): which values it makes
 * half, where it keeps float32, and that the rewritten graph runs on ONNX Runtime's CPU EP close to the
 * float32 original, with float32 outputs except the KV ones it was told to make half.
 */
import { describe, expect, it } from 'vitest';
import * as ort from 'onnxruntime-node';
import { GraphBuilder } from './builder.js';
import { elementTypes, toHalf, type HalfOptions } from './half.js';
import { DataType } from './onnxProto.js';
import { createSession } from '../runtime/ort.js';

const F = DataType.FLOAT;
const H = DataType.FLOAT16;
const T = 3;
const D = 8;

function values(n: number, seed: number): Float32Array {
  return Float32Array.from({ length: n }, (_, i) => Math.sin(i * 1.7 + seed * 3.1) * 0.5);
}

/** The block, with node names to find them after the pass. */
function block(): GraphBuilder {
  const b = new GraphBuilder('half-test');
  const x = b.input('x', F, [T, D]);
  const mask = b.input('mask', F, [T, T]);
  const past = b.input('past_key.0.0', F, [1, 'p', D]);
  const norm = (v: string) => b.op('SimplifiedLayerNormalization', [v, b.constF32(new Float32Array(D).fill(1.5), [D])], { axis: { int: -1 }, epsilon: { float: 1e-5 }, stash_type: { int: 1 } });
  const n = norm(x);
  const q = b.matmul(n, b.constF32(values(D * D, 1), [D, D]));
  const k = b.matmul(n, b.constF32(values(D * D, 2), [D, D]));
  b.output(b.concat([past, b.unsqueeze(k, [0])], 1), 'present_key.0.0', F, [1, 'k', D]);
  const s = b.add(b.mul(b.matmul(q, b.transpose(k, [1, 0])), b.scalar(1 / Math.sqrt(D))), mask);
  const p = b.output(b.softmax(s, -1), 'pattern', F, [T, T]);
  const o = b.add(b.matmul(b.matmul(p, n), b.constF32(values(D * D, 3), [D, D])), b.constF32(values(D, 4), [D]));
  const h = b.output(b.add(x, o), 'resid', F, [T, D]);
  b.output(b.matmul(norm(h), b.constF32(values(D * 5, 5), [D, 5])), 'logits', F, [T, 5]);
  return b;
}

const KV = { halfIo: (name: string) => name.startsWith('past_') || name.startsWith('present_') } satisfies HalfOptions;

function producerType(g: ReturnType<GraphBuilder['parts']>, types: Map<string, number>, op: string): number[] {
  return g.node.filter((n) => n.opType === op).map((n) => types.get(n.output[0])!);
}

async function run(b: GraphBuilder, past: 'float32' | 'float16'): Promise<ort.InferenceSession.OnnxValueMapType> {
  const session = await createSession(b.toBytes(), { device: 'cpu', threads: 1 });
  const mask = new Float32Array(T * T).map((_, i) => (i % T > Math.floor(i / T) ? -1e30 : 0));
  const pastKey = past === 'float16' ? new ort.Tensor('float16', new Uint16Array(0), [1, 0, D]) : new ort.Tensor('float32', new Float32Array(0), [1, 0, D]);
  try {
    return await session.run({ x: new ort.Tensor('float32', values(T * D, 6).map((v) => v * 4), [T, D]), mask: new ort.Tensor('float32', mask, [T, T]), 'past_key.0.0': pastKey });
  } finally {
    await session.release();
  }
}

function maxAbsDiff(a: ort.Tensor, b: ort.Tensor): number {
  const x = a.data as Float32Array;
  const y = b.data as Float32Array;
  expect(y.length).toBe(x.length);
  return x.reduce((m, v, i) => Math.max(m, Math.abs(v - y[i])), 0);
}

describe('toHalf', () => {
  it('computes matmuls in half and keeps norms, softmax, the masked scores and the residual in float32', () => {
    const b = block();
    const r = toHalf(b.parts(), KV);
    const types = elementTypes(r);
    expect(producerType(r, types, 'MatMul').every((t) => t === H)).toBe(true);
    expect(producerType(r, types, 'SimplifiedLayerNormalization')).toEqual([F, F]);
    expect(producerType(r, types, 'Softmax')).toEqual([F]);
    // The mask Add reads a float32 graph input: float32; the scale Mul before it reads a half matmul: half.
    const adds = r.node.filter((n) => n.opType === 'Add');
    const maskAdd = adds.find((n) => n.input.includes('mask'))!;
    expect(types.get(maskAdd.output[0])).toBe(F);
    expect(types.get(r.node.find((n) => n.opType === 'Mul')!.output[0])).toBe(H);
    // The bias Add follows its half matmul; the residual Add (x + o) is float32.
    const residual = adds.find((n) => n.input[0] === 'x')!;
    expect(types.get(residual.output[0])).toBe(F);
    expect(adds.filter((n) => types.get(n.output[0]) === H)).toHaveLength(1);
    // Boundaries: float32 outputs except the KV, which is half in and out.
    expect(Object.fromEntries(r.output.map((o) => [o.name, o.type.tensorType.elemType]))).toEqual({ 'present_key.0.0': H, pattern: F, resid: F, logits: F });
    expect(r.input.find((i) => i.name === 'past_key.0.0')!.type.tensorType.elemType).toBe(H);
    expect(r.f16Nodes).toBeGreaterThan(0);
    expect(r.castsAdded).toBeGreaterThan(0);
  });

  it('follows the residual back from the norms: float32 Adds by default, half with residual f16', () => {
    // e (half: a matmul's output) + branch, read by the next norm: the residual line.
    const build = () => {
      const b = new GraphBuilder('half-residual');
      const e = b.matmul(b.input('x', F, [T, D]), b.constF32(values(D * D, 7), [D, D]));
      const norm = (v: string) => b.op('SimplifiedLayerNormalization', [v, b.constF32(new Float32Array(D).fill(1), [D])], { axis: { int: -1 }, epsilon: { float: 1e-5 } });
      const h = b.add(e, b.matmul(norm(e), b.constF32(values(D * D, 8), [D, D])));
      b.output(norm(h), 'y', F, [T, D]);
      return b;
    };
    for (const [residual, want] of [['f32', F], ['f16', H]] as const) {
      const r = toHalf(build().parts(), { residual });
      const types = elementTypes(r);
      expect(types.get(r.node.find((n) => n.opType === 'Add')!.output[0]), residual).toBe(want);
      // The norms follow: float32 with a float32 residual, half (float32 statistics inside WebGPU's kernel) with a half one.
      expect(producerType(r, types, 'SimplifiedLayerNormalization'), residual).toEqual([want, want]);
    }
  });

  it('casts a float32 input once for all the half readers behind data-movement nodes (the mask of every GQA)', () => {
    const b = new GraphBuilder('half-move');
    const m = b.input('mask', F, [T, T]);
    const x = b.input('x', F, [T, T]);
    for (let l = 0; l < 3; l++) b.output(b.matmul(b.unsqueeze(m, [0]), b.unsqueeze(x, [0])), `y${l}`, F, [1, T, T]);
    const r = toHalf(b.parts());
    const types = elementTypes(r);
    expect(producerType(r, types, 'Unsqueeze').every((t) => t === H)).toBe(true);
    expect(r.node.filter((n) => n.opType === 'Clip')).toHaveLength(2);
    expect(r.node.filter((n) => n.opType === 'Cast' && (n.input[0] === 'mask#clip' || n.input[0] === 'x#clip'))).toHaveLength(2);
  });

  it('runs on the CPU EP close to the float32 graph, outputs float32 but the KV (float16)', async () => {
    const ref = await run(block(), 'float32');
    const b = block();
    b.rewrite((g) => toHalf(g, KV));
    const half = await run(b, 'float16');
    expect(half.logits.type).toBe('float32');
    expect(half.pattern.type).toBe('float32');
    expect(half.resid.type).toBe('float32');
    expect(half['present_key.0.0'].type).toBe('float16');
    const dLogits = maxAbsDiff(ref.logits, half.logits);
    const dPattern = maxAbsDiff(ref.pattern, half.pattern);
    const dResid = maxAbsDiff(ref.resid, half.resid);
    console.info(`[headwise tests] half pass, hand-made block on cpu: max |Δ| logits ${dLogits.toExponential(2)}, pattern ${dPattern.toExponential(2)}, resid ${dResid.toExponential(2)}`);
    expect(dLogits).toBeLessThan(2e-2);
    expect(dPattern).toBeLessThan(5e-3);
    expect(dResid).toBeLessThan(1e-2);
    expect(dLogits).toBeGreaterThan(0); // it did compute in half
    // Masked entries stay exactly zero (the −1e30 mask is added in float32).
    const p = half.pattern.data as Float32Array;
    expect(p[1]).toBe(0);
    expect(p[2]).toBe(0);
  });

  it('clips a float32 graph input read by a half node to ±65504 before the cast (−1e30 stays finite)', async () => {
    const b = new GraphBuilder('half-clip');
    const x = b.input('x', F, [1, 2]);
    b.output(b.matmul(x, b.constF32([1, 0, 0, 1], [2, 2])), 'y', F, [1, 2]);
    b.rewrite((g) => toHalf(g));
    const session = await createSession(b.toBytes(), { device: 'cpu', threads: 1 });
    const y = (await session.run({ x: new ort.Tensor('float32', Float32Array.from([-1e30, 2]), [1, 2]) })).y.data as Float32Array;
    await session.release();
    expect(Array.from(y)).toEqual([-65504, 2]);
  });

  it('refuses graphs with subgraphs (the append-mode If)', () => {
    const b = new GraphBuilder('half-if');
    const c = b.input('c', DataType.BOOL, []);
    const then = b.subgraph('a', (sb) => [{ value: sb.scalar(1), elemType: F, dims: [] }]);
    const other = b.subgraph('b', (sb) => [{ value: sb.scalar(2), elemType: F, dims: [] }]);
    b.output(b.ifElse(c, then.body, other.body, 1)[0], 'y', F, []);
    expect(() => toHalf(b.parts())).toThrow(/If .* has subgraphs/);
  });
});
