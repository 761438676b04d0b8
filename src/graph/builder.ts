/**
 * A small typed builder for ONNX graphs: declare inputs, weights and outputs, add nodes through
 * helpers named after the ONNX operators, and serialize. Values are plain strings (ONNX value names);
 * names are scoped (`blocks.3.attn/MatMul_12`) so a graph reads like the model it computes.
 * Weights are external initializers pointing into a shared weights file (see `weights.ts`), so many
 * graph variants of one model share one copy of the weights on disk.
 */
import { AttrType, DataType, ModelProto, type DataTypeId } from './onnxProto.js';
import { formatBits, type WeightOptions } from './quant.js';

export type Value = string;
export type Dim = number | string;
type AttrValue = number | number[] | string | { floats: number[] } | { int: number } | { float: number } | { graph: GraphBody };

/** A subgraph (an `If` branch): its nodes, local constants and outputs; it reads outer values by name. */
export interface GraphBody {
  name: string;
  node: unknown[];
  initializer: unknown[];
  output: unknown[];
}

/** A node as serialized (onnx.NodeProto's fields). */
export interface NodeRecord {
  opType: string;
  input: string[];
  output: string[];
  name: string;
  domain?: string;
  attribute: Record<string, unknown>[];
}

/** A graph input or output as serialized (onnx.ValueInfoProto). */
export interface ValueInfoRecord {
  name: string;
  type: { tensorType: { elemType: number; shape: unknown } };
}

/** An initializer as serialized (onnx.TensorProto): inline `rawData` or external data. */
export interface TensorRecord {
  name: string;
  dims: number[];
  dataType: number;
  rawData?: Uint8Array;
  dataLocation?: number;
  externalData?: { key: string; value: string }[];
}

/** The whole top-level graph, for passes over it before serialization (`half.ts`). */
export interface GraphParts {
  node: NodeRecord[];
  input: ValueInfoRecord[];
  output: ValueInfoRecord[];
  initializer: TensorRecord[];
}

export interface ExternalRef {
  file: string;
  offset: number;
  length: number;
}

const OPSET = 18;

/** Name of the transposed copy of a weight (`[out, in]` -> `[in, out]`), read by `linear` in MatMul form. */
export const transposedName = (weight: string): string => `${weight}^T`;

/**
 * How a weight is read in a compact format (`WeightPlan`): `rows` — an [N, K] Linear weight, quantised
 * as stored; `cols` — a [K, N] Conv1D weight, quantised transposed; `gather` — embedding rows looked up
 * from the `rows` codes (GatherBlockQuantized; f16: Gather + Cast).
 */
export type CompactUse = 'rows' | 'cols' | 'gather';

/** Stored names of a compact weight: its codes and scales (q8/q4), or its half-precision copy (f16, [K, N]). */
export const compactNames = {
  codes: (matrix: string): string => `${matrix}#q`,
  scales: (matrix: string): string => `${matrix}#s`,
  /** The same bytes as `codes`/`scales`, shaped for GatherBlockQuantized ([N, K·bits/8] and [N, K/block]). */
  gatherCodes: (matrix: string): string => `${matrix}#qg`,
  gatherScales: (matrix: string): string => `${matrix}#sg`,
  half: (matrix: string): string => `${matrix}#f16`,
  /** Rows [r0, …) of `codes`/`scales`, read by one MatMulNBits of a sliced matrix (`WeightPlan.maxSliceBytes`). */
  codesSlice: (matrix: string, r0: number): string => `${matrix}#q@${r0}`,
  scalesSlice: (matrix: string, r0: number): string => `${matrix}#s@${r0}`,
};

/**
 * Codes bytes one MatMulNBits reads at most (default of `WeightPlan.maxSliceBytes`): a larger matrix —
 * in practice a vocabulary-sized LM head — is cut along N into row slices, one MatMulNBits each,
 * concatenated. ONNX Runtime prepacks a MatMulNBits weight into MLAS's layout while its stored codes
 * are still held, so a 262 MB q8 LM head (Llama-3.2-1B) alone raised peak RSS during load by ~250 MB;
 * sliced, the overlap is one slice's. Each output column is computed independently, so the logits are
 * the same.
 */
export const MAX_NBITS_SLICE_BYTES = 64 * 2 ** 20;

/** Row ranges [r0, r1) cutting an [n, …] matrix of `rowBytes` codes a row into slices of at most `maxBytes` (whole multiples of 1024 rows, so that slice offsets stay page-aligned); one range when it fits. */
export function nbitsSlices(n: number, rowBytes: number, maxBytes: number = MAX_NBITS_SLICE_BYTES): [number, number][] {
  const rows = Math.max(1024, Math.floor(maxBytes / rowBytes / 1024) * 1024);
  if (n <= rows) return [[0, n]];
  const out: [number, number][] = [];
  for (let r0 = 0; r0 < n; r0 += rows) out.push([r0, Math.min(n, r0 + rows)]);
  return out;
}

/** Which weights `linear`, `gemm` and `gather` read in a compact format, and how. */
export interface WeightPlan {
  options: WeightOptions;
  /** Shapes of the model's weights by (checkpoint) name; other values are never rewritten. */
  shapes: Map<string, number[]>;
  /** Weights kept float32 whatever the format (e.g. embedding and LM head when not quantised). */
  keepF32: Set<string>;
  /** MatMulNBits `accuracy_level` (0: fp32 compute; 4: int8 compute of the activations). */
  accuracyLevel: number;
  /** Codes bytes one MatMulNBits reads at most (default `MAX_NBITS_SLICE_BYTES`). */
  maxSliceBytes?: number;
}

export class GraphBuilder {
  private nodes: NodeRecord[] = [];
  private inputs: unknown[] = [];
  private outputs: unknown[] = [];
  private initializers: unknown[] = [];
  private counter = 0;
  private scopeStack: string[] = [];
  private readonly constCache = new Map<string, Value>();
  /**
   * Write `linear`/`gemm` as MatMul (+ Add) instead of Gemm, `linear` reading a transposed copy of its
   * weight (`transposedName`). WebGPU's MatMul is ~2.7× faster than its Gemm(transB=1) on an H100.
   */
  matmulLinear = false;
  /** Weights `linear` read transposed (when `matmulLinear`). */
  readonly transposedWeights = new Set<string>();
  /** Compact weights (q8/q4/f16): null keeps every weight float32. Norms and RoPE never go through it. */
  weightPlan: WeightPlan | null = null;
  /** Weights read in the compact format, with how each is read. */
  readonly compactWeights = new Map<string, Set<CompactUse>>();
  /** Stored matrices read as row slices (`nbitsSlices`), by matrix name: the slices' row ranges. */
  readonly compactSlices = new Map<string, [number, number][]>();

  constructor(readonly name: string) {}

  /** The op types of the nodes built so far, in order (to inspect what an architecture's piece computes). */
  opTypes(): string[] {
    return this.nodes.map((n) => n.opType);
  }

  /** Runs `fn` with node names prefixed by `scope`. */
  scope<T>(scope: string, fn: () => T): T {
    this.scopeStack.push(scope);
    try {
      return fn();
    } finally {
      this.scopeStack.pop();
    }
  }

  /** A value name no other node uses (for nodes whose omitted optional outputs are named ''). */
  freshName(opType: string): string {
    return this.fresh(opType);
  }

  private fresh(opType: string): string {
    const prefix = this.scopeStack.length ? this.scopeStack.join('/') + '/' : '';
    return `${prefix}${opType}_${this.counter++}`;
  }

  hasInput(name: string): boolean {
    return this.inputs.some((i) => (i as { name: string }).name === name);
  }

  input(name: string, elemType: DataTypeId, dims: Dim[]): Value {
    this.inputs.push(valueInfo(name, elemType, dims));
    return name;
  }

  /**
   * Exposes `value` as graph output `name`. A value computed by a node is renamed in place (no
   * Identity copy); a graph input or weight goes through Identity.
   */
  output(value: Value, name: string, elemType: DataTypeId, dims: Dim[]): Value {
    if (value !== name) {
      const producer = this.nodes.find((n) => n.output.includes(value));
      if (producer && !this.outputs.some((o) => (o as { name: string }).name === value)) {
        producer.output = producer.output.map((o) => (o === value ? name : o));
        for (const n of this.nodes) n.input = n.input.map((i) => (i === value ? name : i));
      } else {
        this.node('Identity', [value], {}, { outputs: [name] });
      }
    }
    this.outputs.push(valueInfo(name, elemType, dims));
    return name;
  }

  /** A weight stored in the external weights file (float32 unless said). */
  weight(name: string, dims: number[], ref: ExternalRef, dataType: DataTypeId = DataType.FLOAT): Value {
    this.initializers.push({
      name,
      dims,
      dataType,
      dataLocation: 1,
      externalData: [
        { key: 'location', value: ref.file },
        { key: 'offset', value: String(ref.offset) },
        { key: 'length', value: String(ref.length) },
      ],
    });
    return name;
  }

  hasInitializer(name: string): boolean {
    return this.initializers.some((t) => (t as { name: string }).name === name);
  }

  /** An inline initializer of raw little-endian bytes. */
  constRaw(name: string, dataType: DataTypeId, dims: number[], bytes: Uint8Array): Value {
    this.initializers.push({ name, dims, dataType, rawData: bytes });
    return name;
  }

  constF32(values: ArrayLike<number>, dims: number[]): Value {
    const arr = Float32Array.from(values);
    const key = `f:${dims}:${Buffer.from(arr.buffer).toString('base64')}`;
    const hit = this.constCache.get(key);
    if (hit) return hit;
    const name = this.fresh('const');
    this.initializers.push({ name, dims, dataType: DataType.FLOAT, rawData: new Uint8Array(arr.buffer) });
    this.constCache.set(key, name);
    return name;
  }

  constI64(values: ArrayLike<number>, dims: number[] = [values.length]): Value {
    const arr = BigInt64Array.from(Array.from(values, (v) => BigInt(v)));
    const key = `i:${dims}:${Array.from(values).join(',')}`;
    const hit = this.constCache.get(key);
    if (hit) return hit;
    const name = this.fresh('const');
    this.initializers.push({ name, dims, dataType: DataType.INT64, rawData: new Uint8Array(arr.buffer) });
    this.constCache.set(key, name);
    return name;
  }

  scalar(v: number): Value {
    return this.constF32([v], []);
  }

  /** Adds a node; returns its output value names. */
  node(opType: string, inputs: Value[], attrs: Record<string, AttrValue> = {}, opts: { outputs?: string[] | number; domain?: string } = {}): Value[] {
    const name = this.fresh(opType);
    const outputs = Array.isArray(opts.outputs)
      ? opts.outputs
      : Array.from({ length: opts.outputs ?? 1 }, (_, i) => (i === 0 ? name : `${name}:${i}`));
    this.nodes.push({ opType, input: inputs, output: outputs, name, domain: opts.domain, attribute: Object.entries(attrs).map(([k, v]) => attr(k, v)) });
    return outputs;
  }

  op(opType: string, inputs: Value[], attrs: Record<string, AttrValue> = {}): Value {
    return this.node(opType, inputs, attrs)[0];
  }

  /** ONNX Runtime's contrib op: alpha · op(A) · op(B) with optional transposes of the batch axes. */
  fusedMatMul(a: Value, b: Value, opts: { transB?: boolean; transBatchB?: boolean } = {}): Value {
    return this.node('FusedMatMul', [a, b], {
      alpha: { float: 1 },
      transB: { int: opts.transB ? 1 : 0 },
      transBatchB: { int: opts.transBatchB ? 1 : 0 },
    }, { domain: 'com.microsoft' })[0];
  }

  // Helpers named after ONNX operators, for the ones the architectures use.
  add(a: Value, b: Value): Value { return this.op('Add', [a, b]); }
  sub(a: Value, b: Value): Value { return this.op('Sub', [a, b]); }
  mul(a: Value, b: Value): Value { return this.op('Mul', [a, b]); }
  div(a: Value, b: Value): Value { return this.op('Div', [a, b]); }
  matmul(a: Value, b: Value): Value { return this.op('MatMul', [a, b]); }
  /** y = a · bᵀ (+ c) for 2-D a and a [out, in] weight b, as Hugging Face Linear stores it. */
  linear(a: Value, w: Value, bias?: Value): Value {
    const compact = this.compactLinear(a, w, 'rows', bias);
    if (compact) return compact;
    if (this.matmulLinear) {
      this.transposedWeights.add(w);
      const y = this.matmul(a, transposedName(w));
      return bias ? this.add(y, bias) : y;
    }
    return this.op('Gemm', bias ? [a, w, bias] : [a, w], { transB: { int: 1 } });
  }
  /** y = a · b (+ c) for a weight stored [in, out] (GPT-2's Conv1D). */
  gemm(a: Value, w: Value, bias?: Value): Value {
    const compact = this.compactLinear(a, w, 'cols', bias);
    if (compact) return compact;
    if (this.matmulLinear) {
      const y = this.matmul(a, w);
      return bias ? this.add(y, bias) : y;
    }
    return this.op('Gemm', bias ? [a, w, bias] : [a, w]);
  }
  /** The plan and shape when weight `w` is read in a compact format. */
  private compactPlan(w: Value): (WeightPlan & { shape: number[] }) | null {
    const plan = this.weightPlan;
    if (!plan || plan.options.format === 'f32' || plan.keepF32.has(w)) return null;
    const shape = plan.shapes.get(w);
    if (!shape || shape.length !== 2) return null;
    return { ...plan, shape };
  }

  private markCompact(w: Value, use: CompactUse): void {
    let uses = this.compactWeights.get(w);
    if (!uses) this.compactWeights.set(w, (uses = new Set()));
    uses.add(use);
  }

  /** `linear`/`gemm` on a compact weight: MatMulNBits (q8/q4) or a half-precision MatMul (f16). */
  private compactLinear(a: Value, w: Value, use: 'rows' | 'cols', bias?: Value): Value | null {
    const plan = this.compactPlan(w);
    if (!plan) return null;
    this.markCompact(w, use);
    const [n, k] = use === 'rows' ? plan.shape : [plan.shape[1], plan.shape[0]];
    const matrix = use === 'rows' ? w : transposedName(w);
    const bits = formatBits(plan.options.format);
    let y: Value;
    if (bits === null) {
      // f16: [K, N] half weight, activations cast to half and back (bias added in fp32).
      y = this.cast(this.matmul(this.cast(a, DataType.FLOAT16), compactNames.half(matrix)), DataType.FLOAT);
    } else {
      const blockSize = plan.options.blockSize;
      const nbits = (codes: Value, scales: Value, rows: number) => this.node('MatMulNBits', [a, codes, scales], {
        K: { int: k }, N: { int: rows }, bits: { int: bits }, block_size: { int: blockSize }, accuracy_level: { int: plan.accuracyLevel },
      }, { domain: 'com.microsoft' })[0];
      const slices = nbitsSlices(n, (Math.ceil(k / blockSize) * blockSize * bits) / 8, plan.maxSliceBytes);
      if (slices.length === 1) y = nbits(compactNames.codes(matrix), compactNames.scales(matrix), n);
      else {
        this.compactSlices.set(matrix, slices);
        y = this.concat(slices.map(([r0, r1]) => nbits(compactNames.codesSlice(matrix, r0), compactNames.scalesSlice(matrix, r0), r1 - r0)), -1);
      }
    }
    return bias ? this.add(y, bias) : y;
  }

  reshape(x: Value, shape: number[]): Value { return this.op('Reshape', [x, this.constI64(shape)]); }
  transpose(x: Value, perm: number[]): Value { return this.op('Transpose', [x], { perm }); }
  softmax(x: Value, axis = -1): Value { return this.op('Softmax', [x], { axis: { int: axis } }); }
  gather(x: Value, indices: Value, axis = 0): Value {
    const plan = this.weightPlan?.options.quantizeEmbeddings ? this.compactPlan(x) : null;
    const bits = plan ? formatBits(plan.options.format) : null;
    // GatherBlockQuantized reads whole blocks of a row: a row length off the block stays float32.
    if (plan && axis === 0 && (bits === null || plan.shape[1] % plan.options.blockSize === 0)) {
      this.markCompact(x, 'gather');
      // f16 weights are stored [K, N] (for MatMul): gather columns, then turn them into rows.
      if (bits === null) return this.transpose(this.cast(this.op('Gather', [compactNames.half(x), indices], { axis: { int: 1 } }), DataType.FLOAT), [1, 0]);
      return this.node('GatherBlockQuantized', [compactNames.gatherCodes(x), indices, compactNames.gatherScales(x)], {
        gather_axis: { int: 0 }, quantize_axis: { int: 1 }, block_size: { int: plan.options.blockSize }, bits: { int: bits },
      }, { domain: 'com.microsoft' })[0];
    }
    return this.op('Gather', [x, indices], { axis: { int: axis } });
  }
  concat(xs: Value[], axis: number): Value { return this.op('Concat', xs, { axis: { int: axis } }); }
  unsqueeze(x: Value, axes: number[]): Value { return this.op('Unsqueeze', [x, this.constI64(axes)]); }
  slice(x: Value, starts: number[], ends: number[], axes: number[]): Value {
    return this.op('Slice', [x, this.constI64(starts), this.constI64(ends), this.constI64(axes)]);
  }
  split(x: Value, sizes: number[], axis: number): Value[] {
    return this.node('Split', [x, this.constI64(sizes)], { axis: { int: axis } }, { outputs: sizes.length });
  }
  reduceMean(x: Value, axes: number[]): Value { return this.op('ReduceMean', [x, this.constI64(axes)], { keepdims: { int: 1 } }); }
  reduceSum(x: Value, axes: number[]): Value { return this.op('ReduceSum', [x, this.constI64(axes)], { keepdims: { int: 1 } }); }
  cast(x: Value, to: DataTypeId): Value { return this.op('Cast', [x], { to: { int: to } }); }

  /**
   * Builds a subgraph with `fn` on a child builder (same flags, node names under `scope`); `fn` returns
   * the values to expose with their element types. Outer values are read by name.
   */
  subgraph(scope: string, fn: (sb: GraphBuilder) => { value: Value; elemType: DataTypeId; dims: Dim[] }[]): { body: GraphBody; outputs: Value[] } {
    const sb = new GraphBuilder(`${this.name}/${scope}`);
    sb.matmulLinear = this.matmulLinear;
    sb.weightPlan = this.weightPlan;
    sb.scopeStack = [...this.scopeStack, scope];
    const outs = fn(sb);
    const outputs = outs.map((o, i) => sb.output(o.value, `${sb.scopeStack.join('/')}/out_${i}`, o.elemType, o.dims));
    for (const w of sb.transposedWeights) this.transposedWeights.add(w);
    for (const [w, uses] of sb.compactWeights) for (const u of uses) this.markCompact(w, u);
    return { body: { name: sb.name, node: sb.nodes, initializer: sb.initializers, output: sb.outputs }, outputs };
  }

  /** ONNX `If`: runs `then` or `otherwise` (subgraphs with matching outputs) on a boolean scalar. */
  ifElse(cond: Value, then: GraphBody, otherwise: GraphBody, outputs: number): Value[] {
    return this.node('If', [cond], { then_branch: { graph: then }, else_branch: { graph: otherwise } }, { outputs });
  }

  toBytes(docString = ''): Uint8Array {
    const model = ModelProto.fromObject({
      irVersion: 8,
      producerName: 'headwise',
      producerVersion: '0.1.0',
      docString,
      opsetImport: [{ domain: '', version: OPSET }, { domain: 'com.microsoft', version: 1 }],
      graph: {
        name: this.name,
        node: this.nodes,
        input: this.inputs,
        output: this.outputs,
        initializer: this.initializers,
      },
    });
    return ModelProto.encode(model).finish();
  }

  /** The graph as it stands (the builder's own arrays: a pass returns new ones through `rewrite`). */
  parts(): GraphParts {
    return { node: this.nodes, input: this.inputs as ValueInfoRecord[], output: this.outputs as ValueInfoRecord[], initializer: this.initializers as TensorRecord[] };
  }

  /** Replaces the graph by `pass(parts())` (a whole-graph rewrite such as `half.ts`; call after every weight is declared). */
  rewrite(pass: (g: GraphParts) => GraphParts): void {
    const g = pass(this.parts());
    this.nodes = g.node;
    this.inputs = g.input;
    this.outputs = g.output;
    this.initializers = g.initializer;
  }

  /** Whether any node reads `value`. */
  reads(value: Value): boolean {
    return this.nodes.some((n) => n.input.includes(value));
  }

  get nodeCount(): number {
    return this.nodes.length;
  }
}

function valueInfo(name: string, elemType: DataTypeId, dims: Dim[]) {
  return {
    name,
    type: { tensorType: { elemType, shape: { dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) } } },
  };
}

function attr(name: string, v: AttrValue): Record<string, unknown> {
  if (typeof v === 'string') return { name, type: AttrType.STRING, s: new TextEncoder().encode(v) };
  if (Array.isArray(v)) return { name, type: AttrType.INTS, ints: v };
  if (typeof v === 'number') return Number.isInteger(v) ? { name, type: AttrType.INT, i: v } : { name, type: AttrType.FLOAT, f: v };
  if ('floats' in v) return { name, type: AttrType.FLOATS, floats: v.floats };
  if ('int' in v) return { name, type: AttrType.INT, i: v.int };
  if ('graph' in v) return { name, type: AttrType.GRAPH, g: v.graph };
  return { name, type: AttrType.FLOAT, f: v.float };
}
