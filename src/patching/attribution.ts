/**
 * Path-free attribution that is exact without gradients: direct logit attribution (DLA) and the logit
 * lens, from one cached run (`runtime/activationCache.ts`).
 *
 * DLA: the last residual stream at a position is a sum of components — the (scaled) token and position
 * embeddings, every head's write `hook_result`, each layer's attention-output bias (`hook_attn_out` −
 * Σ heads) and MLP output, times the block's residual multiplier (parallel blocks — gpt_neox, phi,
 * stablelm's parallel variant — add both branches to the same stream, which changes nothing here).
 * The final norm is linearised with its scale **frozen at the clean run**: RMSNorm y = g ⊙ x / σ(x)
 * becomes the diagonal map c ↦ (y ⊘ x) ⊙ c; LayerNorm y = (x − mean x)/σ ⊙ w + b becomes the affine map
 * c ↦ (c − mean c)/σ ⊙ w, with σ = sqrt(var x + eps) of this run and b its own term (non-parametric
 * LayerNorm, olmo: w = 1, b = 0). The components' images plus b sum to y exactly; the LM head is linear,
 * so each component's attribution is s · (W_U[answer] − W_U[wrong]) · image(c), and the attributions
 * plus the norm-bias and LM-head-bias terms sum to the logit difference (`attribution.test.ts` checks
 * ≤ 1e-3). Refused, naming the reason, where this is not exact: post-branch norms (gemma2/3, olmo2: a
 * norm of the branch's output is not linear in the heads), logit soft-caps (tanh), and quantised
 * weights (the LM head read here is the checkpoint's f32, not the one the graph computes with).
 *
 * Logit lens: each block's output through the real final norm and LM head (in the graph, not
 * linearised), read at the position — logit difference and answer log-prob per layer.
 */
import { HeadwiseError } from '../errors.js';
import { GraphBuilder } from '../graph/builder.js';
import { archFor } from '../graph/compile.js';
import { blockHook, LN_FINAL, logitLensName } from '../graph/hooks.js';
import { logSoftmax } from '../heads/kl.js';
import { runWithCache } from '../runtime/activationCache.js';
import type { Model } from '../runtime/model.js';
import { answerTokens, promptTokens, tokenTexts } from './answerTokens.js';
import type { AttributionResult } from './format.js';

export interface AttributionOptions {
  answer: string | readonly number[];
  /** Default: none — attributions are then of the answer's logit alone. */
  wrong?: string | readonly number[];
  /** Prompt position read (default the last). */
  position?: number;
}

/** Why DLA would not be exact for this model, or null. */
export function attributionRefusal(model: Model): string | null {
  const arch = archFor(model.ckpt);
  if (arch.postAttnNorm || arch.postMlpNorm) return `${model.config.family} normalises the attention/MLP outputs before the residual add, so heads do not add up linearly`;
  if (arch.block.logitSoftcap !== null) return `${model.config.family} soft-caps the logits (tanh), which is not linear`;
  if (model.weights.format !== 'f32') return `the model runs with ${model.weights.format} weights; DLA reads the checkpoint's f32 LM head, so its terms would not sum to this run's logits (load it with f32 weights)`;
  if (finalNormKind(model) === null) {
    const probe = new GraphBuilder('probe');
    arch.finalNorm(probe, (n) => n, 'x');
    return `${model.config.family}'s final norm is neither an RMSNorm nor a LayerNorm (${[...new Set(probe.opTypes())].join(', ')})`;
  }
  return null;
}

/** The final norm's kind, from the ops the architecture builds for it (null: neither). */
function finalNormKind(model: Model): 'rms' | 'layer' | null {
  const probe = new GraphBuilder('probe');
  archFor(model.ckpt).finalNorm(probe, (n) => n, 'x');
  const ops = probe.opTypes();
  const only = (norm: string) => ops.filter((o) => o === norm).length === 1 && ops.every((o) => [norm, 'Add', 'Constant'].includes(o));
  return only('SimplifiedLayerNormalization') ? 'rms' : only('LayerNormalization') ? 'layer' : null;
}

/** A LayerNorm final norm's weight and bias [d], read from what finalNorm uses (none read: non-parametric, 1 and 0). */
function layerNormAffine(model: Model): { weight: Float64Array; bias: Float64Array } {
  const arch = archFor(model.ckpt);
  const d = model.config.hiddenSize;
  const probe = new GraphBuilder('probe');
  const read: string[] = [];
  arch.finalNorm(probe, (n) => (read.push(n), n), 'x');
  const actual = (name: string) => (arch.namePrefixes ?? ['']).map((p) => p + name).find((n) => model.ckpt.has(n)) ?? name;
  const weight = new Float64Array(d).fill(1);
  const bias = new Float64Array(d);
  for (const name of read) {
    if (name.endsWith('.weight')) weight.set(model.ckpt.read(actual(name), [d]));
    else if (name.endsWith('.bias')) bias.set(model.ckpt.read(actual(name), [d]));
    else throw new HeadwiseError(`${model.config.family}: final norm reads ${name}, neither a weight nor a bias`);
  }
  return { weight, bias };
}

/** The LM head's weight [vocab, d] and bias [vocab] (or null), found by reading what the architecture's lmHead uses. */
function unembedding(model: Model): { weight: Float32Array; bias: Float32Array | null } {
  const arch = archFor(model.ckpt);
  const { vocabSize: V, hiddenSize: d } = model.config;
  const probe = new GraphBuilder('probe');
  const read: string[] = [];
  arch.lmHead(probe, (n) => (read.push(n), n), 'x');
  const actual = (name: string) => (arch.namePrefixes ?? ['']).map((p) => p + name).find((n) => model.ckpt.has(n)) ?? name;
  let weight: Float32Array | null = null;
  let bias: Float32Array | null = null;
  for (const name of read) {
    const shape = model.ckpt.info(actual(name)).shape;
    if (shape.length === 2 && shape[0] === V && shape[1] === d) weight = model.ckpt.read(actual(name), [V, d]);
    else if (shape.length === 1 && shape[0] === V) bias = model.ckpt.read(actual(name), [V]);
  }
  if (!weight) throw new HeadwiseError(`${model.config.family}: cannot find the LM head's [${V}, ${d}] weight among ${read.join(', ')}`);
  return { weight, bias };
}

export async function directLogitAttribution(model: Model, prompt: string | readonly number[], options: AttributionOptions): Promise<AttributionResult> {
  const refusal = attributionRefusal(model);
  if (refusal) throw new HeadwiseError(`direct logit attribution: ${refusal}`);
  const c = model.config;
  const { numLayers: L, numHeads: H, hiddenSize: d } = c;
  const ids = promptTokens(model, prompt, 'prompt');
  const T = ids.length;
  const pos = options.position ?? T - 1;
  if (!(Number.isInteger(pos) && pos >= 0 && pos < T)) throw new HeadwiseError(`position: ${pos} is not a prompt position (0..${T - 1})`);
  const answer = answerTokens(model, options.answer, 'answer')[0];
  const wrong = options.wrong === undefined ? null : answerTokens(model, options.wrong, 'wrong')[0];
  if (wrong === answer) throw new HeadwiseError(`answer and wrong start with the same token (${answer})`);
  const arch = archFor(model.ckpt);
  const rs = arch.block.residualScale;
  const s = arch.block.logitScale;

  const cache = await runWithCache(model, ids, {
    names: ['blocks.0.hook_resid_pre', 'attn.hook_result', 'hook_attn_out', 'hook_mlp_out', `blocks.${L - 1}.hook_resid_post`, LN_FINAL],
    logitsAt: [pos],
    logitLens: true,
  });
  const row = (name: string) => cache.get(name).data.subarray(pos * d, (pos + 1) * d);
  const x = row(blockHook(L - 1, 'hook_resid_post'));
  const y = row(LN_FINAL);
  const { weight, bias } = unembedding(model);
  const unembed = new Float64Array(d);
  for (let i = 0; i < d; i++) unembed[i] = s * (weight[answer * d + i] - (wrong === null ? 0 : weight[wrong * d + i]));
  // The frozen norm as a linear map on components, folded into the direction they are read along.
  const dir = new Float64Array(d);
  let normBias = 0;
  let normText: string;
  if (finalNormKind(model) === 'rms') {
    // y = gain ⊙ x exactly at this run.
    for (let i = 0; i < d; i++) dir[i] = (x[i] === 0 ? 0 : y[i] / x[i]) * unembed[i];
    normText = 'final RMSNorm scale frozen at this run (per-dimension gain y/x of the last residual stream)';
  } else {
    // y = (x − mean x)/σ ⊙ w + b: dir · (c − mean c) = (dir − mean dir) · c, so centre the direction.
    const ln = layerNormAffine(model);
    let mean = 0;
    for (let i = 0; i < d; i++) mean += x[i] / d;
    let variance = 0;
    for (let i = 0; i < d; i++) variance += (x[i] - mean) ** 2 / d;
    const sigma = Math.sqrt(variance + c.normEps);
    for (let i = 0; i < d; i++) dir[i] = (ln.weight[i] / sigma) * unembed[i];
    const dirMean = dir.reduce((a, v) => a + v, 0) / d;
    for (let i = 0; i < d; i++) dir[i] -= dirMean;
    for (let i = 0; i < d; i++) normBias += ln.bias[i] * unembed[i];
    normText = `final LayerNorm scale frozen at this run (σ = ${sigma.toPrecision(6)} of the last residual stream; centering applied to each term, the norm's bias its own term)`;
  }
  const dot = (v: ArrayLike<number>, scale = 1) => {
    let acc = 0;
    for (let i = 0; i < d; i++) acc += dir[i] * v[i];
    return acc * scale;
  };
  const embed = dot(row('blocks.0.hook_resid_pre'));
  const heads: AttributionResult['heads'] = [];
  const attnBias: number[] = [];
  const mlp: number[] = [];
  for (let l = 0; l < L; l++) {
    const result = cache.get(blockHook(l, 'attn.hook_result')).data;
    const out = row(blockHook(l, 'hook_attn_out'));
    const rest = Float64Array.from(out);
    for (let h = 0; h < H; h++) {
      const r = result.subarray((pos * H + h) * d, (pos * H + h + 1) * d);
      heads.push({ layer: l, head: h, attribution: dot(r, rs) });
      for (let i = 0; i < d; i++) rest[i] -= r[i];
    }
    attnBias.push(dot(rest, rs));
    mlp.push(dot(row(blockHook(l, 'hook_mlp_out')), rs));
  }
  const lmBias = bias ? s * (bias[answer] - (wrong === null ? 0 : bias[wrong])) : 0;
  const logits = cache.logits.data;
  const target = logits[answer] - (wrong === null ? 0 : logits[wrong]);
  const lens = Array.from({ length: L }, (_, l) => {
    const lg = cache.get(logitLensName(l)).data;
    return { layer: l, logitDiff: lg[answer] - (wrong === null ? 0 : lg[wrong]), answerLogProb: logSoftmax(lg)[answer] };
  });
  const sum = embed + heads.reduce((a, h) => a + h.attribution, 0) + attnBias.reduce((a, b) => a + b, 0) + mlp.reduce((a, b) => a + b, 0) + normBias + lmBias;
  return {
    format: 'headwise.attribution/1',
    model: model.name,
    position: pos,
    answer: tokenTexts(model, [answer])[0],
    wrong: wrong === null ? null : tokenTexts(model, [wrong])[0],
    norm: normText,
    logitDiff: target,
    heads,
    embed,
    attnBias,
    mlp,
    normBias,
    lmHeadBias: lmBias,
    sum,
    logitLens: lens,
  };
}
