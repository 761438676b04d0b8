/**
 * A local Hugging Face model folder: config.json, safetensors weights (one file or shards listed in
 * `model.safetensors.index.json`) and, optionally, the tokenizer. Weights are looked up by their
 * Hugging Face names and read one tensor at a time as float32. Opening checks the config against the
 * tensors present (`configChecks.ts`) before anything is sized by it.
 */
import fs from 'node:fs';
import path from 'node:path';
import { HeadwiseError } from '../errors.js';
import { readModelConfig, type ModelConfig } from './config.js';
import { checkModelConfig } from './configChecks.js';
import { SafetensorsFile, type TensorInfo } from './safetensors.js';

export class Checkpoint {
  private constructor(
    readonly dir: string,
    readonly config: ModelConfig,
    private readonly files: SafetensorsFile[],
    private readonly owner: Map<string, SafetensorsFile>,
  ) {}

  static open(dir: string): Checkpoint {
    const abs = path.resolve(dir);
    if (!fs.existsSync(abs) || !fs.statSync(abs).isDirectory()) throw new HeadwiseError(`${dir}: model folder not found`);
    const config = readModelConfig(abs);
    const single = path.join(abs, 'model.safetensors');
    const index = path.join(abs, 'model.safetensors.index.json');
    const files: SafetensorsFile[] = [];
    const owner = new Map<string, SafetensorsFile>();
    try {
      if (fs.existsSync(single)) {
        const f = SafetensorsFile.open(single);
        files.push(f);
        for (const name of f.tensors.keys()) owner.set(name, f);
      } else if (fs.existsSync(index)) {
        let weightMap: Record<string, string>;
        try {
          weightMap = JSON.parse(fs.readFileSync(index, 'utf8')).weight_map;
        } catch (e) {
          throw new HeadwiseError(`${index}: not valid JSON (${(e as Error).message})`);
        }
        if (!weightMap || typeof weightMap !== 'object') throw new HeadwiseError(`${index}: missing "weight_map"`);
        const byFile = new Map<string, SafetensorsFile>();
        for (const [name, shard] of Object.entries(weightMap)) {
          if (typeof shard !== 'string' || shard.includes('/') || shard.includes('\\')) {
            throw new HeadwiseError(`${index}: weight_map["${name}"] must be a file name in the model folder`);
          }
          let f = byFile.get(shard);
          if (!f) {
            f = SafetensorsFile.open(path.join(abs, shard));
            byFile.set(shard, f);
            files.push(f);
          }
          if (!f.tensors.has(name)) throw new HeadwiseError(`${shard}: no tensor named "${name}" (listed in model.safetensors.index.json)`);
          owner.set(name, f);
        }
      } else {
        throw new HeadwiseError(`${dir}: no model.safetensors or model.safetensors.index.json`);
      }
      // Before anything is sized by the config: is it plausible, and does it fit the tensors present?
      checkModelConfig(config, path.join(abs, 'config.json'), [...owner.entries()].map(([name, f]) => f.info(name)));
    } catch (e) {
      for (const f of files) f.close();
      throw e;
    }
    return new Checkpoint(abs, config, files, owner);
  }

  has(name: string): boolean {
    return this.owner.has(name);
  }

  get tensorNames(): string[] {
    return [...this.owner.keys()];
  }

  info(name: string): TensorInfo {
    return this.file(name).info(name);
  }

  /** Reads a tensor as float32, checking its shape. */
  read(name: string, shape: number[], out?: Float32Array): Float32Array {
    const info = this.info(name);
    if (info.shape.length !== shape.length || info.shape.some((d, i) => d !== shape[i])) {
      throw new HeadwiseError(`${path.basename(this.file(name).file)}: tensor "${name}" has shape [${info.shape.join(', ')}], expected [${shape.join(', ')}]`);
    }
    return this.file(name).readFloat32(name, out);
  }

  /** Size and modification time of every weight file: the identity used to cache compiled weights. */
  fingerprint(): string {
    return this.files.map((f) => {
      const s = fs.statSync(f.file);
      return `${path.basename(f.file)}:${s.size}:${s.mtimeMs}`;
    }).join('|');
  }

  close(): void {
    for (const f of this.files) f.close();
  }

  private file(name: string): SafetensorsFile {
    const f = this.owner.get(name);
    if (!f) throw new HeadwiseError(`${this.dir}: checkpoint has no tensor named "${name}"`);
    return f;
  }
}
