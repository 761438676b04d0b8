/**
 * Compiles a checkpoint into an ONNX file for a given KV layout and set of hook points. The weights
 * are converted once per checkpoint (`weights.ts`); each distinct graph variant is written once into
 * the model's cache folder and reused, keyed by a hash of its options.
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
import { transposedName } from './builder.js';
import { ensureWeights, modelCacheDir, writeFileAtomic, type StoredWeightSpec } from './weights.js';

const GRAPH_VERSION = 11;

export interface CompiledGraph {
  file: string;
  layout: KvLayout;
  hooks: HookOptions;
  kvMode: KvMode;
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

export function compileGraph(ckpt: Checkpoint, layout: KvLayout, hooks: HookOptions, kvMode: KvMode = 'append', fusedAttention = false): CompiledGraph {
  const dir = modelCacheDir(ckpt);
  const parts: unknown[] = [GRAPH_VERSION, layout, hookKey(hooks)];
  // 'present' graphs v2: linear layers as MatMul over transposed weights.
  if (kvMode !== 'append') parts.push(kvMode, 2);
  if (fusedAttention && kvMode === 'present') parts.push('fused-gqa', 1);
  const key = crypto.createHash('sha256').update(JSON.stringify(parts)).digest('hex').slice(0, 16);
  const file = path.join(dir, `graph-${key}.onnx`);
  if (fs.existsSync(file)) return { file, layout, hooks, kvMode };

  const arch = archFor(ckpt);
  const names = resolveNames(ckpt, arch);
  const specs = arch.weights.map((w) => ({ name: names.get(w.name)!, shape: w.shape }));
  // The CPU graphs share weights.bin; present-mode (GPU) graphs read linear weights transposed, from weights-gpu.bin.
  const manifest = kvMode === 'append' ? ensureWeights(ckpt, specs, dir) : null;
  const used = new Set<string>();
  const builder = buildDecoderGraph(ckpt.config, arch, (name) => {
    const actual = names.get(name);
    if (!actual) throw new Error(`architecture ${ckpt.config.family} reads undeclared weight ${name}`);
    used.add(actual);
    return actual;
  }, { layout, hooks, kvMode, fusedAttention });
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
    const gpu = ensureWeights(ckpt, stored, dir, 'weights-gpu.bin');
    for (const s of stored) builder.weight(s.name, gpu.tensors[s.name].shape, gpu.tensors[s.name]);
  }
  writeFileAtomic(file, builder.toBytes(`${ckpt.config.family} ${path.basename(ckpt.dir)}`));
  return { file, layout, hooks, kvMode };
}
