/**
 * Plausibility checks on a normalized `ModelConfig`, for every family alike (`config.ts` reads the
 * fields; this file decides whether the numbers can be a real model): every size is an integer within a
 * bound no released transformer comes near, epsilons lie in (0, 1), RoPE parameters are finite and
 * positive, token ids fall inside the vocabulary. With the checkpoint's tensors at hand it also checks
 * the config against them — a config cannot claim more layers than the checkpoint has tensors for, nor
 * an embedding of another size — before anything sized by the config is allocated. `Checkpoint.open`
 * calls it; a config that fails is refused with one line naming the file and field.
 */
import { HeadwiseError } from '../errors.js';
import type { ModelConfig } from './config.js';

/** Upper bounds, far above any released model (Llama 3 405B: 126 layers, hidden 16 384, vocab 128 256). */
export const CONFIG_BOUNDS = {
  numLayers: [1, 1024],
  hiddenSize: [1, 1 << 17],
  numHeads: [1, 1024],
  numKvHeads: [1, 1024],
  headDim: [1, 4096],
  intermediateSize: [1, 1 << 20],
  vocabSize: [1, 1 << 23],
  maxPositions: [16, 1 << 24],
} as const satisfies Partial<Record<keyof ModelConfig, readonly [number, number]>>;

/** Field names as config.json spells them, for messages. */
const FIELD_NAMES: Record<keyof typeof CONFIG_BOUNDS, string> = {
  numLayers: 'num_hidden_layers',
  hiddenSize: 'hidden_size',
  numHeads: 'num_attention_heads',
  numKvHeads: 'num_key_value_heads',
  headDim: 'head_dim',
  intermediateSize: 'intermediate_size',
  vocabSize: 'vocab_size',
  maxPositions: 'max_position_embeddings',
};

/** A tensor's name and shape, as the checkpoint's headers give them. */
export interface TensorShape {
  name: string;
  shape: readonly number[];
}

const LAYER_INDEX = /(?:^|\.)(?:layers|h|blocks|layer)\.(\d+)\./;
const TOKEN_EMBEDDING = /(?:^|\.)(?:embed_tokens|wte|embed_in|word_embeddings)\.weight$/;
const POSITION_EMBEDDING = /(?:^|\.)wpe\.weight$/;

/**
 * Throws a HeadwiseError naming `where` and the field when `config` is implausible, or (given
 * `tensors`) does not fit the checkpoint.
 */
export function checkModelConfig(config: ModelConfig, where: string, tensors?: Iterable<TensorShape>): void {
  const fail = (msg: string): never => {
    throw new HeadwiseError(`${where}: ${msg}`);
  };
  for (const [key, [min, max]] of Object.entries(CONFIG_BOUNDS) as [keyof typeof CONFIG_BOUNDS, readonly [number, number]][]) {
    const v = config[key];
    if (!Number.isSafeInteger(v) || v < min || v > max) fail(`${FIELD_NAMES[key]} ${v} is not plausible (expected an integer from ${min} to ${max})`);
  }
  if (config.numKvHeads > config.numHeads || config.numHeads % config.numKvHeads !== 0) {
    fail(`num_attention_heads ${config.numHeads} is not a multiple of num_key_value_heads ${config.numKvHeads}`);
  }
  if (!(config.normEps > 0 && config.normEps < 1)) fail(`norm epsilon ${config.normEps} must lie in (0, 1)`);
  const rope = config.rope;
  if (rope) {
    if (!(Number.isFinite(rope.theta) && rope.theta > 0)) fail(`rope_theta ${rope.theta} must be a finite number > 0`);
    if (rope.type === 'llama3') {
      for (const [name, v] of [['factor', rope.factor], ['low_freq_factor', rope.lowFreqFactor], ['high_freq_factor', rope.highFreqFactor]] as const) {
        if (!(typeof v === 'number' && Number.isFinite(v) && v > 0)) fail(`rope_parameters.${name} ${v} must be a finite number > 0`);
      }
      if (!(rope.highFreqFactor! > rope.lowFreqFactor!)) fail(`rope_parameters.high_freq_factor ${rope.highFreqFactor} must be greater than low_freq_factor ${rope.lowFreqFactor}`);
      const orig = rope.originalMaxPositions;
      if (!(Number.isSafeInteger(orig) && orig! >= 1 && orig! <= CONFIG_BOUNDS.maxPositions[1])) fail(`rope_parameters.original_max_position_embeddings ${orig} is not plausible`);
    }
  }
  const ids = [...(config.bosTokenId === null ? [] : [['bos_token_id', config.bosTokenId] as const]), ...config.eosTokenIds.map((id) => ['eos_token_id', id] as const)];
  for (const [name, id] of ids) {
    if (!Number.isInteger(id) || id < 0 || id >= config.vocabSize) fail(`${name} ${id} is outside the vocabulary of ${config.vocabSize}`);
  }
  if (tensors) checkAgainstTensors(config, [...tensors], fail);
}

function checkAgainstTensors(config: ModelConfig, tensors: TensorShape[], fail: (msg: string) => never): void {
  let layers = 0;
  for (const t of tensors) {
    const m = LAYER_INDEX.exec(t.name);
    if (m) layers = Math.max(layers, Number(m[1]) + 1);
  }
  if (layers > 0 && config.numLayers > layers) fail(`num_hidden_layers ${config.numLayers} but the checkpoint has tensors for ${layers} layers`);
  const embed = tensors.find((t) => TOKEN_EMBEDDING.test(t.name));
  if (embed && embed.shape.length === 2 && embed.shape[0] !== config.vocabSize) {
    fail(`vocab_size ${config.vocabSize} but ${embed.name} has ${embed.shape[0]} rows`);
  }
  if (embed && embed.shape.length === 2 && embed.shape[1] !== config.hiddenSize) {
    fail(`hidden size ${config.hiddenSize} but ${embed.name} is ${embed.shape[1]} wide`);
  }
  const wpe = tensors.find((t) => POSITION_EMBEDDING.test(t.name));
  if (wpe && wpe.shape.length === 2 && wpe.shape[0] < config.maxPositions) {
    fail(`n_positions ${config.maxPositions} but ${wpe.name} has ${wpe.shape[0]} rows`);
  }
}
