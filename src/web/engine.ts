/**
 * What the web API asks of the model, run one request at a time: a head's attention pattern on a
 * prompt, and a generation with and without an intervention spec together with the next-token
 * probabilities of both. The queue is the only place the server touches the runtime, so concurrent
 * requests wait their turn instead of fighting over ONNX Runtime's threads. Validating request bodies
 * is `server.ts`'s; what the interventions mean is `interventions/`'s.
 */
import { HeadwiseError } from '../errors.js';
import { NO_HOOKS, type HookOptions } from '../graph/hooks.js';
import { forward, newCache, type HookProvider } from '../runtime/forward.js';
import { disposeDeviceKv } from '../runtime/deviceKv.js';
import { fullCache, generate, prefill, type GenerateResult } from '../runtime/generate.js';
import type { Model } from '../runtime/model.js';
import { bindIntervention, needsMeans } from '../interventions/bind.js';
import { describe } from '../interventions/compose.js';
import { isNoop } from '../interventions/lower.js';
import { cachedHeadMeans, defaultMeanPrompts, type HeadMeans } from '../interventions/means.js';
import type { InterventionSpec } from '../interventions/spec.js';
import type { GenerateResponse, GenerateRun, NextTokenChange, PatternResponse } from './api.js';

/** Runs async tasks one after another; refuses new ones when `maxPending` are already waiting. */
export class TaskQueue {
  private tail: Promise<unknown> = Promise.resolve();
  private waiting = 0;

  /** `scope` wraps each task (the engine's holds the model's sessions while the task runs). */
  constructor(
    readonly maxPending = 32,
    private readonly scope: <T>(task: () => Promise<T>) => Promise<T> = (task) => task(),
  ) {}

  get pending(): number {
    return this.waiting;
  }

  run<T>(task: () => Promise<T>): Promise<T> {
    if (this.waiting >= this.maxPending) {
      return Promise.reject(new QueueFullError(`the engine is busy (${this.waiting} requests waiting); try again shortly`));
    }
    this.waiting++;
    const result = this.tail.then(() => this.scope(task));
    const settled = result.then(
      () => undefined,
      () => undefined,
    );
    this.tail = settled;
    return result.finally(() => this.waiting--);
  }
}

export class QueueFullError extends Error {
  override readonly name = 'QueueFullError';
}

export class Engine {
  /** Every task holds the sessions it uses until it ends; between tasks the model's LRU may release them. */
  readonly queue: TaskQueue;
  constructor(readonly model: Model) {
    this.queue = new TaskQueue(32, (task) => model.withSessions(task));
    if (!model.tokenizer) throw new HeadwiseError(`${model.ckpt.dir}: no tokenizer.json; the web app needs text prompts`);
  }

  tokenize(prompt: string): number[] {
    return this.model.tokenize(prompt);
  }

  tokenStrings(ids: number[]): string[] {
    return ids.map((id) => this.model.tokenizer!.tokenString(id));
  }

  /** The attention of one head over a prompt: every query row, every key. */
  pattern(ids: number[], layer: number, head: number): Promise<PatternResponse> {
    return this.queue.run(async () => {
      const setup = fullCache(this.model);
      const gs = await this.model.session(setup.layout, { ...NO_HOOKS, capturePattern: [layer] });
      const cache = newCache(this.model, gs, setup.policies);
      const rows = ids.map((_, i) => i);
      const r = await forward(this.model, gs, cache, ids, { captureRows: rows, logitsAt: [ids.length - 1] });
      disposeDeviceKv(cache);
      const group = r.patterns.find((p) => p.layer === layer && p.heads.includes(head));
      if (!group) throw new Error(`no captured pattern for ${layer}:${head}`);
      const h = group.heads.indexOf(head);
      const K = group.keyPositions.length;
      const n = ids.length;
      const attention = Array.from({ length: n }, (_, q) => {
        const row = new Array<number>(n).fill(0);
        const base = (h * n + q) * K;
        for (let k = 0; k < K; k++) row[group.keyPositions[k]] = round5(group.data[base + k]);
        return row;
      });
      return { layer, head, tokens: this.tokenStrings(ids), ids, attention };
    });
  }

  /**
   * Generates greedily from `prompt` without interventions and, when `spec` is given, with them; both
   * with the top-k next-token probabilities right after the prompt.
   */
  generate(prompt: string, ids: number[], spec: InterventionSpec | null, maxNewTokens: number, topK: number): Promise<GenerateResponse> {
    return this.queue.run(async () => {
      const base = await this.run(ids, maxNewTokens, topK, NO_HOOKS, undefined);
      let after: typeof base | null = null;
      if (spec && spec.interventions.length > 0) {
        const means = needsMeans(spec) ? await this.headMeans() : undefined;
        const bound = await bindIntervention(this.model, spec, ids, { prompt, means });
        after = isNoop(bound.lowered) ? base : await this.run(ids, maxNewTokens, topK, bound.hookOptions, bound.hooks);
      }
      const candidates = [...new Set([...base.run.topK, ...(after?.run.topK ?? [])].map((t) => t.id))];
      const nextTokens: NextTokenChange[] = candidates
        .map((id) => ({ id, token: this.model.tokenizer!.tokenString(id), before: base.probs[id], after: after ? after.probs[id] : null }))
        .sort((x, y) => Math.max(y.before, y.after ?? 0) - Math.max(x.before, x.after ?? 0));
      return {
        promptTokens: ids.length,
        promptTail: this.model.tokenizer!.decode(ids.slice(-12)),
        nextTokens,
        baseline: base.run,
        intervened: after?.run ?? null,
        interventions: spec ? describe(spec).split('\n').filter(Boolean) : [],
      };
    });
  }

  private means: Promise<HeadMeans> | null = null;

  /** Mean head outputs for mean ablation: computed on first use (or read from the model's cache folder). */
  private headMeans(): Promise<HeadMeans> {
    this.means ??= cachedHeadMeans(this.model, defaultMeanPrompts(this.model.tokenizer!));
    this.means.catch(() => (this.means = null));
    return this.means;
  }

  private async run(ids: number[], maxNewTokens: number, topK: number, hookOptions: HookOptions, hooks: HookProvider | undefined): Promise<{ run: GenerateRun; probs: Float64Array }> {
    const opts = { maxNewTokens, hookOptions, hooks, temperature: 0 };
    const { cache, logits } = await prefill(this.model, ids, opts);
    disposeDeviceKv(cache);
    const result: GenerateResult = await generate(this.model, ids, opts);
    const probs = softmax(logits.subarray(0, this.model.config.vocabSize));
    const top = Array.from(probs.keys()).sort((a, b) => probs[b] - probs[a]).slice(0, topK);
    return {
      run: { text: result.text, tokens: result.tokens, topK: top.map((id) => ({ id, token: this.model.tokenizer!.tokenString(id), prob: probs[id] })), stoppedBy: result.stoppedBy },
      probs,
    };
  }
}

function softmax(logits: Float32Array): Float64Array {
  let max = -Infinity;
  for (const x of logits) if (x > max) max = x;
  const out = new Float64Array(logits.length);
  let sum = 0;
  for (let i = 0; i < logits.length; i++) sum += out[i] = Math.exp(logits[i] - max);
  for (let i = 0; i < out.length; i++) out[i] /= sum;
  return out;
}

function round5(x: number): number {
  return Math.round(x * 1e5) / 1e5;
}
