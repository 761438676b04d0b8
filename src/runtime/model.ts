/**
 * A loaded model: its checkpoint, normalized config, tokenizer, and the compiled graph variants
 * (one ONNX Runtime session per KV layout + hook set, created on first use and reused). The sessions
 * live in a bounded LRU (`sessionCache.ts`): a long-lived process that sees many hook sets (the web
 * server, one per intervention shape) releases the least recently used ones. A session is never
 * released while something holds it: code that runs inside `withSessions(task)` holds the sessions it
 * asks for until `task` settles; a session asked for outside any such scope is held for the model's
 * lifetime (a one-shot command keeps what it compiled, as before).
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import fs from 'node:fs';
import path from 'node:path';
import type * as ortTypes from 'onnxruntime-node';
import { Checkpoint } from '../hf/checkpoint.js';
import type { ModelConfig } from '../hf/config.js';
import { HfTokenizer } from '../hf/tokenizer.js';
import type { GraphBuilder } from '../graph/builder.js';
import { compileGraph, weightsFileName } from '../graph/compile.js';
import { F32_WEIGHTS, weightKey, type WeightOptions } from '../graph/quant.js';
import type { KvMode } from '../graph/decoder.js';
import { hookKey, hookNames, LOGITS, NO_HOOKS, type HookOptions } from '../graph/hooks.js';
import { uniformLayout, type KvLayout } from '../graph/layout.js';
import { UsageError } from '../errors.js';
import { createSession, type Device, type SessionOptions } from './ort.js';
import { SessionCache, type SessionCacheLimits } from './sessionCache.js';
import { fusedAttentionAgrees } from './fusedAttentionProbe.js';

export interface GraphSession {
  session: ortTypes.InferenceSession;
  layout: KvLayout;
  hooks: HookOptions;
  device: Device;
  /** `append` (CPU buffers) or `present` (KV tensors kept on the device, `deviceKv.ts`). */
  kvMode: KvMode;
  /** Whether the graph's eligible layers attend with fused GroupQueryAttention (`graph/fusedAttention.ts`). */
  fusedAttention: boolean;
  /** Element type of the device KV tensors (`float16` where the graph computes in half, `graph/half.ts`). */
  kvType: 'float32' | 'float16';
  /**
   * Cache classes compiled without a mask (`SessionChoice.causalClasses`; empty unless asked for and
   * fused): `forward` refuses a call on them that needs one.
   */
  causalClasses: string[];
}

/** How a session's graph is specialised beyond layout and hooks. */
export interface SessionChoice {
  /**
   * Cache classes every call on this session will hold with full, in-order history (policy `full`)
   * and run without branches: on the fused GPU graph their unhooked layers then take no mask and let
   * GroupQueryAttention mask causally and apply RoPE itself (fewer nodes; the WebGPU EP's flash
   * kernel). `forward` refuses a call that breaks the promise. Default none (every class masked);
   * `causalClassesOf(policies)` lists a cache setup's full-history classes.
   */
  causalClasses?: string[];
  /** webgpu: the logits stay on the GPU (`forward` then needs `logitsOnDevice`, e.g. the atlas's KL session); on the CPU nothing changes. */
  deviceLogits?: boolean;
}

/** The classes of a cache setup whose policy keeps full history (the `causalClasses` a plain decode may promise). */
export function causalClassesOf(policies: ReadonlyMap<string, { kind: string }>): string[] {
  return [...policies].filter(([, p]) => p.kind === 'full').map(([cls]) => cls).sort();
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
  /** Bounds of the graph-session cache (default `DEFAULT_SESSION_LIMITS`). */
  sessionLimits?: Partial<SessionCacheLimits>;
  /** KV mode `present`: fused GroupQueryAttention on layers nothing hooks inside attention and whose spec it expresses (`graph/fusedAttention.ts`). Default: on for webgpu where the adapter's kernel agrees with the CPU (`fusedAttentionProbe.ts`). */
  fusedAttention?: boolean;
  /** `--weights f16` on webgpu: compute in half precision too (`graph/half.ts`; default true), false: float32 activations. */
  halfActivations?: boolean;
  /** Half-precision activations: the residual stream in `f32` (default) or `f16`. */
  halfResidual?: 'f32' | 'f16';
}

/**
 * Eight sessions and 2 GiB (the bytes of a session are its graph file and the weights file it reads:
 * ONNX Runtime keeps a copy of both), but always the two most recent whatever their size. A web
 * request holds at most four at once.
 */
export const DEFAULT_SESSION_LIMITS: SessionCacheLimits = { maxEntries: 8, maxBytes: 2 * 1024 * 1024 * 1024, minEntries: 2 };

export class Model {
  private readonly sessions: SessionCache<GraphSession>;
  /** The session keys held by the `withSessions` task this code runs in. */
  private readonly held = new AsyncLocalStorage<Set<string>>();
  private readonly aux = new Map<string, Promise<ortTypes.InferenceSession>>();

  private constructor(
    readonly ckpt: Checkpoint,
    readonly tokenizer: HfTokenizer | null,
    readonly options: ModelOptions,
  ) {
    this.sessions = new SessionCache({ ...DEFAULT_SESSION_LIMITS, ...options.sessionLimits }, (g) => g.session.release());
  }

  /** Opens a Hugging Face model folder. The tokenizer is optional (ids-only use). */
  static async load(dir: string, options: ModelOptions = {}): Promise<Model> {
    if (options.weights?.format === 'f16' && (options.device ?? 'cpu') === 'cpu') {
      // Measured on ref-llama-30m: ONNX Runtime's x86 CPU EP has no fp16 MatMul kernel and runs these
      // nodes in float32 (same peak RSS and decode speed as f32), so f16 buys nothing there.
      throw new UsageError('--weights f16 is for --device webgpu: on the CPU ONNX Runtime computes it in float32 (no memory or speed gain); use q8 (a quarter of f32\'s bytes, mean logit KL ~1e-3)');
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

  /**
   * The session for a KV layout and hook set, compiled and created on first use. Inside `withSessions`
   * it is held until that task settles; outside, for the model's lifetime.
   */
  session(layout: KvLayout = this.fullLayout(), hooks: HookOptions = NO_HOOKS, choice: SessionChoice = {}): Promise<GraphSession> {
    const causal = this.kvMode === 'present' ? [...new Set(choice.causalClasses ?? [])].sort() : [];
    const deviceLogits = !!choice.deviceLogits && this.device === 'webgpu';
    const key = JSON.stringify(layout) + hookKey(hooks) + (causal.length ? JSON.stringify(causal) : '') + (deviceLogits ? '|device-logits' : '');
    const s = this.sessions.acquire(key, async () => {
      const kvMode = this.kvMode;
      const c = this.config;
      // Fused by default on webgpu where this adapter's kernel agrees with the CPU (fusedAttentionProbe.ts).
      const fused = this.options.fusedAttention ?? (this.device === 'webgpu' && kvMode === 'present' && (await fusedAttentionAgrees(c.numHeads, c.numKvHeads, c.headDim)));
      const compiled = compileGraph(this.ckpt, layout, hooks, kvMode, { fusedAttention: fused, causalClasses: causal, weights: this.weights, accuracyLevel: this.options.accuracyLevel, halfActivations: this.options.halfActivations, halfResidual: this.options.halfResidual });
      const gpuOutputs = kvMode === 'present' ? layout.flatMap((groups, l) => groups.flatMap((_, g) => [hookNames.presentKey(l, g), hookNames.presentValue(l, g)])) : [];
      if (deviceLogits) gpuOutputs.push(LOGITS);
      const session = await createSession(compiled.file, { ...this.options, gpuOutputs });
      return { value: { session, layout, hooks, device: this.device, kvMode, fusedAttention: fused && kvMode === 'present', kvType: compiled.kvType, causalClasses: compiled.causalClasses }, bytes: graphBytes(compiled.file, weightsFileName(kvMode, this.weights)) };
    });
    const held = this.held.getStore();
    if (held) {
      // One pin per key and task: a second ask only refreshes its place in the LRU.
      if (held.has(key)) this.sessions.unpin(key);
      else held.add(key);
    }
    return s;
  }

  /**
   * Runs `task` holding every session it asks for until it settles; afterwards the cache may release
   * them (least recently used first) to stay within `sessionLimits`.
   */
  async withSessions<T>(task: () => Promise<T>): Promise<T> {
    const held = new Set<string>();
    try {
      return await this.held.run(held, task);
    } finally {
      for (const key of held) this.sessions.unpin(key);
    }
  }

  /** Graph sessions held now, their estimated bytes, and how many were released to stay in bounds. */
  sessionStats(): { entries: number; bytes: number; evictions: number; pinned: number } {
    return this.sessions.stats();
  }

  /**
   * A small helper graph (e.g. device-side KV eviction, the atlas's KL) on this model's device, built
   * once per key; `gpuOutputs` stay on the GPU. One CPU thread unless `cpu.threads` says otherwise;
   * `cpu.noSpin`: its threads sleep between runs (they would compete with the model session's).
   */
  auxSession(key: string, build: () => GraphBuilder, gpuOutputs: string[] = [], cpu: { threads?: number; noSpin?: boolean } = {}): Promise<ortTypes.InferenceSession> {
    let s = this.aux.get(key);
    if (!s) {
      s = createSession(build().toBytes(key), { ...this.options, threads: cpu.threads ?? 1, noSpin: cpu.noSpin, gpuOutputs });
      s.catch(() => this.aux.delete(key));
      this.aux.set(key, s);
    }
    return s;
  }

  async dispose(): Promise<void> {
    await this.sessions.clear();
    for (const s of this.aux.values()) {
      try {
        await (await s).release();
      } catch {
        // a session that failed to start has nothing to release
      }
    }
    this.aux.clear();
    this.ckpt.close();
  }

  tokenize(text: string): number[] {
    if (!this.tokenizer) throw new Error(`${this.ckpt.dir} has no tokenizer.json`);
    return this.tokenizer.encode(text);
  }
}

/** What a session of `file` weighs: the graph and the weights file beside it that it reads. */
function graphBytes(file: string, weightsFile: string): number {
  const size = (f: string) => {
    try {
      return fs.statSync(f).size;
    } catch {
      return 0;
    }
  };
  return size(file) + size(path.join(path.dirname(file), weightsFile));
}
