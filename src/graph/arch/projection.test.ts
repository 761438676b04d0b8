/**
 * Fused projections: the graph a Llama-family layer builds (one linear node for q|k|v, one for
 * gate|up, split after), the stacks each family declares, and the stored stacked tensors of the
 * tiny-llama fixture checked against its parts in every weight format — f32 rows, GPU transposes,
 * f16 and the q8/q4 codes and scales equal to quantising each part alone (stacking rows is exact).
 * That the fused graphs compute what Hugging Face does is the conformance tests' job.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Checkpoint } from '../../hf/checkpoint.js';
import { GraphBuilder } from '../builder.js';
import { buildDecoderGraph } from '../decoder.js';
import { NO_HOOKS } from '../hooks.js';
import { uniformLayout } from '../layout.js';
import { blockCount, quantizeBlocks, toFloat16Bits } from '../quant.js';
import { ensureWeights, stackRows, transpose2d } from '../weights.js';
import { ARCHITECTURES } from './index.js';
import { project, projectionStacks, stackName } from './projection.js';

const FIXTURES = path.resolve('test/fixtures/models');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'headwise-projection-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

describe('project', () => {
  it('stacked weights: one linear node, then one Split into the pieces', () => {
    const b = new GraphBuilder('t');
    const x = b.input('x', 1, ['q', 8]);
    const pieces = project(b, (n) => n, x, { weights: ['q', 'k', 'v'], biases: ['qb', 'kb', 'vb'], sizes: [8, 4, 4] });
    expect(pieces).toHaveLength(3);
    expect(b.opTypes()).toEqual(['Gemm', 'Split']);
    expect(b.reads('q+k+v')).toBe(true);
    expect(b.reads('qb+kb+vb')).toBe(true);
  });

  it('one piece needs no Split; per-head layouts split each head (gpt_neox)', () => {
    const one = new GraphBuilder('t');
    expect(project(one, (n) => n, one.input('x', 1, ['q', 8]), { weights: ['w'], sizes: [8] })).toHaveLength(1);
    expect(one.opTypes()).toEqual(['Gemm']);
    const heads = new GraphBuilder('t');
    project(heads, (n) => n, heads.input('x', 1, ['q', 8]), { weights: ['qkv'], sizes: [2, 2, 2], perHead: 4 });
    expect(heads.opTypes()).toEqual(['Gemm', 'Reshape', 'Split', 'Reshape', 'Reshape', 'Reshape']);
  });

  it('declares a stack only for several tensors', () => {
    expect(projectionStacks({ weights: ['a'], biases: ['ab'], sizes: [1, 1] })).toEqual([]);
    expect(projectionStacks({ weights: ['a', 'b'], biases: ['ab', 'bb'], sizes: [1, 1] })).toEqual([
      { name: 'a+b', parts: ['a', 'b'] }, { name: 'ab+bb', parts: ['ab', 'bb'] },
    ]);
    expect(stackName(['a'])).toBe('a');
  });
});

describe('a layer of each family', () => {
  const linearNodes = (family: string) => {
    const ckpt = Checkpoint.open(path.join(FIXTURES, family));
    try {
      const c = ckpt.config;
      const arch = ARCHITECTURES[c.family](c);
      const b = buildDecoderGraph(c, arch, (n) => n, { layout: uniformLayout(c.numLayers, c.numKvHeads), hooks: NO_HOOKS });
      const declared = new Set([...arch.weights.map((w) => w.name), ...(arch.stacks ?? []).map((s) => s.name)]);
      return { arch, ops: b.opTypes(), declared, layers: c.numLayers };
    } finally {
      ckpt.close();
    }
  };

  it('llama: two projection matmuls per layer besides o and down (q|k|v, gate|up), each stack declared', () => {
    const { arch, ops, layers } = linearNodes('tiny-llama');
    // Per layer q|k|v, o, gate|up, down; then the LM head.
    expect(ops.filter((o) => o === 'Gemm')).toHaveLength(4 * layers + 1);
    expect(arch.stacks!.map((s) => s.name)).toContain('model.layers.0.self_attn.q_proj.weight+model.layers.0.self_attn.k_proj.weight+model.layers.0.self_attn.v_proj.weight');
    expect(arch.stacks!.map((s) => s.name)).toContain('model.layers.0.mlp.gate_proj.weight+model.layers.0.mlp.up_proj.weight');
  });

  it('qwen2 stacks its q/k/v biases; phi3 reads its own fused tensors and declares no stacks', () => {
    const qwen = linearNodes('tiny-qwen2');
    expect(qwen.arch.stacks!.map((s) => s.name)).toContain('model.layers.0.self_attn.q_proj.bias+model.layers.0.self_attn.k_proj.bias+model.layers.0.self_attn.v_proj.bias');
    const phi3 = linearNodes('tiny-phi3');
    expect(phi3.arch.stacks).toEqual([]);
    expect(phi3.ops.filter((o) => o === 'Gemm')).toHaveLength(4 * phi3.layers + 1);
  });

  it('mixture of experts: gate|up stacked per expert', () => {
    const { arch } = linearNodes('tiny-mixtral');
    expect(arch.stacks!.map((s) => s.name)).toContain('model.layers.0.block_sparse_moe.experts.0.w1.weight+model.layers.0.block_sparse_moe.experts.0.w3.weight');
  });
});

describe('stored stacks (tiny-llama)', () => {
  const ckpt = Checkpoint.open(path.join(FIXTURES, 'tiny-llama'));
  afterAll(() => ckpt.close());
  const c = ckpt.config;
  const a = 'model.layers.0.self_attn';
  const qDim = c.numHeads * c.headDim;
  const kvDim = c.numKvHeads * c.headDim;
  const H = c.hiddenSize;
  const parts = [
    { name: `${a}.q_proj.weight`, shape: [qDim, H] },
    { name: `${a}.k_proj.weight`, shape: [kvDim, H] },
    { name: `${a}.v_proj.weight`, shape: [kvDim, H] },
  ];
  const name = stackName(parts.map((p) => p.name));
  const N = qDim + 2 * kvDim;
  const stacked = () => {
    const out = new Float32Array(N * H);
    let o = 0;
    for (const p of parts) {
      const w = ckpt.read(p.name, p.shape);
      out.set(w, o);
      o += w.length;
    }
    return out;
  };
  const read = (file: string, t: { offset: number; length: number }) => {
    const buf = fs.readFileSync(path.join(tmp, file));
    return buf.subarray(t.offset, t.offset + t.length);
  };

  it('stackRows reads the parts one after another', () => {
    expect(Array.from(stackRows(ckpt, parts))).toEqual(Array.from(stacked()));
  });

  it('f32 rows and the GPU transpose are the parts stacked', () => {
    const m = ensureWeights(ckpt, [
      { name, shape: [N, H], rows: parts },
      { name: `${name}^T`, source: name, shape: [H, N], transpose: true, rows: parts },
    ], tmp, 'f32.bin');
    const bytes = (x: Float32Array) => Buffer.from(x.buffer, x.byteOffset, x.byteLength);
    expect(read('f32.bin', m.tensors[name]).equals(bytes(stacked()))).toBe(true);
    expect(read('f32.bin', m.tensors[`${name}^T`]).equals(bytes(transpose2d(stacked(), N, H)))).toBe(true);
  });

  it('f16, q8 and q4 encodings equal encoding each part alone, concatenated', () => {
    const m16 = ensureWeights(ckpt, [{ name, shape: [N, H], rows: parts, encode: { kind: 'f16' } }], tmp, 'f16.bin');
    const half = toFloat16Bits(transpose2d(stacked(), N, H));
    expect(read('f16.bin', m16.tensors[`${name}#f16`]).equals(Buffer.from(half.buffer))).toBe(true);
    for (const bits of [8, 4] as const) {
      const file = `q${bits}.bin`;
      const m = ensureWeights(ckpt, [{ name, shape: [N, H], rows: parts, encode: { kind: 'blocks', bits, blockSize: 32 } }], tmp, file);
      const each = parts.map((p) => quantizeBlocks(ckpt.read(p.name, p.shape), p.shape[0], H, bits, 32));
      const codes = Buffer.concat(each.map((q) => Buffer.from(q.codes)));
      const scales = Buffer.concat(each.map((q) => Buffer.from(q.scales.buffer, q.scales.byteOffset, q.scales.byteLength)));
      expect(m.tensors[`${name}#q`].shape).toEqual([N, blockCount(H, 32), (32 * bits) / 8]);
      expect(read(file, m.tensors[`${name}#q`]).equals(codes)).toBe(true);
      expect(read(file, m.tensors[`${name}#s`]).equals(scales)).toBe(true);
    }
  });
});
