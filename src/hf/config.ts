/**
 * Reads a Hugging Face `config.json` into one normalized `ModelConfig`, whatever the family and
 * whichever config generation wrote it (top-level `rope_theta`/`rope_scaling`/`torch_dtype`, or
 * transformers-5 `rope_parameters`/`dtype`). Everything downstream reads only ModelConfig.
 *
 * Which math-changing fields each family reads is `families.ts`; a field that changes the math and
 * is not read by the family (or a value headwise does not implement) stops here with one line naming
 * it — never a silent divergence from Hugging Face. How the graph uses the fields is `graph/arch/`.
 */
import fs from 'node:fs';
import path from 'node:path';
import { HeadwiseError } from '../errors.js';
import { CONFIG_BOUNDS } from './configChecks.js';
import { FAMILIES, FAMILY_READS, MATH_FIELDS, type Family } from './families.js';

export { FAMILIES, type Family } from './families.js';

export const ROPE_TYPES = ['default', 'linear', 'dynamic', 'yarn', 'longrope', 'llama3'] as const;
export type RopeType = (typeof ROPE_TYPES)[number];

export interface RopeConfig {
  theta: number;
  type: RopeType;
  /** linear, dynamic, yarn, llama3 (and longrope, where set). */
  factor?: number;
  lowFreqFactor?: number;
  highFreqFactor?: number;
  originalMaxPositions?: number;
  /** yarn / longrope: the cos/sin multiplier (default from the factor, as Hugging Face computes it). */
  attentionFactor?: number;
  betaFast?: number;
  betaSlow?: number;
  mscale?: number;
  mscaleAllDim?: number;
  truncate?: boolean;
  shortFactor?: number[];
  longFactor?: number[];
  /** Share of head_dim that is rotated (the first dims, half-rotation style); 1 for most families. */
  partialRotary: number;
}

export type Activation = 'silu' | 'gelu_new' | 'gelu' | 'gelu_pytorch_tanh';

export interface MoeConfig {
  experts: number;
  topK: number;
  /** Renormalize the top-k routing weights to sum to 1. */
  normTopK: boolean;
  intermediateSize: number;
  /** qwen2_moe: a shared expert of this width, gated by sigmoid(shared_expert_gate(x)). */
  sharedIntermediateSize: number;
  /** Layers whose MLP is sparse (the others use the dense MLP of `intermediateSize`). */
  sparseLayers: boolean[];
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
  /** gemma3: the RoPE of sliding-window layers (`rope_local_base_freq` / rope_parameters.sliding_attention). */
  localRope?: RopeConfig;
  /** Per layer: the sliding window (a query at t sees keys s with t − s < window), or null (global). */
  layerWindows: (number | null)[];
  tieWordEmbeddings: boolean;
  /** Biases on the q, k, v projections. */
  qkvBias: boolean;
  /** Bias on the attention output projection. */
  oBias: boolean;
  mlpBias: boolean;
  /** Per-head norm on queries and keys before RoPE (qwen3, gemma3, stablelm `qk_layernorm`; olmo2 over the whole projection). */
  qkNorm: boolean;
  hiddenAct: Activation;
  /** Score multiplier (1/√headDim unless `query_pre_attn_scalar` / `attention_multiplier` say otherwise). */
  attnScale: number;
  /** tanh soft-cap of attention scores (gemma2 `attn_logit_softcapping`). */
  attnSoftcap: number | null;
  /** tanh soft-cap of the final logits (gemma2 `final_logit_softcapping`). */
  finalSoftcap: number | null;
  /** granite: embeddings × this. */
  embeddingMultiplier: number;
  /** granite: each branch output × this before the residual add. */
  residualMultiplier: number;
  /** granite: logits ÷ this. */
  logitsScaling: number;
  /** gpt_neox / stablelm / phi: attention and MLP read the same block input and add together. */
  parallelResidual: boolean;
  /** olmo: q, k, v clamped to ±clip. */
  clipQkv: number | null;
  moe?: MoeConfig;
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

function optNum(raw: Raw, key: string, where: string): number | undefined {
  return raw[key] === undefined || raw[key] === null ? undefined : num(raw, key, where);
}

function numList(raw: Raw, key: string, where: string, length: number): number[] {
  const v = raw[key];
  if (!Array.isArray(v) || v.length !== length || v.some((x) => typeof x !== 'number')) {
    throw new HeadwiseError(`${where}: field "${key}" must be a list of ${length} numbers`);
  }
  return v as number[];
}

function ids(v: unknown): number[] {
  if (typeof v === 'number') return [v];
  if (Array.isArray(v)) return v.filter((x): x is number => typeof x === 'number');
  return [];
}

/** One rope parameter set (`rope_parameters`, a per-layer-type entry of it, or legacy `rope_scaling`). */
function readRopeParams(p: Raw | null, fallbackTheta: number, partialDefault: number, rotaryDimsHalf: (partial: number) => number, where: string): RopeConfig {
  const theta = p && typeof p.rope_theta === 'number' ? p.rope_theta : fallbackTheta;
  const type = String(p?.rope_type ?? p?.type ?? 'default');
  const partialRotary = p && typeof p.partial_rotary_factor === 'number' ? p.partial_rotary_factor : partialDefault;
  if (!(partialRotary > 0 && partialRotary <= 1)) throw new HeadwiseError(`${where}: field "partial_rotary_factor" must be in (0, 1], got ${partialRotary}`);
  if (!(ROPE_TYPES as readonly string[]).includes(type)) {
    throw new HeadwiseError(`${where}: field "rope_type" "${type}" is not supported (supported: ${ROPE_TYPES.join(', ')})`);
  }
  const rope: RopeConfig = { theta, type: type as RopeType, partialRotary };
  if (type === 'default') return rope;
  const q = p as Raw;
  const at = `${where}: rope_parameters`;
  const orig = optNum(q, 'original_max_position_embeddings', at);
  if (orig !== undefined) rope.originalMaxPositions = orig;
  const factor = optNum(q, 'factor', at);
  if (factor !== undefined) rope.factor = factor;
  switch (type) {
    case 'linear':
    case 'dynamic':
      rope.factor = num(q, 'factor', at);
      break;
    case 'llama3':
      rope.factor = num(q, 'factor', at);
      rope.lowFreqFactor = num(q, 'low_freq_factor', at);
      rope.highFreqFactor = num(q, 'high_freq_factor', at);
      rope.originalMaxPositions = posInt(q, 'original_max_position_embeddings', at);
      break;
    case 'yarn':
      rope.attentionFactor = optNum(q, 'attention_factor', at);
      rope.betaFast = optNum(q, 'beta_fast', at);
      rope.betaSlow = optNum(q, 'beta_slow', at);
      rope.mscale = optNum(q, 'mscale', at);
      rope.mscaleAllDim = optNum(q, 'mscale_all_dim', at);
      rope.truncate = q.truncate !== false;
      break;
    case 'longrope': {
      const half = rotaryDimsHalf(partialRotary);
      rope.shortFactor = numList(q, 'short_factor', at, half);
      rope.longFactor = numList(q, 'long_factor', at, half);
      rope.attentionFactor = optNum(q, 'attention_factor', at);
      break;
    }
  }
  for (const k of Object.keys(rope) as (keyof RopeConfig)[]) if (rope[k] === undefined) delete rope[k];
  return rope;
}

function readRope(raw: Raw, where: string, headDim: number, maxPositions: number, layerType?: string): RopeConfig {
  // transformers 5 keeps everything under rope_parameters (gemma3: one entry per layer type); older
  // configs use rope_theta + rope_scaling (+ family fields: rotary_pct, rotary_emb_base, partial_rotary_factor).
  let params = (raw.rope_parameters ?? raw.rope_scaling ?? null) as Raw | null;
  if (params && layerType && typeof params[layerType] === 'object') params = params[layerType] as Raw;
  const legacyTheta = num(raw, 'rope_theta', where, num(raw, 'rotary_emb_base', where, 10000));
  const partialDefault = typeof raw.partial_rotary_factor === 'number' ? raw.partial_rotary_factor : typeof raw.rotary_pct === 'number' ? raw.rotary_pct : 1;
  const rope = readRopeParams(params, legacyTheta, partialDefault, (f) => Math.floor(Math.floor(headDim * f) / 2), where);
  // Phi-3 keeps original_max_position_embeddings at the top level.
  if (rope.type !== 'default' && rope.originalMaxPositions === undefined && typeof raw.original_max_position_embeddings === 'number') {
    rope.originalMaxPositions = raw.original_max_position_embeddings;
  }
  if ((rope.type === 'yarn' || rope.type === 'longrope' || rope.type === 'dynamic') && rope.originalMaxPositions === undefined) {
    if (rope.type === 'dynamic') rope.originalMaxPositions = maxPositions;
    else throw new HeadwiseError(`${where}: rope_parameters: missing required field "original_max_position_embeddings"`);
  }
  return rope;
}

/** Refuses fields that change the math but that this family does not read (or values it does not implement). */
function refuseUnread(r: Raw, family: Family, where: string): void {
  const reads = new Set(FAMILY_READS[family]);
  for (const [field, neutral] of Object.entries(MATH_FIELDS)) {
    const v = r[field];
    if (v === undefined || v === null || reads.has(field)) continue;
    if (neutral.some((n) => JSON.stringify(n) === JSON.stringify(v))) continue;
    throw new HeadwiseError(`${where}: field "${field}" (${JSON.stringify(v)}) changes the model's math and is not implemented for model_type "${family}"`);
  }
}

/** The layer count, bounded before anything is allocated per layer (configChecks.ts holds the bounds). */
function layerCount(r: Raw, key: string, where: string): number {
  const n = posInt(r, key, where);
  const [, max] = CONFIG_BOUNDS.numLayers;
  if (n > max) throw new HeadwiseError(`${where}: ${key} ${n} is not plausible (expected an integer from 1 to ${max})`);
  return n;
}

function windowsOf(r: Raw, family: Family, numLayers: number, where: string): (number | null)[] {
  const sw = r.sliding_window;
  const window = sw === undefined || sw === null || sw === 0 ? null : posInt(r, 'sliding_window', where);
  const types = r.layer_types;
  if (Array.isArray(types)) {
    if (types.length !== numLayers) throw new HeadwiseError(`${where}: field "layer_types" has ${types.length} entries for ${numLayers} layers`);
    return types.map((t, l) => {
      if (t === 'full_attention') return null;
      if (t === 'sliding_attention') {
        if (window === null) throw new HeadwiseError(`${where}: layer_types[${l}] is "sliding_attention" but "sliding_window" is not set`);
        return window;
      }
      throw new HeadwiseError(`${where}: field "layer_types" entry "${String(t)}" is not supported (supported: full_attention, sliding_attention)`);
    });
  }
  if (window === null) return new Array<null>(numLayers).fill(null);
  // Configs written before layer_types: each family's own rule, as transformers derives it.
  switch (family) {
    case 'qwen2': case 'qwen2_moe': case 'qwen3': case 'qwen3_moe': {
      const from = num(r, 'max_window_layers', where, numLayers);
      return Array.from({ length: numLayers }, (_, l) => (r.use_sliding_window === true && l >= from ? window : null));
    }
    case 'gemma2':
      return Array.from({ length: numLayers }, (_, l) => ((l + 1) % 2 ? window : null));
    case 'gemma3_text': {
      const pattern = num(r, 'sliding_window_pattern', where, num(r, '_sliding_window_pattern', where, 6));
      return Array.from({ length: numLayers }, (_, l) => ((l + 1) % pattern ? window : null));
    }
    default:
      return new Array<number>(numLayers).fill(window);
  }
}

function readMoe(r: Raw, family: Family, numLayers: number, where: string): MoeConfig | undefined {
  if (family !== 'mixtral' && family !== 'qwen2_moe' && family !== 'qwen3_moe') return undefined;
  const experts = posInt(r, family === 'mixtral' || r.num_experts === undefined ? 'num_local_experts' : 'num_experts', where);
  const step = family === 'mixtral' ? 1 : posInt(r, 'decoder_sparse_step', where, 1);
  const only = new Set(ids(r.mlp_only_layers));
  return {
    experts,
    topK: posInt(r, 'num_experts_per_tok', where),
    normTopK: family === 'mixtral' ? true : r.norm_topk_prob === true,
    intermediateSize: family === 'mixtral' ? posInt(r, 'intermediate_size', where) : posInt(r, 'moe_intermediate_size', where),
    sharedIntermediateSize: family === 'qwen2_moe' ? num(r, 'shared_expert_intermediate_size', where, 0) : 0,
    sparseLayers: Array.from({ length: numLayers }, (_, l) => !only.has(l) && (l + 1) % step === 0),
  };
}

const ACTIVATIONS: readonly Activation[] = ['silu', 'gelu_new', 'gelu', 'gelu_pytorch_tanh'];

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
  refuseUnread(r, family, where);
  const dtype = String(r.dtype ?? r.torch_dtype ?? 'float32');
  const eos = ids(r.eos_token_id);
  const bos = typeof r.bos_token_id === 'number' ? r.bos_token_id : null;
  const none = { attnSoftcap: null, finalSoftcap: null, embeddingMultiplier: 1, residualMultiplier: 1, logitsScaling: 1, parallelResidual: false, clipQkv: null };

  if (family === 'gpt2') {
    const hiddenSize = posInt(r, 'n_embd', where);
    const numHeads = posInt(r, 'n_head', where);
    if (hiddenSize % numHeads !== 0) throw new HeadwiseError(`${where}: n_embd ${hiddenSize} is not divisible by n_head ${numHeads}`);
    const act = String(r.activation_function ?? 'gelu_new');
    if (act !== 'gelu_new' && act !== 'gelu') throw new HeadwiseError(`${where}: activation_function "${act}" is not supported`);
    const numLayers = layerCount(r, 'n_layer', where);
    return {
      family, hiddenSize, numHeads, numKvHeads: numHeads, headDim: hiddenSize / numHeads,
      numLayers,
      intermediateSize: posInt(r, 'n_inner', where, 4 * hiddenSize),
      vocabSize: posInt(r, 'vocab_size', where),
      maxPositions: posInt(r, 'n_positions', where),
      normEps: num(r, 'layer_norm_epsilon', where, 1e-5),
      layerWindows: new Array<null>(numLayers).fill(null),
      tieWordEmbeddings: r.tie_word_embeddings !== false,
      qkvBias: true, oBias: true, mlpBias: true, qkNorm: false,
      hiddenAct: act, attnScale: 1 / Math.sqrt(hiddenSize / numHeads), ...none,
      bosTokenId: bos, eosTokenIds: eos, dtype,
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
  const isGemma = family === 'gemma' || family === 'gemma2' || family === 'gemma3_text';
  // Gemma reads hidden_activation (hidden_act is a legacy alias it ignores when both are set).
  const actField = isGemma && r.hidden_activation != null ? 'hidden_activation' : 'hidden_act';
  const act = String(r[actField] ?? (isGemma ? 'gelu_pytorch_tanh' : 'silu'));
  if (!(ACTIVATIONS as readonly string[]).includes(act)) throw new HeadwiseError(`${where}: ${actField} "${act}" is not supported for ${family} (supported: ${ACTIVATIONS.join(', ')})`);
  const numLayers = layerCount(r, 'num_hidden_layers', where);
  const maxPositions = posInt(r, 'max_position_embeddings', where);
  const attentionBias = r.attention_bias === true;
  const epsKey = ['rms_norm_eps', 'layer_norm_eps', 'norm_epsilon'].find((k) => r[k] !== undefined) ?? 'rms_norm_eps';
  const rope = readRope(r, where, headDim, maxPositions, family === 'gemma3_text' ? 'full_attention' : undefined);
  let localRope: RopeConfig | undefined;
  if (family === 'gemma3_text') {
    const p = r.rope_parameters as Raw | undefined;
    localRope = p && typeof p.sliding_attention === 'object'
      ? readRope(r, where, headDim, maxPositions, 'sliding_attention')
      : { theta: num(r, 'rope_local_base_freq', where, 10000), type: 'default', partialRotary: 1 };
  }
  const qkvBias = family === 'qwen2' || family === 'qwen2_moe' ? r.qkv_bias !== false
    : family === 'phi' || family === 'gpt_neox' ? r.attention_bias !== false
    : family === 'starcoder2' ? r.use_bias !== false
    : family === 'stablelm' ? r.use_qkv_bias === true
    : attentionBias;
  const oBias = family === 'phi' || family === 'gpt_neox' ? true
    : family === 'starcoder2' ? r.use_bias !== false
    : family === 'qwen2' || family === 'qwen2_moe' || family === 'stablelm' ? false
    : attentionBias;
  const scalar = isGemma && family !== 'gemma' ? num(r, 'query_pre_attn_scalar', where, headDim) : headDim;
  return {
    family, hiddenSize, numHeads, numKvHeads, headDim, numLayers, maxPositions,
    intermediateSize: posInt(r, 'intermediate_size', where),
    vocabSize: posInt(r, 'vocab_size', where),
    normEps: family === 'olmo' ? 1e-5 : num(r, epsKey, where, 1e-6),
    rope,
    ...(localRope ? { localRope } : {}),
    layerWindows: windowsOf(r, family, numLayers, where),
    tieWordEmbeddings: r.tie_word_embeddings === true,
    qkvBias,
    oBias,
    mlpBias: family === 'phi' || family === 'gpt_neox' || (family === 'starcoder2' && r.use_bias !== false) || r.mlp_bias === true,
    qkNorm: family === 'qwen3' || family === 'qwen3_moe' || family === 'gemma3_text' || family === 'olmo2' || (family === 'stablelm' && r.qk_layernorm === true),
    hiddenAct: act as Activation,
    attnScale: family === 'granite' ? num(r, 'attention_multiplier', where, 1 / Math.sqrt(headDim)) : 1 / Math.sqrt(scalar),
    attnSoftcap: family === 'gemma2' || family === 'gemma3_text' ? optNum(r, 'attn_logit_softcapping', where) ?? null : null,
    finalSoftcap: family === 'gemma2' || family === 'gemma3_text' ? optNum(r, 'final_logit_softcapping', where) ?? null : null,
    embeddingMultiplier: family === 'granite' ? num(r, 'embedding_multiplier', where, 1) : 1,
    residualMultiplier: family === 'granite' ? num(r, 'residual_multiplier', where, 1) : 1,
    logitsScaling: family === 'granite' ? num(r, 'logits_scaling', where, 1) : 1,
    parallelResidual: family === 'phi' || ((family === 'gpt_neox' || family === 'stablelm') && r.use_parallel_residual === true),
    clipQkv: family === 'olmo' ? optNum(r, 'clip_qkv', where) ?? null : null,
    ...(family === 'mixtral' || family === 'qwen2_moe' || family === 'qwen3_moe' ? { moe: readMoe(r, family, numLayers, where) } : {}),
    bosTokenId: bos, eosTokenIds: eos, dtype,
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
