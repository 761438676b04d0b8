/**
 * Activation patching (clean → corrupt, "denoising"): run the corrupt prompt with one activation taken
 * from the clean run, and measure how much of the clean behaviour comes back. The activations are
 * head outputs `blocks.{l}.attn.hook_z` — per head at the chosen positions (`head`), per head and
 * position (`head-pos`), or all heads of a layer at one position (`attn-out`, which is exactly patching
 * `blocks.{l}.hook_attn_out` there: o_proj is linear and its bias, if any, is the same in both runs).
 * Every patch is exact: `patchedRun.ts` runs the positions after a patched one on top of the patched
 * KV cache, as the patched model would. Metrics are read at the last prompt position (`metrics.ts`).
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
