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
import { compileGraph } from '../graph/compile.js';
import { hookKey, NO_HOOKS, type HookOptions } from '../graph/hooks.js';
import { uniformLayout, type KvLayout } from '../graph/layout.js';
import { createSession, type Device, type SessionOptions } from './ort.js';

export interface GraphSession {
  session: ortTypes.InferenceSession;
  layout: KvLayout;
  hooks: HookOptions;
  device: Device;
}

export class Model {
  private readonly sessions = new Map<string, Promise<GraphSession>>();

  private constructor(
    readonly ckpt: Checkpoint,
    readonly tokenizer: HfTokenizer | null,
    readonly options: SessionOptions,
  ) {}

  /** Opens a Hugging Face model folder. The tokenizer is optional (ids-only use). */
  static async load(dir: string, options: SessionOptions = {}): Promise<Model> {
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

  fullLayout(): KvLayout {
    return uniformLayout(this.config.numLayers, this.config.numKvHeads);
  }

  /** The session for a KV layout and hook set, compiled and created on first use. */
  session(layout: KvLayout = this.fullLayout(), hooks: HookOptions = NO_HOOKS): Promise<GraphSession> {
    const key = JSON.stringify(layout) + hookKey(hooks);
    let s = this.sessions.get(key);
    if (!s) {
      s = (async () => {
        const compiled = compileGraph(this.ckpt, layout, hooks);
        const session = await createSession(compiled.file, this.options);
        return { session, layout, hooks, device: this.device };
      })();
      s.catch(() => this.sessions.delete(key));
      this.sessions.set(key, s);
    }
    return s;
  }

  async dispose(): Promise<void> {
    for (const s of this.sessions.values()) {
      try {
        await (await s).session.release();
      } catch {
        // a session that failed to start has nothing to release
      }
    }
    this.sessions.clear();
    this.ckpt.close();
  }

  tokenize(text: string): number[] {
    if (!this.tokenizer) throw new Error(`${this.ckpt.dir} has no tokenizer.json`);
    return this.tokenizer.encode(text);
  }
}
