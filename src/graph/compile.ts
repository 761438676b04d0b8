/**
 * Compiles a checkpoint into an ONNX file for a given KV layout, set of hook points and weight format.
 * The weights are converted once per checkpoint and format (`weights.ts`); each distinct graph variant
 * is written once into the model's cache folder and reused, keyed by a hash of its options (the
 * weight format included). In a compact format (f16, q8, q4) the linear layers — every
 * `GraphBuilder.linear`/`gemm`, so every architecture — read compact weights, the embedding and LM head
 * too unless `quantizeEmbeddings` is off; norms, biases and RoPE stay float32. The present-mode (GPU)
 * graph of f16 weights also computes in half precision (`half.ts`), its KV cache in float16.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { Checkpoint } from '../hf/checkpoint.js';
import { HeadwiseError } from '../errors.js';
import { ARCHITECTURES } from './arch/index.js';
import type { Arch } from './arch/arch.js';
import { stackName } from './arch/projection.js';
import { buildDecoderGraph, type KvMode } from './decoder.js';
import { toHalf } from './half.js';
import { hookKey, type HookOptions } from './hooks.js';
import type { KvLayout } from './layout.js';
import { compactNames, transposedName, type GraphBuilder } from './builder.js';
import { F32_WEIGHTS, formatBits, weightKey, type WeightOptions } from './quant.js';
import { ensureWeights, modelCacheDir, writeFileAtomic, type StoredWeightSpec, type WeightSpec } from './weights.js';

// 12: per-row head scale input ([H] or [H, q]). 13: q|k|v and gate|up as one projection each (stacked weights,
// `arch/projection.ts`); MatMulNBits over more than 64 MiB of codes in row slices. 14: the lean GPU graph
// (present-mode KV as GQA's [1, nkv, T, D], skip norms, causal classes, [1, q, hidden] residual). 16: captured
// pattern rows beside fused GQA (15 unused). 17: q|k|v packed into the lean causal layer's GQA.
const GRAPH_VERSION = 17;

export interface CompiledGraph {
  file: string;
  layout: KvLayout;
  hooks: HookOptions;
  kvMode: KvMode;
  weights: WeightOptions;
  /** Classes whose lean layers were compiled without a mask (the runtime must keep its promise: `forward.ts`). */
  causalClasses: string[];
  /** True when the graph came from the cache (nothing was converted or written). */
  cached: boolean;
  /** Element type of the KV cache inputs/outputs of a present-mode graph (`float16` when it computes in half). */
  kvType: 'float32' | 'float16';
}

/** Whether a graph computes in half precision (`half.ts`): f16 weights in the present-mode (GPU) graph. */
export function halfActivations(kvMode: KvMode, weights: WeightOptions, variant: GraphVariant = {}): boolean {
  return kvMode === 'present' && weights.format === 'f16' && variant.halfActivations !== false;
}

/** The KV cache's past/present graph inputs and outputs (`past_key.{l}.{g}`, …, not the per-head append inputs). */
const KV_IO = /^(past|present)_(key|value)\.\d+\.\d+$/;

/**
 * MatMulNBits accuracy_level on the CPU: 4 quantises the activations to int8 per block and runs integer
 * dot products (MLAS's fast path; `npm run bench` measures it against 0). The WebGPU kernel takes the
 * same attribute and computes in the activations' precision.
 */
export const CPU_ACCURACY_LEVEL = 4;

/** The weights file a graph of this KV mode and weight format reads: weights.bin, weights-gpu.bin, weights[-gpu]-<format>.bin. */
export function weightsFileName(kvMode: KvMode, weights: WeightOptions = F32_WEIGHTS): string {
  return `weights${kvMode === 'append' ? '' : '-gpu'}${weights.format === 'f32' ? '' : `-${weightKey(weights)}`}.bin`;
}

/** The graph's weight lookup: canonical name → checkpoint name, recording every tensor the graph reads in `used`. */
function trackedWeightRef(ckpt: Checkpoint, names: Map<string, string>, used: Set<string>): (name: string) => string {
  return (name) => {
    const actual = names.get(name);
    if (!actual) throw new Error(`architecture ${ckpt.config.family} reads undeclared weight ${name}`);
    used.add(actual);
    return actual;
  };
}

export function archFor(ckpt: Checkpoint): Arch {
  return ARCHITECTURES[ckpt.config.family](ckpt.config);
}

/** Maps the architecture's canonical weight names to the checkpoint's (some add a prefix); a stack maps to its parts' stack. */
function resolveNames(ckpt: Checkpoint, arch: Arch): Map<string, string> {
  const prefixes = arch.namePrefixes ?? [''];
  const map = new Map<string, string>();
  for (const { name } of arch.weights) {
    const found = prefixes.map((p) => p + name).find((n) => ckpt.has(n));
    if (!found) throw new HeadwiseError(`${ckpt.dir}: missing tensor "${prefixes[prefixes.length - 1]}${name}" needed by the ${ckpt.config.family} architecture`);
    map.set(name, found);
  }
  for (const stack of arch.stacks ?? []) map.set(stack.name, stackName(stack.parts.map((p) => map.get(p)!)));
  return map;
}

/** The model's weights by checkpoint name: the checkpoint's tensors, then the stacks, each stack with the parts it is read from (`rows`). */
function weightSpecs(arch: Arch, names: Map<string, string>): StoredWeightSpec[] {
  const specs: StoredWeightSpec[] = arch.weights.map((w) => ({ name: names.get(w.name)!, shape: w.shape }));
  const shapes = new Map(arch.weights.map((w) => [w.name, w.shape]));
  for (const stack of arch.stacks ?? []) {
    const rows = stack.parts.map((p) => ({ name: names.get(p)!, shape: shapes.get(p)! }));
    const shape = [rows.reduce((n, r) => n + r.shape[0], 0), ...rows[0].shape.slice(1)];
    if (rows.some((r) => r.shape.length !== shape.length || r.shape.slice(1).some((d, i) => d !== shape[i + 1]))) throw new Error(`stack ${stack.name}: parts differ in row width`);
    specs.push({ name: names.get(stack.name)!, shape, rows });
  }
  return specs;
}

/** What to store for a tensor the graph reads (`name`, or `source` transposed): with its stack's parts where it is one. */
function withRows(spec: StoredWeightSpec, rowsOf: Map<string, WeightSpec[]>): StoredWeightSpec {
  const rows = rowsOf.get(spec.source ?? spec.name);
  return rows ? { ...spec, rows } : spec;
}

/** What else a compiled graph varies by, beyond layout, hooks and KV mode. */
export interface GraphVariant {
  /** KV mode `present`: fused GroupQueryAttention where it applies (`fusedAttention.ts`). Default false. */
  fusedAttention?: boolean;
  /** Fused attention: cache classes compiled without a mask (`DecoderGraphOptions.causalClasses`). Default none. */
  causalClasses?: string[];
  /** Linear-layer weight format (`quant.ts`). Default float32. */
  weights?: WeightOptions;
  /** q8/q4: MatMulNBits accuracy_level. Default `CPU_ACCURACY_LEVEL`. */
  accuracyLevel?: number;
  /** f16 weights in KV mode `present`: compute in half precision too (`half.ts`). Default true; false casts each linear layer's input to half and its output back (float32 activations). */
  halfActivations?: boolean;
  /** Half-precision graphs (`halfActivations`): the residual stream in `f32` (default) or `f16`. */
  halfResidual?: 'f32' | 'f16';
}

export function compileGraph(ckpt: Checkpoint, layout: KvLayout, hooks: HookOptions, kvMode: KvMode = 'append', variant: GraphVariant = {}): CompiledGraph {
  const { fusedAttention = false, weights = F32_WEIGHTS, accuracyLevel = CPU_ACCURACY_LEVEL, halfResidual = 'f32' } = variant;
  const half = halfActivations(kvMode, weights, variant);
  const causalClasses = fusedAttention && kvMode === 'present' ? [...new Set(variant.causalClasses ?? [])].sort() : [];
  const dir = modelCacheDir(ckpt);
  const parts: unknown[] = [GRAPH_VERSION, layout, hookKey(hooks)];
  // 'present' graphs v2: linear layers as MatMul over transposed weights.
  if (kvMode !== 'append') parts.push(kvMode, 2);
  if (fusedAttention && kvMode === 'present') parts.push('fused-gqa', 1);
  if (causalClasses.length) parts.push('causal', causalClasses);
  if (weights.format !== 'f32') parts.push(weightKey(weights), accuracyLevel);
  if (half) parts.push('half', 3, halfResidual);
  const key = crypto.createHash('sha256').update(JSON.stringify(parts)).digest('hex').slice(0, 16);
  const file = path.join(dir, `graph-${key}.onnx`);
  const compiled: CompiledGraph = { file, layout, hooks, kvMode, weights, causalClasses, cached: false, kvType: half ? 'float16' : 'float32' };
  if (fs.existsSync(file)) return { ...compiled, cached: true };

  const arch = archFor(ckpt);
  const names = resolveNames(ckpt, arch);
  const specs = weightSpecs(arch, names);
  if (weights.format !== 'f32') {
    const builder = buildCompact(ckpt, arch, names, specs, { layout, hooks, kvMode, fusedAttention, causalClasses }, weights, accuracyLevel);
    if (half) builder.rewrite((g) => toHalf(g, { residual: halfResidual, halfIo: (name) => KV_IO.test(name) }));
    writeFileAtomic(file, builder.toBytes(`${ckpt.config.family} ${path.basename(ckpt.dir)} ${weightKey(weights)}`));
    return compiled;
  }
  // The CPU graphs share weights.bin (every tensor but the parts of stacks, which the graph reads stacked);
  // present-mode (GPU) graphs read linear weights transposed, from weights-gpu.bin.
  const stacked = new Set(specs.flatMap((s) => s.rows?.map((r) => r.name) ?? []));
  const manifest = kvMode === 'append' ? ensureWeights(ckpt, specs.filter((s) => !stacked.has(s.name)), dir, weightsFileName(kvMode)) : null;
  const used = new Set<string>();
  const builder = buildDecoderGraph(ckpt.config, arch, trackedWeightRef(ckpt, names, used), { layout, hooks, kvMode, fusedAttention, causalClasses });
  if (manifest) {
    for (const name of used) {
      const t = manifest.tensors[name];
      if (!t) throw new Error(`${ckpt.config.family}: the graph reads ${name}, which is stored only stacked`);
      builder.weight(name, t.shape, t);
    }
  } else {
    const shapes = new Map(specs.map((s) => [s.name, s.shape]));
    const rowsOf = new Map(specs.filter((s) => s.rows).map((s) => [s.name, s.rows!]));
    const stored: StoredWeightSpec[] = [];
    for (const name of used) {
      const shape = shapes.get(name)!;
      if (builder.reads(name)) stored.push(withRows({ name, shape }, rowsOf));
      if (builder.transposedWeights.has(name)) stored.push(withRows({ name: transposedName(name), source: name, shape: [shape[1], shape[0]], transpose: true }, rowsOf));
    }
    const gpu = ensureWeights(ckpt, stored, dir, weightsFileName(kvMode));
    for (const s of stored) builder.weight(s.name, gpu.tensors[s.name].shape, gpu.tensors[s.name]);
  }
  writeFileAtomic(file, builder.toBytes(`${ckpt.config.family} ${path.basename(ckpt.dir)}`));
  return compiled;
}

/**
 * The graph with compact linear weights: built first (the builder records which weights it read
 * compactly, and how), then only the tensors it reads are stored, in `weights-<format>.bin`.
 */
function buildCompact(
  ckpt: Checkpoint, arch: Arch, names: Map<string, string>, specs: StoredWeightSpec[],
  opts: { layout: KvLayout; hooks: HookOptions; kvMode: KvMode; fusedAttention: boolean; causalClasses: string[] }, weights: WeightOptions, accuracyLevel: number,
): GraphBuilder {
  const shapes = new Map(specs.map((s) => [s.name, s.shape]));
  // Without quantizeEmbeddings the [vocab, hidden] matrices (embedding, LM head) stay float32.
  const keepF32 = new Set(weights.quantizeEmbeddings ? [] : specs.filter((s) => !s.rows && s.shape.length === 2 && s.shape[0] === ckpt.config.vocabSize).map((s) => s.name));
  const rowsOf = new Map(specs.filter((s) => s.rows).map((s) => [s.name, s.rows!]));
  const used = new Set<string>();
  const builder = buildDecoderGraph(ckpt.config, arch, trackedWeightRef(ckpt, names, used), { ...opts, weightPlan: { options: weights, shapes, keepF32, accuracyLevel } });
  const bits = formatBits(weights.format);
  const encode = (gatherView: boolean): StoredWeightSpec['encode'] =>
    bits === null ? { kind: 'f16' } : { kind: 'blocks', bits, blockSize: weights.blockSize, gatherView };
  const stored: StoredWeightSpec[] = [];
  for (const name of used) {
    const shape = shapes.get(name)!;
    const uses = builder.compactWeights.get(name) ?? new Set();
    const store = (spec: StoredWeightSpec) => stored.push(withRows(spec, rowsOf));
    if (builder.reads(name)) store({ name, shape });
    if (builder.transposedWeights.has(name)) store({ name: transposedName(name), source: name, shape: [shape[1], shape[0]], transpose: true });
    if (uses.has('rows') || uses.has('gather')) store({ name, shape, encode: encode(uses.has('gather')) });
    if (uses.has('cols')) store({ name: transposedName(name), source: name, shape: [shape[1], shape[0]], transpose: true, encode: encode(false) });
  }
  const manifest = ensureWeights(ckpt, stored, modelCacheDir(ckpt), weightsFileName(opts.kvMode, weights));
  // A sliced matrix (`nbitsSlices`) is read as views of its stored codes and scales, one per row range.
  const sliced = new Set<string>();
  for (const [matrix, ranges] of builder.compactSlices) {
    const codes = manifest.tensors[compactNames.codes(matrix)];
    const scales = manifest.tensors[compactNames.scales(matrix)];
    const [n, nb, blob] = codes.shape;
    for (const [r0, r1] of ranges) {
      builder.weight(compactNames.codesSlice(matrix, r0), [r1 - r0, nb, blob], { file: codes.file, offset: codes.offset + r0 * nb * blob, length: (r1 - r0) * nb * blob }, codes.dataType);
      builder.weight(compactNames.scalesSlice(matrix, r0), [(r1 - r0) * nb], { file: scales.file, offset: scales.offset + r0 * nb * 4, length: (r1 - r0) * nb * 4 }, scales.dataType);
    }
    if (n !== ranges[ranges.length - 1][1]) throw new Error(`${matrix}: slices end at row ${ranges[ranges.length - 1][1]} of ${n}`);
    sliced.add(compactNames.codes(matrix)).add(compactNames.scales(matrix));
  }
  for (const [name, t] of Object.entries(manifest.tensors)) if (!sliced.has(name)) builder.weight(name, t.shape, t, t.dataType);
  return builder;
}
