/**
 * A loaded model: its checkpoint, normalized config, tokenizer, and the compiled graph variants
 * (one ONNX Runtime session per KV layout + hook set, created on first use and reused).
 */
import fs from 'node:fs';
import path from 'node:path';
import type * as ortTypes from 'onnxruntime-node';
import { Checkpoint } from '../hf/checkpoint.js';
import type { ModelConfig } from '../hf/config.js';
import { HfTokenizer } from '../hf/tokenizer.js';
import type { GraphBuilder } from '../graph/builder.js';
import { compileGraph } from '../graph/compile.js';
import { F32_WEIGHTS, weightKey, type WeightOptions } from '../graph/quant.js';
import type { KvMode } from '../graph/decoder.js';
import { hookKey, hookNames, NO_HOOKS, type HookOptions } from '../graph/hooks.js';
import { uniformLayout, type KvLayout } from '../graph/layout.js';
import { createSession, type Device, type SessionOptions } from './ort.js';
import { HeadwiseError } from '../errors.js';

export interface GraphSession {
  session: ortTypes.InferenceSession;
  layout: KvLayout;
  hooks: HookOptions;
  device: Device;
  /** `append` (CPU buffers) or `present` (KV tensors kept on the device, `deviceKv.ts`). */
  kvMode: KvMode;
}

export interface ModelOptions extends SessionOptions {
  /** Default: `present` on webgpu, `append` on cpu (`present` on cpu is for testing that path). */
  kvMode?: KvMode;
  /** webgpu: refuse to create a session if any node would run on the CPU. */
  strictDevice?: boolean;
  /** How the linear layers' weights are stored and computed (`graph/quant.ts`); default float32. */
  weights?: WeightOptions;
  /** q8/q4: MatMulNBits accuracy_level (default `CPU_ACCURACY_LEVEL`, 4: int8 activations; 0: fp32 compute). */
  accuracyLevel?: number;
}

export class Model {
  private readonly sessions = new Map<string, Promise<GraphSession>>();
  private readonly aux = new Map<string, Promise<ortTypes.InferenceSession>>();

  private constructor(
    readonly ckpt: Checkpoint,
    readonly tokenizer: HfTokenizer | null,
    readonly options: ModelOptions,
  ) {}

  /** Opens a Hugging Face model folder. The tokenizer is optional (ids-only use). */
  static async load(dir: string, options: ModelOptions = {}): Promise<Model> {
    if (options.weights?.format === 'f16' && (options.device ?? 'cpu') === 'cpu') {
      // Measured on ref-llama-30m: ONNX Runtime's x86 CPU EP has no fp16 MatMul kernel and runs these
      // nodes in float32 (same peak RSS and decode speed as f32), so f16 buys nothing there.
      throw new HeadwiseError('--weights f16 is for --device webgpu: on the CPU ONNX Runtime computes it in float32 (no memory or speed gain); use q8 (a quarter of f32\'s bytes, mean logit KL ~1e-3)');
    }
    const ckpt = Checkpoint.open(dir);
    try {
      const tokenizer = fs.existsSync(path.join(ckpt.dir, 'tokenizer.json')) ? HfTokenizer.load(ckpt.dir) : null;
      return new Model(ckpt, tokenizer, options);
    } catch (e) {
      ckpt.close();
      throw e;
    }
  }

  get config(): ModelConfig {
    return this.ckpt.config;
  }

  get name(): string {
    return path.basename(this.ckpt.dir);
  }

  get device(): Device {
    return this.options.device ?? 'cpu';
  }

  get weights(): WeightOptions {
    return this.options.weights ?? F32_WEIGHTS;
  }

  /** `f32`, `q4b32`, …: the weight format as recorded in results. */
  get weightsKey(): string {
    return weightKey(this.weights);
  }

  get kvMode(): KvMode {
    return this.options.kvMode ?? (this.device === 'webgpu' ? 'present' : 'append');
  }

  fullLayout(): KvLayout {
    return uniformLayout(this.config.numLayers, this.config.numKvHeads);
  }

  /** The session for a KV layout and hook set, compiled and created on first use. */
  session(layout: KvLayout = this.fullLayout(), hooks: HookOptions = NO_HOOKS): Promise<GraphSession> {
    const key = JSON.stringify(layout) + hookKey(hooks);
    let s = this.sessions.get(key);
    if (!s) {
      s = (async () => {
        const kvMode = this.kvMode;
        const compiled = compileGraph(this.ckpt, layout, hooks, kvMode, this.weights, this.options.accuracyLevel);
        const gpuOutputs = kvMode === 'present' ? layout.flatMap((groups, l) => groups.flatMap((_, g) => [hookNames.presentKey(l, g), hookNames.presentValue(l, g)])) : [];
        const session = await createSession(compiled.file, { ...this.options, gpuOutputs });
        return { session, layout, hooks, device: this.device, kvMode };
      })();
      s.catch(() => this.sessions.delete(key));
      this.sessions.set(key, s);
    }
    return s;
  }

  /** A small helper graph (e.g. device-side KV eviction) on this model's device, built once per key; `gpuOutputs` stay on the GPU. */
  auxSession(key: string, build: () => GraphBuilder, gpuOutputs: string[] = []): Promise<ortTypes.InferenceSession> {
    let s = this.aux.get(key);
    if (!s) {
      s = createSession(build().toBytes(key), { ...this.options, threads: 1, gpuOutputs });
      s.catch(() => this.aux.delete(key));
      this.aux.set(key, s);
    }
    return s;
  }

  async dispose(): Promise<void> {
    for (const s of [...[...this.sessions.values()].map(async (g) => (await g).session), ...this.aux.values()]) {
      try {
        await (await s).release();
      } catch {
        // a session that failed to start has nothing to release
      }
    }
    this.sessions.clear();
    this.aux.clear();
    this.ckpt.close();
  }

  tokenize(text: string): number[] {
    if (!this.tokenizer) throw new Error(`${this.ckpt.dir} has no tokenizer.json`);
    return this.tokenizer.encode(text);
  }
}
