/**
 * Compiles a checkpoint into an ONNX file for a given KV layout, set of hook points and weight format.
 * The weights are converted once per checkpoint and format (`weights.ts`); each distinct graph variant
 * is written once into the model's cache folder and reused, keyed by a hash of its options (the
 * weight format included). In a compact format (f16, q8, q4) the linear layers — every
 * `GraphBuilder.linear`/`gemm`, so every architecture — read compact weights, the embedding and LM head
 * too unless `quantizeEmbeddings` is off; norms, biases and RoPE stay float32.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { Checkpoint } from '../hf/checkpoint.js';
import { HeadwiseError } from '../errors.js';
import { ARCHITECTURES } from './arch/index.js';
import type { Arch } from './arch/arch.js';
import { buildDecoderGraph, type KvMode } from './decoder.js';
import { hookKey, type HookOptions } from './hooks.js';
import type { KvLayout } from './layout.js';
import { transposedName, type GraphBuilder } from './builder.js';
import { F32_WEIGHTS, formatBits, weightKey, type WeightOptions } from './quant.js';
import { ensureWeights, modelCacheDir, writeFileAtomic, type StoredWeightSpec } from './weights.js';

// 14: the lean GPU graph (present-mode KV as GQA's [1, nkv, T, D], skip norms, causal classes, [1, q, hidden] residual).
const GRAPH_VERSION = 14;

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
}

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

/** Maps the architecture's canonical weight names to the checkpoint's (some add a prefix). */
function resolveNames(ckpt: Checkpoint, arch: Arch): Map<string, string> {
  const prefixes = arch.namePrefixes ?? [''];
  const map = new Map<string, string>();
  for (const { name } of arch.weights) {
    const found = prefixes.map((p) => p + name).find((n) => ckpt.has(n));
    if (!found) throw new HeadwiseError(`${ckpt.dir}: missing tensor "${prefixes[prefixes.length - 1]}${name}" needed by the ${ckpt.config.family} architecture`);
    map.set(name, found);
  }
  return map;
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
}

export function compileGraph(ckpt: Checkpoint, layout: KvLayout, hooks: HookOptions, kvMode: KvMode = 'append', variant: GraphVariant = {}): CompiledGraph {
  const { fusedAttention = false, weights = F32_WEIGHTS, accuracyLevel = CPU_ACCURACY_LEVEL } = variant;
  const causalClasses = fusedAttention && kvMode === 'present' ? [...new Set(variant.causalClasses ?? [])].sort() : [];
  const dir = modelCacheDir(ckpt);
  const parts: unknown[] = [GRAPH_VERSION, layout, hookKey(hooks)];
  // 'present' graphs v2: linear layers as MatMul over transposed weights.
  if (kvMode !== 'append') parts.push(kvMode, 2);
  if (fusedAttention && kvMode === 'present') parts.push('fused-gqa', 1);
  if (causalClasses.length) parts.push('causal', causalClasses);
  if (weights.format !== 'f32') parts.push(weightKey(weights), accuracyLevel);
  const key = crypto.createHash('sha256').update(JSON.stringify(parts)).digest('hex').slice(0, 16);
  const file = path.join(dir, `graph-${key}.onnx`);
  const compiled = { file, layout, hooks, kvMode, weights, causalClasses, cached: false };
  if (fs.existsSync(file)) return { ...compiled, cached: true };

  const arch = archFor(ckpt);
  const names = resolveNames(ckpt, arch);
  const specs = arch.weights.map((w) => ({ name: names.get(w.name)!, shape: w.shape }));
  if (weights.format !== 'f32') {
    const builder = buildCompact(ckpt, arch, names, specs, { layout, hooks, kvMode, fusedAttention, causalClasses }, weights, accuracyLevel);
    writeFileAtomic(file, builder.toBytes(`${ckpt.config.family} ${path.basename(ckpt.dir)} ${weightKey(weights)}`));
    return compiled;
  }
  // The CPU graphs share weights.bin; present-mode (GPU) graphs read linear weights transposed, from weights-gpu.bin.
  const manifest = kvMode === 'append' ? ensureWeights(ckpt, specs, dir, weightsFileName(kvMode)) : null;
  const used = new Set<string>();
  const builder = buildDecoderGraph(ckpt.config, arch, trackedWeightRef(ckpt, names, used), { layout, hooks, kvMode, fusedAttention, causalClasses });
  if (manifest) {
    for (const name of used) builder.weight(name, manifest.tensors[name].shape, manifest.tensors[name]);
  } else {
    const shapes = new Map(specs.map((s) => [s.name, s.shape]));
    const stored: StoredWeightSpec[] = [];
    for (const name of used) {
      const shape = shapes.get(name)!;
      if (builder.reads(name)) stored.push({ name, shape });
      if (builder.transposedWeights.has(name)) stored.push({ name: transposedName(name), source: name, shape: [shape[1], shape[0]], transpose: true });
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
  ckpt: Checkpoint, arch: Arch, names: Map<string, string>, specs: { name: string; shape: number[] }[],
  opts: { layout: KvLayout; hooks: HookOptions; kvMode: KvMode; fusedAttention: boolean; causalClasses: string[] }, weights: WeightOptions, accuracyLevel: number,
): GraphBuilder {
  const shapes = new Map(specs.map((s) => [s.name, s.shape]));
  // Without quantizeEmbeddings the [vocab, hidden] matrices (embedding, LM head) stay float32.
  const keepF32 = new Set(weights.quantizeEmbeddings ? [] : specs.filter((s) => s.shape.length === 2 && s.shape[0] === ckpt.config.vocabSize).map((s) => s.name));
  const used = new Set<string>();
  const builder = buildDecoderGraph(ckpt.config, arch, trackedWeightRef(ckpt, names, used), { ...opts, weightPlan: { options: weights, shapes, keepF32, accuracyLevel } });
  const bits = formatBits(weights.format);
  const encode = (gatherView: boolean): StoredWeightSpec['encode'] =>
    bits === null ? { kind: 'f16' } : { kind: 'blocks', bits, blockSize: weights.blockSize, gatherView };
  const stored: StoredWeightSpec[] = [];
  for (const name of used) {
    const shape = shapes.get(name)!;
    const uses = builder.compactWeights.get(name) ?? new Set();
    if (builder.reads(name)) stored.push({ name, shape });
    if (builder.transposedWeights.has(name)) stored.push({ name: transposedName(name), source: name, shape: [shape[1], shape[0]], transpose: true });
    if (uses.has('rows') || uses.has('gather')) stored.push({ name, shape, encode: encode(uses.has('gather')) });
    if (uses.has('cols')) stored.push({ name: transposedName(name), source: name, shape: [shape[1], shape[0]], transpose: true, encode: encode(false) });
  }
  const manifest = ensureWeights(ckpt, stored, modelCacheDir(ckpt), weightsFileName(opts.kvMode, weights));
  for (const [name, t] of Object.entries(manifest.tensors)) builder.weight(name, t.shape, t, t.dataType);
  return builder;
}
