/**
 * Half precision for a built graph: a post-pass that rewrites float32 computation to float16, keeping
 * float32 where precision matters, for the GPU graph of `--weights f16` (compile.ts).
 *
 * What stays float32 (the block list):
 * - normalization nodes (SimplifiedLayerNormalization, SkipSimplifiedLayerNormalization — whose sum
 *   output is the residual stream —, LayerNormalization: input, statistics, output;
 *   with `residual: 'f16'` they take and give half instead — ONNX Runtime's WebGPU kernel sums x and
 *   x² in float32 whatever the input type, so the statistics stay float32 and no cast is needed)
 *   and Softmax (the explicit attention's probabilities, and everything that follows from them until
 *   the next matmul: ACT, pattern capture, MoE routing);
 * - RoPE tables (nodes in a `rope.*` scope): positions times inverse frequencies overflow half's
 *   11-bit mantissa past 2048 tokens, so cos/sin are computed in float32 and cast for RotaryEmbedding;
 * - the residual stream (`residual: 'f32'`, the default): each norm's input is followed back through
 *   its chain of residual Adds (the decoder writes `residual + branch`, residual first), and those Adds
 *   compute in float32, the branch output cast up once per block;
 * - anything reading a float32 graph input (the mask, score bias, head hooks): the additive mask stays
 *   exact where it is added in float32; where a half node reads it (GroupQueryAttention's bias) it is
 *   clipped to ±65504 first, so −1e30 becomes a finite half, not −inf.
 *
 * What becomes float16: MatMul, Gemm, FusedMatMul, GroupQueryAttention (whose WebGPU flash-attention
 * shader keeps scores, running max and denominators in f16, exp in f32), RotaryEmbedding always (their
 * float inputs cast down); every other node follows its inputs: float32 if any float input is float32
 * (a float32 node's output or a graph input), else float16 if any is a computed half value, else
 * (constants only, which ONNX Runtime folds) float32 — but a data-movement node (Reshape, Unsqueeze,
 * Transpose, …) read only by half ops is half, so its input is cast once, not once per reader. Inline float constants get a half twin where a
 * half node reads them; external float32 weights (norm weights, biases) a Cast. Existing Casts to
 * FLOAT/FLOAT16 of float values become no-ops and are dropped.
 *
 * Boundaries: graph inputs and outputs keep float32, with Casts inserted, except those named by
 * `halfIo` (the KV cache past/present, which then stay half on the device and take half the bytes).
 * So every hook output, and the logits, come back as float32 and every reader is unchanged.
 */
import { toFloat16Bits } from './quant.js';
import { AttrType, DataType, type DataTypeId } from './onnxProto.js';
import type { GraphParts, NodeRecord, TensorRecord, ValueInfoRecord } from './builder.js';

export interface HalfOptions {
  /** `f32` (default): residual Adds in float32; `f16`: the residual stream in half too. */
  residual?: 'f32' | 'f16';
  /** Graph inputs/outputs (by name) that become float16 instead of being cast at the boundary. */
  halfIo?: (name: string) => boolean;
  /** Op types kept float32 beside the defaults (`HALF_BLOCK_LIST`). */
  keepOps?: readonly string[];
}

/** Ops computed in float32 whatever their inputs. */
export const HALF_BLOCK_LIST: readonly string[] = ['SimplifiedLayerNormalization', 'SkipSimplifiedLayerNormalization', 'LayerNormalization', 'Softmax'];
/** Ops computed in float16 whatever their inputs: the matmuls and what the GPU kernels fuse around them. */
export const HALF_OPS: readonly string[] = ['MatMul', 'Gemm', 'FusedMatMul', 'GroupQueryAttention', 'RotaryEmbedding'];
const NORM_OPS = new Set(['SimplifiedLayerNormalization', 'SkipSimplifiedLayerNormalization', 'LayerNormalization']);
/** Ops that only move data: computed in half when every reader is a half op (one cast of their input, e.g. the mask for every layer's GQA). */
const MOVE_OPS = new Set(['Reshape', 'Unsqueeze', 'Squeeze', 'Transpose', 'Identity', 'Expand', 'Flatten']);
const BOOL_OUT = new Set(['Greater', 'Less', 'Equal', 'GreaterOrEqual', 'LessOrEqual', 'Not', 'And', 'Or', 'Xor', 'IsNaN', 'IsInf']);
const INT64_OUT = new Set(['Shape', 'Size', 'ArgMax', 'ArgMin', 'NonZero']);
const F = DataType.FLOAT;
const H = DataType.FLOAT16;
const HALF_MAX = 65504;

type Precision = 'f32' | 'f16';

/** A rewritten graph and what the pass did (for tests and logs). */
export interface HalfResult extends GraphParts {
  /** Nodes computed in float32 / float16 (Casts the pass added not counted). */
  f32Nodes: number;
  f16Nodes: number;
  /** Casts inserted (inputs, outputs, block-list boundaries, weights). */
  castsAdded: number;
}

function attrOf(n: NodeRecord, name: string): Record<string, unknown> | undefined {
  return n.attribute.find((a) => a.name === name);
}

function castTo(n: NodeRecord): number {
  return Number(attrOf(n, 'to')?.i);
}

/** Element types of every value of a graph (the builder's ops only; before or after the pass). */
export function elementTypes(g: GraphParts): Map<string, number> {
  const types = new Map<string, number>();
  for (const i of g.input) types.set(i.name, i.type.tensorType.elemType);
  for (const t of g.initializer) types.set(t.name, t.dataType);
  for (const n of g.node) {
    if (n.opType === 'If' || n.opType === 'Loop' || n.opType === 'Scan') throw new Error(`half: ${n.opType} (${n.name}) has subgraphs; only the present-mode graph is rewritten`);
    const first = types.get(n.input.find((i) => i) ?? '') ?? F;
    n.output.forEach((o, k) => {
      let t = first;
      if (n.opType === 'Cast') t = castTo(n);
      else if (BOOL_OUT.has(n.opType)) t = DataType.BOOL;
      else if (INT64_OUT.has(n.opType) || (n.opType === 'TopK' && k === 1)) t = DataType.INT64;
      else if (n.opType === 'Where') t = types.get(n.input[1]) ?? F;
      else if (n.opType === 'ConstantOfShape' || n.opType === 'Constant') t = Number((attrOf(n, 'value')?.t as TensorRecord | undefined)?.dataType ?? F);
      types.set(o, t);
    });
  }
  return types;
}

/** The residual Adds: from each norm's input back along `Add` input 0 (and the logits-row Gather). */
function residualNodes(g: GraphParts, initializers: Set<string>): Set<NodeRecord> {
  const producer = new Map<string, NodeRecord>();
  for (const n of g.node) for (const o of n.output) producer.set(o, n);
  const out = new Set<NodeRecord>();
  const follow = (v: string) => {
    for (let p = producer.get(v); p && !out.has(p); p = producer.get(p.input[0])) {
      const gatherRows = p.opType === 'Gather' && !initializers.has(p.input[0]);
      if (p.opType !== 'Add' && !gatherRows) return;
      out.add(p);
    }
  };
  for (const n of g.node) if (NORM_OPS.has(n.opType)) follow(n.input[0]);
  return out;
}

function f32Bytes(t: TensorRecord): Float32Array | null {
  if (!t.rawData) return null;
  const raw = t.rawData;
  return new Float32Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength));
}

/** The half twin of an inline float32 tensor (rawData); null for external data. */
function halfTensor(t: TensorRecord, name: string): TensorRecord | null {
  const f = f32Bytes(t);
  return f ? { name, dims: t.dims, dataType: H, rawData: new Uint8Array(toFloat16Bits(f).buffer) } : null;
}

/**
 * Rewrites `g` (nodes in topological order, as the builder writes them) to compute in half precision
 * as the header says.
 * @example toHalf(builder.parts()).f16Nodes // nodes now computed in float16
 */
export function toHalf(g: GraphParts, opts: HalfOptions = {}): HalfResult {
  const halfIo = opts.halfIo ?? (() => false);
  const halfResidual = opts.residual === 'f16';
  const block = new Set([...HALF_BLOCK_LIST.filter((op) => !(halfResidual && NORM_OPS.has(op))), ...(opts.keepOps ?? [])]);
  const halfOps = new Set(HALF_OPS);
  const types = elementTypes(g);
  const inits = new Map(g.initializer.map((t) => [t.name, t]));
  const residual = halfResidual ? new Set<NodeRecord>() : residualNodes(g, new Set(inits.keys()));
  const isFloat = (v: string) => types.get(v) === F || types.get(v) === H;
  const readers = new Map<string, NodeRecord[]>();
  for (const n of g.node) for (const i of n.input) if (i) readers.set(i, [...(readers.get(i) ?? []), n]);
  const graphOutputs = new Set(g.output.map((o) => o.name));
  const feedsHalfOnly = (n: NodeRecord) => n.output.every((o) => !graphOutputs.has(o) && (readers.get(o) ?? []).length > 0 && readers.get(o)!.every((r) => halfOps.has(r.opType)));

  // Precision of each computed float value (graph inputs and node outputs); float initializers are not in it.
  const prec = new Map<string, Precision>();
  // Float values that come from graph inputs through float32 nodes alone (clipped before a cast to half).
  const fromInput = new Set<string>();
  const inputs: ValueInfoRecord[] = g.input.map((i) => {
    if (i.type.tensorType.elemType !== F) return i;
    const half = halfIo(i.name);
    prec.set(i.name, half ? 'f16' : 'f32');
    if (!half) fromInput.add(i.name);
    return half ? { ...i, type: { tensorType: { ...i.type.tensorType, elemType: H } } } : i;
  });
  for (const t of g.initializer) if (t.dataType === H) prec.set(t.name, 'f16');
  const outputType = new Map(g.output.map((o) => [o.name, o.type.tensorType.elemType === F && halfIo(o.name) ? H : o.type.tensorType.elemType]));

  const nodes: NodeRecord[] = [];
  const added: TensorRecord[] = [];
  const alias = new Map<string, string>();
  const converted = new Map<string, string>();
  let castsAdded = 0;
  let f32Nodes = 0;
  let f16Nodes = 0;
  const resolve = (v: string) => alias.get(v) ?? v;
  const castNode = (from: string, to: string, type: DataTypeId, name: string): void => {
    nodes.push({ opType: 'Cast', input: [from], output: [to], name, attribute: [{ name: 'to', type: AttrType.INT, i: type }] });
    castsAdded++;
  };
  const constant = (name: string, values: number[]): string => {
    if (!inits.has(name) && !added.some((t) => t.name === name)) added.push({ name, dims: [], dataType: F, rawData: new Uint8Array(Float32Array.from(values).buffer) });
    return name;
  };

  /** `v` (resolved) in the precision `p`: itself, a half twin of a constant, or a Cast (memoised). */
  const as = (v: string, p: Precision): string => {
    const cur = prec.get(v);
    if (cur === p || (cur === undefined && p === 'f32')) return v;
    const key = `${v}#${p === 'f16' ? 'h' : 'f'}`;
    const hit = converted.get(key);
    if (hit) return hit;
    const init = cur === undefined ? inits.get(v) : undefined;
    const twin = init ? halfTensor(init, key) : null;
    if (twin) {
      added.push(twin);
    } else {
      let src = v;
      if (p === 'f16' && fromInput.has(v)) {
        src = `${v}#clip`;
        nodes.push({ opType: 'Clip', input: [v, constant('half#min', [-HALF_MAX]), constant('half#max', [HALF_MAX])], output: [src], name: `${v}/HalfClip`, attribute: [] });
      }
      castNode(src, key, p === 'f16' ? H : F, `${v}/HalfCast`);
    }
    prec.set(key, p);
    converted.set(key, key);
    return key;
  };

  /** A float output: renamed when it is a graph output of another element type (cast back at the end). */
  const emitOutput = (o: string, p: Precision): string => {
    prec.set(o, p);
    const want = outputType.get(o);
    if (want === undefined || want === (p === 'f16' ? H : F)) return o;
    const inner = `${o}#${p === 'f16' ? 'h' : 'f'}out`;
    prec.set(inner, p);
    alias.set(o, inner);
    return inner;
  };

  for (const n of g.node) {
    const ins = n.input.map((i) => (i ? resolve(i) : i));
    const floatIns = ins.filter((i, k) => i && isFloat(n.input[k]));
    if (n.opType === 'Cast' && (castTo(n) === F || castTo(n) === H) && floatIns.length) {
      // A Cast between float types: the value already has the precision the pass gave it.
      const src = floatIns[0];
      const p = prec.get(src) ?? 'f32';
      const o = n.output[0];
      if (outputType.has(o)) {
        const want: Precision = outputType.get(o) === H ? 'f16' : 'f32';
        nodes.push({ ...n, input: [src], attribute: [{ name: 'to', type: AttrType.INT, i: want === 'f16' ? H : F }] });
        prec.set(o, want);
      } else {
        alias.set(o, as(src, castTo(n) === H ? 'f16' : p));
      }
      continue;
    }
    let p: Precision;
    if (block.has(n.opType) || residual.has(n) || n.name.split('/').some((s) => s.startsWith('rope.'))) p = 'f32';
    else if (halfOps.has(n.opType) || (n.opType === 'Cast' && castTo(n) === H) || (MOVE_OPS.has(n.opType) && feedsHalfOnly(n))) p = 'f16';
    else if (floatIns.some((i) => prec.get(i) === 'f32')) p = 'f32';
    else if (floatIns.some((i) => prec.get(i) === 'f16')) p = 'f16';
    else p = floatIns.length ? 'f32' : n.opType === 'Cast' ? (castTo(n) === F ? 'f16' : 'f32') : 'f16';
    if (p === 'f32') f32Nodes++;
    else f16Nodes++;
    const input = ins.map((i, k) => (i && isFloat(n.input[k]) ? as(i, p) : i));
    let attribute = n.attribute;
    if (n.opType === 'Cast' && castTo(n) === F) attribute = [{ name: 'to', type: AttrType.INT, i: p === 'f16' ? H : F }];
    if ((n.opType === 'ConstantOfShape' || n.opType === 'Constant') && p === 'f16') {
      attribute = n.attribute.map((a) => {
        const t = a.t as TensorRecord | undefined;
        return a.name === 'value' && t && t.dataType === F ? { ...a, t: halfTensor(t, t.name) ?? t } : a;
      });
    }
    const output = n.output.map((o) => (isFloat(o) ? emitOutput(o, p) : o));
    if (p === 'f32' && floatIns.some((i) => fromInput.has(i)) && floatIns.every((i) => fromInput.has(i) || inits.has(i))) for (const o of output) fromInput.add(o);
    nodes.push({ ...n, input, output, attribute });
  }

  // Graph outputs in the element type they are declared with (float32 unless halfIo).
  const outputs = g.output.map((o) => {
    const want = outputType.get(o.name)!;
    const inner = alias.get(o.name);
    if (inner && inner !== o.name) castNode(inner, o.name, want as DataTypeId, `${o.name}/HalfCast`);
    else if (!inner && prec.has(o.name) && (prec.get(o.name) === 'f16') !== (want === H)) throw new Error(`half: output ${o.name} is not produced by a node`);
    return want === o.type.tensorType.elemType ? o : { ...o, type: { tensorType: { ...o.type.tensorType, elemType: want } } };
  });

  const read = new Set(nodes.flatMap((n) => n.input));
  const initializer = [...g.initializer, ...added].filter((t) => read.has(t.name));
  return { node: nodes, input: inputs, output: outputs, initializer, f32Nodes, f16Nodes, castsAdded };
}
