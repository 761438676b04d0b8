/**
 * Activation patching (clean → corrupt, "denoising"): run the corrupt prompt with one activation taken
 * from the clean run, and measure how much of the clean behaviour comes back. The activations are
 * head outputs `blocks.{l}.attn.hook_z` — per head at the chosen positions (`head`), per head and
 * position (`head-pos`), or all heads of a layer at one position (`attn-out`, which is exactly patching
 * `blocks.{l}.hook_attn_out` there: o_proj is linear and its bias, if any, is the same in both runs).
 * Every such patch is exact: `patchedRun.ts` runs the positions after a patched one on top of the
 * patched KV cache, as the patched model would. Per layer × position, `resid-pre` replaces the residual
 * stream entering block l (`blocks.{l}.hook_resid_pre`) and `mlp-out` the MLP's output (added to
 * `hook_resid_post` as the difference clean − corrupt, times the residual multiplier: exact where no
 * norm follows the MLP), both on graphs cut at the residual stream (`runtime/runWithHooks.ts`).
 * Metrics are read at the last prompt position (`metrics.ts`).
 *
 * @example
 * const r = await activationPatching(model, { clean, corrupt, answer: ' 4821', wrong: ' 7390' });
 * r.cells.sort((a, b) => b.restored - a.restored)[0]; // the head whose clean output restores most
 */
import { HeadwiseError } from '../errors.js';
import type { HeadId } from '../runtime/capture.js';
import type { Model } from '../runtime/model.js';
import { klDivergence } from '../heads/kl.js';
import { answerTokens, promptTokens, tokenTexts } from './answerTokens.js';
import type { PatchCell, PatchingResult, PatchMode } from './format.js';
import { logitDifference, restoredFraction, type MetricName } from './metrics.js';
import { headZ, PatchedRunner, type HeadPatch } from './patchedRun.js';
import { archFor } from '../graph/compile.js';
import { runWithCache } from '../runtime/activationCache.js';
import { runWithHooks } from '../runtime/runWithHooks.js';
import { logSoftmax } from '../heads/kl.js';

export interface PatchingOptions {
  clean: string | readonly number[];
  /** Same number of tokens as `clean` (positions are compared one to one). */
  corrupt: string | readonly number[];
  /** The expected answer after the clean prompt (its first token is read). */
  answer: string | readonly number[];
  /** The answer the corrupt prompt leads to; needed for `logit-diff`. */
  wrong?: string | readonly number[];
  /** Default `logit-diff` when `wrong` is given, else `logprob`. */
  metric?: MetricName;
  /** Default `head`; `joint` patches all of `heads` together, as one cell. */
  mode?: PatchMode;
  /**
   * Positions to patch: `last` (default for `head`), `diff` (where clean and corrupt tokens differ, and
   * the last; default for the other modes), `all`, or a list.
   */
  positions?: 'last' | 'diff' | 'all' | number[];
  /** Heads to patch (default every head); `attn-out` uses their layers. */
  heads?: readonly HeadId[];
  onProgress?: (done: number, total: number) => void;
}

export async function activationPatching(model: Model, options: PatchingOptions): Promise<PatchingResult> {
  const { numLayers: L, numHeads: H, headDim: D } = model.config;
  const clean = promptTokens(model, options.clean, 'clean');
  const corrupt = promptTokens(model, options.corrupt, 'corrupt');
  if (clean.length !== corrupt.length) {
    throw new HeadwiseError(`clean and corrupt prompts must have the same number of tokens (got ${clean.length} and ${corrupt.length}); patching compares positions one to one`);
  }
  const T = clean.length;
  const answer = answerTokens(model, options.answer, 'answer')[0];
  const wrong = options.wrong === undefined ? null : answerTokens(model, options.wrong, 'wrong')[0];
  const metric = options.metric ?? (wrong === null ? 'logprob' : 'logit-diff');
  if (metric === 'logit-diff' && wrong === null) throw new HeadwiseError('metric logit-diff needs a wrong answer');
  if (wrong !== null && wrong === answer) throw new HeadwiseError(`answer and wrong start with the same token (${answer}); give answers whose first tokens differ`);
  const mode = options.mode ?? 'head';
  if (mode === 'joint' && !options.heads?.length) throw new HeadwiseError('joint patching needs the heads to patch together');
  const positions = patchPositions(options.positions ?? (mode === 'head' ? 'last' : 'diff'), clean, corrupt);
  const heads = options.heads ?? Array.from({ length: L * H }, (_, i) => ({ layer: Math.floor(i / H), head: i % H }));
  for (const h of heads) if (!(h.layer >= 0 && h.layer < L && h.head >= 0 && h.head < H)) throw new HeadwiseError(`heads: ${h.layer}:${h.head} is not in the model (${L} layers × ${H} heads)`);

  const started = performance.now();
  const cleanOut = await (await PatchedRunner.create(model, clean)).outputs([T - 1]);
  const runner = await PatchedRunner.create(model, corrupt);
  const corruptLogits = await runner.run([], [T - 1]);
  const measure = (logits: Float32Array): number => {
    if (metric === 'logit-diff') return logitDifference(logits, answer, wrong!);
    if (metric === 'logprob') return logSoftmax(logits)[answer];
    return klDivergence(cleanOut.logits, logits);
  };
  const cleanValue = measure(cleanOut.logits);
  const corruptValue = measure(corruptLogits);
  const fromClean = (layer: number, head: number, at: number[]): HeadPatch[] =>
    at.map((p) => ({ layer, head, from: p, to: p + 1, value: headZ(cleanOut.z.get(layer)!, p, head, H, D) }));

  if (mode === 'resid-pre' || mode === 'mlp-out') {
    const cells = await residualPatching(model, mode, clean, corrupt, positions, [...new Set(heads.map((h) => h.layer))].sort((a, b) => a - b), measure, cleanValue, corruptValue, metric, options.onProgress);
    return { format: 'headwise.patching/1', model: model.name, metric, mode, hook: mode === 'resid-pre' ? 'blocks.{layer}.hook_resid_pre' : 'blocks.{layer}.hook_mlp_out',
      clean: tokenTexts(model, clean), corrupt: tokenTexts(model, corrupt), answer: tokenTexts(model, [answer])[0], wrong: wrong === null ? null : tokenTexts(model, [wrong])[0],
      cleanValue, corruptValue, positions, cells, elapsedMs: performance.now() - started };
  }
  const jobs: { cell: Omit<PatchCell, 'value' | 'restored'>; patches: HeadPatch[] }[] = [];
  if (mode === 'head') {
    for (const { layer, head } of heads) jobs.push({ cell: { heads: [{ layer, head }], layer, head, position: null }, patches: fromClean(layer, head, positions) });
  } else if (mode === 'joint') {
    jobs.push({ cell: { heads: heads.map(({ layer, head }) => ({ layer, head })), layer: null, head: null, position: null }, patches: heads.flatMap((h) => fromClean(h.layer, h.head, positions)) });
  } else if (mode === 'head-pos') {
    for (const p of positions) for (const { layer, head } of heads) jobs.push({ cell: { heads: [{ layer, head }], layer, head, position: p }, patches: fromClean(layer, head, [p]) });
  } else {
    const layers = [...new Set(heads.map((h) => h.layer))].sort((a, b) => a - b);
    for (const p of positions) for (const layer of layers) {
      const all = Array.from({ length: H }, (_, head) => ({ layer, head }));
      jobs.push({ cell: { heads: all, layer, head: null, position: p }, patches: all.flatMap((h) => fromClean(layer, h.head, [p])) });
    }
  }
  // Positions ascending, so the shared unpatched prefix only grows.
  jobs.sort((a, b) => Math.min(...a.patches.map((p) => p.from)) - Math.min(...b.patches.map((p) => p.from)));
  const cells: PatchCell[] = [];
  for (const [i, job] of jobs.entries()) {
    const value = measure(await runner.run(job.patches, [T - 1]));
    cells.push({ ...job.cell, value, restored: restoredFraction(metric, cleanValue, corruptValue, value) });
    options.onProgress?.(i + 1, jobs.length);
  }
  cells.sort((a, b) => (a.layer ?? -1) - (b.layer ?? -1) || (a.head ?? -1) - (b.head ?? -1) || (a.position ?? -1) - (b.position ?? -1));
  return {
    format: 'headwise.patching/1',
    model: model.name,
    metric,
    mode,
    hook: mode === 'attn-out' ? 'blocks.{layer}.hook_attn_out' : 'blocks.{layer}.attn.hook_z',
    clean: tokenTexts(model, clean),
    corrupt: tokenTexts(model, corrupt),
    answer: tokenTexts(model, [answer])[0],
    wrong: wrong === null ? null : tokenTexts(model, [wrong])[0],
    cleanValue,
    corruptValue,
    positions,
    cells,
    elapsedMs: performance.now() - started,
  };
}

/** `resid-pre` / `mlp-out` cells: one corrupt run per (layer, position), cut at the residual stream. */
async function residualPatching(
  model: Model, mode: 'resid-pre' | 'mlp-out', clean: number[], corrupt: number[], positions: number[], layers: number[],
  measure: (logits: Float32Array) => number, cleanValue: number, corruptValue: number, metric: MetricName, onProgress?: (done: number, total: number) => void,
): Promise<PatchCell[]> {
  const d = model.config.hiddenSize;
  const arch = archFor(model.ckpt);
  if (mode === 'mlp-out' && arch.postMlpNorm) throw new HeadwiseError(`mlp-out patching: ${model.config.family} normalises the MLP output before the residual add, so a patched MLP output is not a residual difference`);
  const point = mode === 'resid-pre' ? 'hook_resid_pre' : 'hook_mlp_out';
  const cleanCache = await runWithCache(model, clean, { names: [point] });
  const corruptCache = mode === 'mlp-out' ? await runWithCache(model, corrupt, { names: [point] }) : null;
  const cells: PatchCell[] = [];
  const total = layers.length * positions.length;
  for (const layer of layers) {
    const source = cleanCache.get(`blocks.${layer}.${point}`).data;
    const base = corruptCache?.get(`blocks.${layer}.${point}`).data;
    for (const p of positions) {
      const row = (x: Float32Array) => x.subarray(p * d, (p + 1) * d);
      const hook = mode === 'resid-pre'
        ? { [`blocks.${layer}.hook_resid_pre`]: (x: { data: Float32Array }) => { row(x.data).set(row(source)); return x.data; } }
        : { [`blocks.${layer}.hook_resid_post`]: (x: { data: Float32Array }) => {
            const r = row(x.data), s = row(source), b = row(base!);
            for (let i = 0; i < d; i++) r[i] += arch.block.residualScale * (s[i] - b[i]);
            return x.data;
          } };
      const r = await runWithHooks(model, corrupt, { hooks: hook });
      const value = measure(r.logits);
      cells.push({ heads: [], layer, head: null, position: p, value, restored: restoredFraction(metric, cleanValue, corruptValue, value) });
      onProgress?.(cells.length, total);
    }
  }
  return cells;
}

function patchPositions(spec: 'last' | 'diff' | 'all' | number[], clean: number[], corrupt: number[]): number[] {
  const T = clean.length;
  if (spec === 'last') return [T - 1];
  if (spec === 'all') return Array.from({ length: T }, (_, i) => i);
  if (spec === 'diff') {
    const out = clean.flatMap((id, i) => (id !== corrupt[i] ? [i] : []));
    return out.includes(T - 1) ? out : [...out, T - 1];
  }
  for (const p of spec) if (!(Number.isInteger(p) && p >= 0 && p < T)) throw new HeadwiseError(`positions: ${p} is not a prompt position (0..${T - 1})`);
  return [...new Set(spec)].sort((a, b) => a - b);
}
