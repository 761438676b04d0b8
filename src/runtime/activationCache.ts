/**
 * `runWithCache`: one forward pass of a prompt that returns every hook point asked for (`graph/hooks.ts`
 * lists them with their shapes) as an `ActivationCache` — `cache.get('blocks.6.attn.hook_pattern')` is a
 * [heads, q, k] tensor, `cache.pattern(6, 6)` one head's [q, k] attention, `cache.stack('hook_resid_post')`
 * every layer's [layers, q, d]. The graph is compiled with exactly those outputs (a plain graph has none),
 * and the memory the cache would take is estimated first and refused past a limit.
 */
import os from 'node:os';
import { HeadwiseError } from '../errors.js';
import { archFor } from '../graph/compile.js';
import { blockHook, CAPTURE_POINTS, LN_FINAL, logitLensName, NO_HOOKS, scoresOutput, type BlockHookPoint, type HookName, type HookOptions } from '../graph/hooks.js';
import { forward, newCache } from './forward.js';
import { fullCache } from './generate.js';
import type { Model } from './model.js';

/** A dense float32 array with its shape (row-major). */
export interface Tensor {
  shape: number[];
  data: Float32Array;
}

export interface RunWithCacheOptions {
  /**
   * Hook points to cache: full names (`blocks.3.attn.hook_q`, `ln_final.hook_normalized`) or a block
   * point (`hook_resid_post`) for every layer. Default: every hook point of every layer.
   */
  names?: readonly (HookName | BlockHookPoint)[];
  /** Also cache the logit lens of every layer, `blocks.{l}.hook_logit_lens` [logitsAt, vocab] (default false). */
  logitLens?: boolean;
  /** Prompt positions whose logits are returned (and the logit lens read): `'last'` (default), `'all'`, or a list. */
  logitsAt?: 'last' | 'all' | number[];
  /** Refuse when the cache would take more bytes than this (default: half the free memory, at most 4 GiB). */
  maxBytes?: number;
}

/** The hook points of one run, by name (`runWithCache`); tensors are row-major with the shapes of `graph/hooks.ts`. */
export class ActivationCache {
  constructor(
    /** The prompt's token ids. */
    readonly ids: readonly number[],
    /** [logitsAt.length, vocab] */
    readonly logits: Tensor,
    readonly logitsAt: readonly number[],
    private readonly values: ReadonlyMap<string, Tensor>,
    private readonly numLayers: number,
    private readonly numHeads: number,
  ) {}

  /** Names held, in hook order. */
  names(): string[] {
    return [...this.values.keys()];
  }

  has(name: string): boolean {
    return this.values.has(name);
  }

  /** The cached tensor of a hook point (shapes in `graph/hooks.ts`). */
  get(name: HookName | string): Tensor {
    const t = this.values.get(name);
    if (!t) throw new HeadwiseError(`cache: ${name} was not cached (cached: ${this.describeNames()})`);
    return t;
  }

  /** Attention of one head, [q, k] (query rows × keys of the prompt). */
  pattern(layer: number, head: number): Tensor {
    const t = this.get(blockHook(layer, 'attn.hook_pattern'));
    if (!(Number.isInteger(head) && head >= 0 && head < this.numHeads)) throw new HeadwiseError(`cache.pattern: head ${head} is out of range (${this.numHeads} heads)`);
    const [, q, k] = t.shape;
    return { shape: [q, k], data: t.data.slice(head * q * k, (head + 1) * q * k) };
  }

  /** One block hook point of every layer stacked: [layers, ...shape]. */
  stack(point: BlockHookPoint | 'hook_logit_lens'): Tensor {
    const parts = Array.from({ length: this.numLayers }, (_, l) => this.get(point === 'hook_logit_lens' ? logitLensName(l) : blockHook(l, point)));
    const data = new Float32Array(parts.reduce((n, p) => n + p.data.length, 0));
    let at = 0;
    for (const p of parts) {
      data.set(p.data, at);
      at += p.data.length;
    }
    return { shape: [this.numLayers, ...parts[0].shape], data };
  }

  private describeNames(): string {
    const n = this.values.size;
    return n === 0 ? 'nothing' : n <= 6 ? this.names().join(', ') : `${this.names().slice(0, 6).join(', ')} and ${n - 6} more`;
  }
}

/** Expands bare block points to every layer and checks every name against the model. */
export function resolveHookNames(model: Model, names: readonly string[] | undefined): string[] {
  const L = model.config.numLayers;
  const parallel = archFor(model.ckpt).block.residual === 'parallel';
  const points = CAPTURE_POINTS.filter((p) => !(parallel && p === 'hook_resid_mid'));
  const out: string[] = [];
  const all = names ?? [...points, LN_FINAL];
  for (const name of all) {
    if ((CAPTURE_POINTS as readonly string[]).includes(name)) {
      if (parallel && name === 'hook_resid_mid') throw new HeadwiseError(`names: hook_resid_mid does not exist in ${model.config.family} (parallel attention and MLP: no residual between them)`);
      for (let l = 0; l < L; l++) out.push(blockHook(l, name as BlockHookPoint));
      continue;
    }
    if (name === LN_FINAL) {
      out.push(name);
      continue;
    }
    const m = /^blocks\.(\d+)\.(.+)$/.exec(name);
    if (!m || !(CAPTURE_POINTS as readonly string[]).includes(m[2])) {
      throw new HeadwiseError(`names: unknown hook point "${name}" (expected blocks.{layer}.{${CAPTURE_POINTS.join('|')}}, ${LN_FINAL}, or a block point alone for every layer)`);
    }
    if (Number(m[1]) >= L) throw new HeadwiseError(`names: ${name}: layer ${m[1]} is out of range (model has ${L} layers)`);
    if (parallel && m[2] === 'hook_resid_mid') throw new HeadwiseError(`names: ${name} does not exist in ${model.config.family} (parallel attention and MLP)`);
    out.push(name);
  }
  return [...new Set(out)];
}

/** Shape of a hook point's tensor for a prompt of T tokens. */
function shapeOf(model: Model, name: string, T: number): number[] {
  const { hiddenSize: d, numHeads: H, numKvHeads: Hkv, headDim: D } = model.config;
  if (name === LN_FINAL) return [T, d];
  const point = name.replace(/^blocks\.\d+\./, '');
  switch (point as BlockHookPoint) {
    case 'attn.hook_q':
    case 'attn.hook_z':
      return [T, H, D];
    case 'attn.hook_k':
    case 'attn.hook_v':
      return [T, Hkv, D];
    case 'attn.hook_attn_scores':
    case 'attn.hook_pattern':
      return [H, T, T];
    case 'attn.hook_result':
      return [T, H, d];
    default:
      return [T, d];
  }
}

/** Runs `prompt` once and caches the hook points asked for. */
export async function runWithCache(model: Model, prompt: string | readonly number[], options: RunWithCacheOptions = {}): Promise<ActivationCache> {
  const c = model.config;
  const ids = typeof prompt === 'string' ? model.tokenize(prompt) : [...prompt];
  if (ids.length === 0) throw new HeadwiseError('runWithCache: no tokens');
  const T = ids.length;
  const names = resolveHookNames(model, options.names);
  const logitsAt = options.logitsAt === undefined || options.logitsAt === 'last' ? [T - 1] : options.logitsAt === 'all' ? [...Array(T).keys()] : [...options.logitsAt];
  for (const p of logitsAt) if (!(Number.isInteger(p) && p >= 0 && p < T)) throw new HeadwiseError(`logitsAt: ${p} is not a prompt position (0..${T - 1})`);

  const bytes = 4 * (names.reduce((n, name) => n + shapeOf(model, name, T).reduce((a, b) => a * b, 1), 0) + (options.logitLens ? c.numLayers * logitsAt.length * c.vocabSize : 0));
  const limit = options.maxBytes ?? Math.min(4 * 2 ** 30, os.freemem() / 2);
  if (bytes > limit) {
    throw new HeadwiseError(`runWithCache: caching ${names.length} hook points for ${T} tokens needs ${(bytes / 2 ** 20).toFixed(0)} MiB, over the limit of ${(limit / 2 ** 20).toFixed(0)} MiB (ask for fewer names, a shorter prompt, or raise maxBytes)`);
  }
  const layersOf = (point: string) => names.flatMap((n) => (n.endsWith(`.${point}`) ? [Number(n.split('.')[1])] : []));
  const hooks: HookOptions = {
    ...NO_HOOKS,
    capturePattern: layersOf('attn.hook_pattern'),
    captureZ: layersOf('attn.hook_z'),
    capture: names.filter((n) => !n.endsWith('.attn.hook_pattern') && !n.endsWith('.attn.hook_z')),
    logitLens: options.logitLens ?? false,
  };
  // The model's own attention: sliding-window layers see their window (fullCache).
  const setup = fullCache(model);
  if (setup.layout.some((groups) => groups.length !== 1)) throw new HeadwiseError(`runWithCache: ${model.config.family} splits a layer's KV heads into cache groups; not supported yet`);
  const gs = await model.session(setup.layout, hooks);
  const kv = newCache(model, gs, setup.policies);
  const r = await forward(model, gs, kv, ids, { logitsAt, captureRows: hooks.capturePattern.length ? [...Array(T).keys()] : [], commit: false });

  const values = new Map<string, Tensor>();
  const byPattern = new Map(r.patterns.map((p) => [p.layer, p]));
  for (const name of names) {
    const l = Number(name.split('.')[1]);
    const shape = shapeOf(model, name, T);
    let data: Float32Array;
    if (name.endsWith('.attn.hook_pattern')) data = byPattern.get(l)!.data;
    else if (name.endsWith('.attn.hook_z')) data = r.z.get(l)!;
    else if (name.endsWith('.attn.hook_attn_scores')) data = r.captured.get(scoresOutput(l, 0))!;
    else data = r.captured.get(name)!;
    values.set(name, { shape, data });
  }
  if (options.logitLens) for (let l = 0; l < c.numLayers; l++) values.set(logitLensName(l), { shape: [logitsAt.length, c.vocabSize], data: r.captured.get(logitLensName(l))! });
  return new ActivationCache(ids, { shape: [logitsAt.length, c.vocabSize], data: r.logits }, logitsAt, values, c.numLayers, c.numHeads);
}
