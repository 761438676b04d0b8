/**
 * Path-free attribution that is exact without gradients: direct logit attribution (DLA) and the logit
 * lens, from one cached run (`runtime/activationCache.ts`).
 *
 * DLA: the last residual stream at a position is a sum of components — the (scaled) embeddings, every
 * head's write `hook_result`, each layer's attention-output bias (`hook_attn_out` − Σ heads) and MLP
 * output, times the block's residual multiplier. The final norm is linearised with its scale **frozen
 * at the clean run**: RMSNorm y = g ⊙ x / σ(x) becomes the diagonal map c ↦ (y ⊘ x) ⊙ c with σ taken
 * from this run, so the components' images sum to y exactly; the LM head is linear, so each component's
 * attribution is s · (W_U[answer] − W_U[wrong]) · (y ⊘ x ⊙ c) and the attributions plus the LM head's
 * bias term sum to the logit difference (`attribution.test.ts` checks ≤ 1e-3). Refused, naming the
 * reason, where this is not exact: LayerNorm final norms (centering and bias), post-branch norms
 * (gemma2/3, olmo2) and logit soft-caps.
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
  const probe = new GraphBuilder('probe');
  arch.finalNorm(probe, (n) => n, 'x');
  const ops = probe.opTypes();
  if (!ops.includes('SimplifiedLayerNormalization') || ops.some((o) => !['SimplifiedLayerNormalization', 'Add', 'Constant'].includes(o))) {
    return `${model.config.family}'s final norm is not an RMSNorm (${[...new Set(ops)].join(', ')}); freezing a LayerNorm's scale also needs its centering and bias, not done yet`;
  }
  return null;
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
  // The frozen norm: y = gain ⊙ x exactly at this run.
  const gain = new Float64Array(d);
  for (let i = 0; i < d; i++) gain[i] = x[i] === 0 ? 0 : y[i] / x[i];
  const { weight, bias } = unembedding(model);
  const dir = new Float64Array(d);
  for (let i = 0; i < d; i++) dir[i] = s * gain[i] * (weight[answer * d + i] - (wrong === null ? 0 : weight[wrong * d + i]));
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
  const sum = embed + heads.reduce((a, h) => a + h.attribution, 0) + attnBias.reduce((a, b) => a + b, 0) + mlp.reduce((a, b) => a + b, 0) + lmBias;
  return {
    format: 'headwise.attribution/1',
    model: model.name,
    position: pos,
    answer: tokenTexts(model, [answer])[0],
    wrong: wrong === null ? null : tokenTexts(model, [wrong])[0],
    norm: 'final RMSNorm scale frozen at this run (per-dimension gain y/x of the last residual stream)',
    logitDiff: target,
    heads,
    embed,
    attnBias,
    mlp,
    lmHeadBias: lmBias,
    sum,
    logitLens: lens,
  };
}
