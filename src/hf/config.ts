/**
 * Reads a Hugging Face `config.json` into one normalized `ModelConfig`, whatever the family
 * (llama, mistral, qwen2, qwen3, gpt2) and whichever config generation wrote it (top-level
 * `rope_theta`/`rope_scaling`/`torch_dtype`, or transformers-5 `rope_parameters`/`dtype`).
 * Everything downstream reads only ModelConfig; family differences in the graph live in `graph/arch/`.
 */
import fs from 'node:fs';
import path from 'node:path';
import { HeadwiseError } from '../errors.js';

export const FAMILIES = ['llama', 'mistral', 'qwen2', 'qwen3', 'gpt2'] as const;
export type Family = (typeof FAMILIES)[number];

export interface RopeConfig {
  theta: number;
  type: 'default' | 'llama3';
  factor?: number;
  lowFreqFactor?: number;
  highFreqFactor?: number;
  originalMaxPositions?: number;
}

export interface ModelConfig {
  family: Family;
  numLayers: number;
  hiddenSize: number;
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  intermediateSize: number;
  vocabSize: number;
  /** Longest context the model supports (max_position_embeddings / n_positions). */
  maxPositions: number;
  normEps: number;
  /** Absent for learned absolute positions (gpt2). */
  rope?: RopeConfig;
  tieWordEmbeddings: boolean;
  /** Biases on the q, k, v projections. */
  qkvBias: boolean;
  /** Bias on the attention output projection. */
  oBias: boolean;
  mlpBias: boolean;
  /** Per-head RMSNorm on queries and keys before RoPE (qwen3). */
  qkNorm: boolean;
  hiddenAct: 'silu' | 'gelu_new' | 'gelu';
  bosTokenId: number | null;
  eosTokenIds: number[];
  /** dtype the checkpoint says it is stored in, informational. */
  dtype: string;
}

type Raw = Record<string, unknown>;

function num(raw: Raw, key: string, where: string, fallback?: number): number {
  const v = raw[key];
  if (v === undefined || v === null) {
    if (fallback !== undefined) return fallback;
    throw new HeadwiseError(`${where}: missing required field "${key}"`);
  }
  if (typeof v !== 'number' || !Number.isFinite(v)) throw new HeadwiseError(`${where}: field "${key}" must be a number, got ${JSON.stringify(v)}`);
  return v;
}

function posInt(raw: Raw, key: string, where: string, fallback?: number): number {
  const v = num(raw, key, where, fallback);
  if (!Number.isInteger(v) || v <= 0) throw new HeadwiseError(`${where}: field "${key}" must be a positive integer, got ${v}`);
  return v;
}

function ids(v: unknown): number[] {
  if (typeof v === 'number') return [v];
  if (Array.isArray(v)) return v.filter((x): x is number => typeof x === 'number');
  return [];
}

function readRope(raw: Raw, where: string): RopeConfig {
  // transformers 5 keeps everything under rope_parameters; older configs use rope_theta + rope_scaling.
  const params = (raw.rope_parameters ?? raw.rope_scaling ?? null) as Raw | null;
  const theta = params && typeof params.rope_theta === 'number' ? params.rope_theta : num(raw, 'rope_theta', where, 10000);
  const type = (params?.rope_type ?? params?.type ?? 'default') as string;
  if (type === 'default') return { theta, type };
  if (type === 'llama3') {
    const p = params as Raw;
    const at = `${where}: rope_parameters`;
    return {
      theta,
      type,
      factor: num(p, 'factor', at),
      lowFreqFactor: num(p, 'low_freq_factor', at),
      highFreqFactor: num(p, 'high_freq_factor', at),
      originalMaxPositions: posInt(p, 'original_max_position_embeddings', at),
    };
  }
  throw new HeadwiseError(`${where}: rope type "${type}" is not supported (supported: default, llama3)`);
}

/** Normalizes a parsed config.json object. `where` names the file in errors. */
export function parseModelConfig(raw: unknown, where = 'config.json'): ModelConfig {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) throw new HeadwiseError(`${where}: must be a JSON object`);
  const r = raw as Raw;
  const modelType = r.model_type;
  if (typeof modelType !== 'string') throw new HeadwiseError(`${where}: missing required field "model_type"`);
  if (!(FAMILIES as readonly string[]).includes(modelType)) {
    throw new HeadwiseError(`${where}: model_type "${modelType}" is not supported (supported: ${FAMILIES.join(', ')})`);
  }
  const family = modelType as Family;
  const dtype = String(r.dtype ?? r.torch_dtype ?? 'float32');
  const eos = ids(r.eos_token_id);
  const bos = typeof r.bos_token_id === 'number' ? r.bos_token_id : null;

  if (family === 'gpt2') {
    const hiddenSize = posInt(r, 'n_embd', where);
    const numHeads = posInt(r, 'n_head', where);
    if (hiddenSize % numHeads !== 0) throw new HeadwiseError(`${where}: n_embd ${hiddenSize} is not divisible by n_head ${numHeads}`);
    const act = String(r.activation_function ?? 'gelu_new');
    if (act !== 'gelu_new' && act !== 'gelu') throw new HeadwiseError(`${where}: activation_function "${act}" is not supported`);
    return {
      family, hiddenSize, numHeads, numKvHeads: numHeads, headDim: hiddenSize / numHeads,
      numLayers: posInt(r, 'n_layer', where),
      intermediateSize: posInt(r, 'n_inner', where, 4 * hiddenSize),
      vocabSize: posInt(r, 'vocab_size', where),
      maxPositions: posInt(r, 'n_positions', where),
      normEps: num(r, 'layer_norm_epsilon', where, 1e-5),
      tieWordEmbeddings: r.tie_word_embeddings !== false,
      qkvBias: true, oBias: true, mlpBias: true, qkNorm: false,
      hiddenAct: act, bosTokenId: bos, eosTokenIds: eos, dtype,
    };
  }

  const hiddenSize = posInt(r, 'hidden_size', where);
  const numHeads = posInt(r, 'num_attention_heads', where);
  const numKvHeads = posInt(r, 'num_key_value_heads', where, numHeads);
  if (numHeads % numKvHeads !== 0) {
    throw new HeadwiseError(`${where}: num_attention_heads ${numHeads} is not a multiple of num_key_value_heads ${numKvHeads}`);
  }
  const headDim = r.head_dim == null ? hiddenSize / numHeads : posInt(r, 'head_dim', where);
  if (!Number.isInteger(headDim)) throw new HeadwiseError(`${where}: hidden_size ${hiddenSize} is not divisible by num_attention_heads ${numHeads}`);
  const act = String(r.hidden_act ?? 'silu');
  if (act !== 'silu') throw new HeadwiseError(`${where}: hidden_act "${act}" is not supported for ${family} (supported: silu)`);
  const attentionBias = r.attention_bias === true;
  return {
    family, hiddenSize, numHeads, numKvHeads, headDim,
    numLayers: posInt(r, 'num_hidden_layers', where),
    intermediateSize: posInt(r, 'intermediate_size', where),
    vocabSize: posInt(r, 'vocab_size', where),
    maxPositions: posInt(r, 'max_position_embeddings', where),
    normEps: num(r, 'rms_norm_eps', where, 1e-6),
    rope: readRope(r, where),
    tieWordEmbeddings: r.tie_word_embeddings === true,
    qkvBias: family === 'qwen2' || attentionBias,
    oBias: family !== 'qwen2' && attentionBias,
    mlpBias: r.mlp_bias === true,
    qkNorm: family === 'qwen3',
    hiddenAct: 'silu', bosTokenId: bos, eosTokenIds: eos, dtype,
  };
}

/** Reads and normalizes `dir/config.json`. */
export function readModelConfig(dir: string): ModelConfig {
  const file = path.join(dir, 'config.json');
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new HeadwiseError(code === 'ENOENT' ? `${file}: not found (is ${dir} a Hugging Face model folder?)` : `${file}: cannot read (${code})`);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new HeadwiseError(`${file}: not valid JSON (${(e as Error).message})`);
  }
  return parseModelConfig(raw, file);
}
