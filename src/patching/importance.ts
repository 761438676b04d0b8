/**
 * Head importance on the caller's own task: every head ablated in turn — zeroed, set to its mean
 * output, or resampled from another prompt — and the change of a metric measured on each prompt, then
 * averaged with a 95% t interval over prompts (`stats.ts`). This is how safety heads (KL of the output
 * under ablation on harmful queries) and knowledge-conflict heads (logit difference of the two answers)
 * are found. Uses only per-head output hooks, so it works on every architecture.
 *
 * Prompts (`ImportanceItem`): `{prompt, answer}` — the answer is teacher-forced after the prompt, its
 * log-probability summed over its tokens — optionally with `wrong` for a logit difference of the two
 * answers' first tokens; or a clean/corrupt pair `{clean, corrupt, answer, wrong}`, measured on the
 * clean prompt, whose corrupt prompt is what `resample` takes the head's output from (for a plain
 * prompt, the next prompt of the list).
 *
 * Scope — which positions the ablation covers, both exact (`patchedRun.ts`):
 * - `all` (default): every position of the prompt, as if the head were removed from the model. One full
 *   forward of the prompt per head (positions after an ablated one change, so nothing is shared);
 *   `resample` then runs one call per token (the replacement differs per position) and is slow.
 * - `answer`: only the rows that predict the answer (the last prompt token and the teacher-forced answer
 *   tokens): the head still writes its normal output at every earlier position. The prompt's prefix is
 *   computed once and shared; each head re-runs only the answer rows. Much faster; measures the head's
 *   role at the answer, which is where retrieval heads act.
 *
 * Effect per prompt: for `logprob` and `logit-diff` the drop (unablated − ablated), for `kl` the mean
 * KL(unablated ‖ ablated) over the answer rows.
 */
import { HeadwiseError } from '../errors.js';
import type { HeadId } from '../runtime/capture.js';
import type { Model } from '../runtime/model.js';
import { answerTokens, promptTokens } from './answerTokens.js';
import type { AblationMode, AblationScope, HeadEffect, ImportanceResult } from './format.js';
import { answerLogProb, logitDifference, meanKl, type MetricName } from './metrics.js';
import { headZ, PatchedRunner, type HeadPatch } from './patchedRun.js';
import { meanInterval } from './stats.js';

export type ImportanceItem =
  | { readonly prompt: string; readonly answer: string; readonly wrong?: string }
  | { readonly clean: string; readonly corrupt: string; readonly answer: string; readonly wrong: string };

export interface ImportanceOptions {
  /** Default `logit-diff` when every item has a wrong answer, else `logprob`. */
  metric?: MetricName;
  /** Default `zero`. */
  ablation?: AblationMode;
  /** Default `all`. */
  scope?: AblationScope;
  /** Heads to rank (default every head). */
  heads?: readonly HeadId[];
  onProgress?: (done: number, total: number) => void;
}

interface Prepared {
  runner: PatchedRunner;
  /** Rows whose logits the metric reads. */
  rows: number[];
  /** Teacher-forced answer tokens (`logprob`), or [answer, wrong] first tokens (`logit-diff`). */
  tokens: number[];
  /** Prompt tokens (before any teacher-forced answer token). */
  promptLength: number;
  /** The corrupt prompt of a pair (resample source). */
  corrupt: number[] | null;
}

export async function headImportance(model: Model, items: readonly ImportanceItem[], options: ImportanceOptions = {}): Promise<ImportanceResult> {
  const { numLayers: L, numHeads: H, headDim: D } = model.config;
  if (items.length === 0) throw new HeadwiseError('importance: no prompts');
  const metric = options.metric ?? (items.every((it) => it.wrong !== undefined) ? 'logit-diff' : 'logprob');
  const ablation = options.ablation ?? 'zero';
  const scope = options.scope ?? 'all';
  const heads = options.heads ?? Array.from({ length: L * H }, (_, i) => ({ layer: Math.floor(i / H), head: i % H }));
  if (ablation === 'resample' && items.length < 2 && !('clean' in items[0])) throw new HeadwiseError('importance: resample ablation needs two prompts or a clean/corrupt pair');
  const started = performance.now();

  const prepared: Prepared[] = [];
  for (const [i, item] of items.entries()) {
    const what = `prompt ${i + 1}`;
    const ids = promptTokens(model, 'clean' in item ? item.clean : item.prompt, `${what}: prompt`);
    const answer = answerTokens(model, item.answer, `${what}: answer`);
    const corrupt = 'clean' in item ? promptTokens(model, item.corrupt, `${what}: corrupt`) : null;
    const T = ids.length;
    let seq = ids;
    let rows = [T - 1];
    let tokens: number[];
    if (metric === 'logit-diff') {
      if (item.wrong === undefined) throw new HeadwiseError(`${what}: metric logit-diff needs a wrong answer`);
      const wrong = answerTokens(model, item.wrong, `${what}: wrong`)[0];
      if (wrong === answer[0]) throw new HeadwiseError(`${what}: answer and wrong start with the same token (${wrong})`);
      tokens = [answer[0], wrong];
    } else {
      seq = [...ids, ...answer.slice(0, -1)];
      rows = answer.map((_, r) => T - 1 + r);
      tokens = answer;
    }
    if (seq.length > model.config.maxPositions) throw new HeadwiseError(`${what}: ${seq.length} tokens exceed the model's context of ${model.config.maxPositions}`);
    prepared.push({ runner: await PatchedRunner.create(model, seq), rows, tokens, promptLength: T, corrupt });
  }

  // Head outputs the ablations need: means over every position of every prompt, or each prompt's resample source.
  let means: Map<number, Float32Array> | null = null;
  const sourceZ: Map<number, Float32Array>[] = [];
  if (ablation === 'mean') {
    means = new Map();
    let count = 0;
    for (const p of prepared) {
      const { z } = await p.runner.outputs([p.rows[0]]);
      for (const [l, zl] of z) {
        const m = means.get(l) ?? means.set(l, new Float32Array(H * D)).get(l)!;
        for (let i = 0; i < zl.length; i++) m[i % (H * D)] += zl[i];
      }
      count += p.runner.ids.length;
    }
    for (const m of means.values()) for (let i = 0; i < m.length; i++) m[i] /= count;
  } else if (ablation === 'resample') {
    for (const [i, p] of prepared.entries()) {
      const source = p.corrupt ?? [...prepared[(i + 1) % prepared.length].runner.ids];
      const seq = p.corrupt ? [...p.corrupt, ...p.runner.ids.slice(p.promptLength)] : source;
      sourceZ.push((await (await PatchedRunner.create(model, seq)).outputs([seq.length - 1])).z);
    }
  }

  const measure = (p: Prepared, logits: Float32Array): number => {
    if (metric === 'logit-diff') return logitDifference(logits, p.tokens[0], p.tokens[1]);
    return answerLogProb(logits, model.config.vocabSize, p.tokens);
  };
  const effects = heads.map(() => [] as number[]);
  const baselines: number[] = [];
  let done = 0;
  for (const [i, p] of prepared.entries()) {
    const base = await p.runner.run([], p.rows);
    baselines.push(metric === 'kl' ? 0 : measure(p, base));
    const seqLength = p.runner.ids.length;
    const from = scope === 'all' ? 0 : p.promptLength - 1;
    for (const [k, { layer, head }] of heads.entries()) {
      let value: HeadPatch['value'] = 'zero';
      if (means) value = means.get(layer)!.subarray(head * D, (head + 1) * D);
      else if (ablation === 'resample') {
        const z = sourceZ[i].get(layer)!;
        const srcLength = z.length / (H * D);
        // Aligned from the end: the source's answer rows replace this prompt's.
        const shift = srcLength - seqLength;
        if (from + shift < 0) throw new HeadwiseError(`prompt ${i + 1}: its resample source has ${srcLength} tokens, fewer than the ${seqLength - from} positions ablated (use scope "answer", or prompts of equal length)`);
        value = (t: number) => headZ(z, t + shift, head, H, D);
      }
      const ablated = await p.runner.run([{ layer, head, from, to: seqLength, value }], p.rows);
      effects[k].push(metric === 'kl' ? meanKl(base, ablated, model.config.vocabSize) : measure(p, base) - measure(p, ablated));
      options.onProgress?.(++done, heads.length * prepared.length);
    }
  }
  const ranked: HeadEffect[] = heads.map(({ layer, head }, k) => {
    const { mean, ci } = meanInterval(effects[k]);
    return { layer, head, effect: mean, ci };
  });
  ranked.sort((a, b) => b.effect - a.effect || a.layer - b.layer || a.head - b.head);
  return {
    format: 'headwise.importance/1',
    model: model.name,
    metric,
    ablation,
    scope,
    prompts: items.length,
    baseline: baselines.reduce((a, b) => a + b, 0) / baselines.length,
    heads: ranked,
    elapsedMs: performance.now() - started,
  };
}

/**
 * Reads a JSONL prompt file: one `{"prompt", "answer"[, "wrong"]}` or `{"clean", "corrupt", "answer",
 * "wrong"}` object per line, blank lines skipped. Errors name the file and line.
 */
export function parseImportanceFile(text: string, file: string): ImportanceItem[] {
  const items: ImportanceItem[] = [];
  text.split('\n').forEach((line, i) => {
    if (line.trim() === '') return;
    const at = `${file}:${i + 1}`;
    let v: unknown;
    try {
      v = JSON.parse(line);
    } catch (e) {
      throw new HeadwiseError(`${at}: not valid JSON (${(e as Error).message})`);
    }
    if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new HeadwiseError(`${at}: expected an object {"prompt", "answer"} or {"clean", "corrupt", "answer", "wrong"}`);
    const o = v as Record<string, unknown>;
    const pair = 'clean' in o || 'corrupt' in o;
    const allowed = pair ? ['clean', 'corrupt', 'answer', 'wrong'] : ['prompt', 'answer', 'wrong'];
    const required = pair ? allowed : ['prompt', 'answer'];
    for (const k of Object.keys(o)) if (!allowed.includes(k)) throw new HeadwiseError(`${at}: unknown field "${k}" (a ${pair ? 'pair takes clean, corrupt, answer, wrong' : 'prompt takes prompt, answer, wrong'})`);
    for (const k of required) if (o[k] === undefined) throw new HeadwiseError(`${at}: missing "${k}"`);
    for (const k of Object.keys(o)) if (typeof o[k] !== 'string' || o[k] === '') throw new HeadwiseError(`${at}: "${k}" must be a non-empty string`);
    items.push(o as ImportanceItem);
  });
  if (items.length === 0) throw new HeadwiseError(`${file}: no prompts`);
  return items;
}
