/**
 * The atlas's causal measurements on one needle prompt: re-run the answer rows (the teacher-forced
 * tail whose next-token distributions are scored) on top of the prompt's KV cache with one head
 * changed, and measure KL(base ‖ changed) averaged over the answer rows (methods.md §1).
 * - streaming harm, per KV head: that KV head's query heads see only the sink + window keys; the eight
 *   (or however many) KV heads of a layer run as branches of one graph run (`forward`'s `branches`),
 *   each with its own score bias;
 * - ablation importance, per query head: the head's output is zeroed (head scale 0); the heads of a
 *   layer run as branches of one graph run, each zeroing its own head on its own rows.
 * Only the answer rows are changed; the prompt keeps its full-attention, unablated cache. That is the
 * approximation the atlas documents in its metric descriptions. A variant run's logits stay on the
 * device and are scored there (`deviceKl.ts`): only one KL per row comes back to the host.
 */
import { kvHeadOf } from '../runtime/capture.js';
import { forward, type HookProvider } from '../runtime/forward.js';
import { combineHookProviders, zeroHeadPerBranch, zeroHeads } from '../runtime/hookSet.js';
import type { KvCache } from '../runtime/kvCache.js';
import type { GraphSession, Model } from '../runtime/model.js';
import { branchMeans, deviceKl, type KlBase } from './deviceKl.js';

const MASKED = -1e30;

/**
 * One variant run of `ids` (`branches` equal branches) on top of the cache, every row's logits kept
 * on the device and scored there against the base rows: the mean KL of each branch.
 */
async function branchKl(ctx: VariantContext, ids: number[], branches: number, hooks: HookProvider | undefined): Promise<number[]> {
  const r = await forward(ctx.model, ctx.session, ctx.cache, ids, { commit: false, branches, logitsAt: ids.map((_, i) => i), hooks, logitsOnDevice: true });
  try {
    return branchMeans(await deviceKl(ctx.model, ctx.base, r.logitsTensor!), ctx.tail.length);
  } finally {
    r.logitsTensor!.dispose();
  }
}

/**
 * Score bias for a batch of streaming variants: branch b (rows b·n .. b·n+n−1) switches KV head
 * `targets[b].kvHead` of layer `targets[b].layer` to sink + window, i.e. masks, for that KV head's query
 * heads on those rows, every key outside the first `sink` positions and the last `window`.
 */
export function streamingBranchBias(targets: { layer: number; kvHead: number }[], n: number, numHeads: number, numKvHeads: number, sink: number, window: number): HookProvider {
  return {
    scoreBias(l, heads, queryPositions, keyPositions) {
      const q = queryPositions.length;
      const K = keyPositions.length;
      if (!targets.some((t) => t.layer === l)) return null;
      const out = new Float32Array(heads.length * q * K);
      // Keys 0..dense−1 sit at their own positions (the prompt's cache; the branches' rows follow):
      // there a row's masked keys are one range, filled at once.
      let dense = 0;
      while (dense < K && keyPositions[dense] === dense) dense++;
      targets.forEach((target, b) => {
        if (target.layer !== l) return;
        heads.forEach((head, hi) => {
          if (kvHeadOf(head, numHeads, numKvHeads) !== target.kvHead) return;
          for (let t = b * n; t < Math.min(q, (b + 1) * n); t++) {
            const base = (hi * q + t) * K;
            const qp = queryPositions[t];
            const end = Math.min(dense, qp - window + 1);
            if (end > sink) out.fill(MASKED, base + sink, base + end);
            for (let s = dense; s < K; s++) {
              const kp = keyPositions[s];
              if (kp >= sink && qp - kp >= window) out[base + s] = MASKED;
            }
          }
        });
      });
      return out;
    },
  };
}

export interface VariantContext {
  model: Model;
  /** A session on the cache's layout with score bias on every layer and head hooks (best made with `deviceLogits`). */
  session: GraphSession;
  cache: KvCache;
  /** Tokens whose rows are scored: the last prompt token and the answer tokens but the last. */
  tail: number[];
  /** The tail rows' base logits, prepared for the KL session (`klBase`). */
  base: KlBase;
  /** The caller's own hooks (an intervention), applied in every run. */
  hooks?: HookProvider;
}

/**
 * [layer][kvHead] mean KL over the tail rows with that KV head switched to sink + window. The KV heads
 * of `layersPerRun` layers run as branches of one graph run (more per run reads the weights fewer times,
 * but makes the score-bias inputs larger).
 */
export async function streamingHarm(ctx: VariantContext, sink: number, window: number, layersPerRun = 2): Promise<number[][]> {
  const c = ctx.model.config;
  const n = ctx.tail.length;
  const out: number[][] = Array.from({ length: c.numLayers }, () => new Array<number>(c.numKvHeads).fill(NaN));
  for (let l0 = 0; l0 < c.numLayers; l0 += layersPerRun) {
    const targets: { layer: number; kvHead: number }[] = [];
    for (let l = l0; l < Math.min(c.numLayers, l0 + layersPerRun); l++) for (let g = 0; g < c.numKvHeads; g++) targets.push({ layer: l, kvHead: g });
    const hooks = combineHookProviders(ctx.hooks, streamingBranchBias(targets, n, c.numHeads, c.numKvHeads, sink, window));
    const kl = await branchKl(ctx, targets.flatMap(() => ctx.tail), targets.length, hooks);
    targets.forEach((t, b) => (out[t.layer][t.kvHead] = kl[b]));
  }
  return out;
}

/**
 * [layer][head] mean KL over the tail rows with that head's output zeroed on the tail rows. The heads
 * of a layer run as branches of one graph run (`zeroHeadPerBranch`), up to `maxRows` rows per run —
 * one run per head only when the caller's hooks add to head outputs (which a per-row scale cannot
 * follow).
 */
export async function ablationKl(ctx: VariantContext, maxRows = 512): Promise<number[][]> {
  const c = ctx.model.config;
  const n = ctx.tail.length;
  const perRun = ctx.hooks?.headAdd ? 1 : Math.max(1, Math.min(c.numHeads, Math.floor(maxRows / n)));
  const out: number[][] = [];
  for (let l = 0; l < c.numLayers; l++) {
    const row = new Array<number>(c.numHeads).fill(NaN);
    for (let h0 = 0; h0 < c.numHeads; h0 += perRun) {
      const heads = Array.from({ length: Math.min(perRun, c.numHeads - h0) }, (_, i) => h0 + i);
      const zero = heads.length === 1 ? zeroHeads([{ layer: l, head: heads[0] }], c.numHeads) : zeroHeadPerBranch(l, heads, n, c.numHeads);
      const kl = await branchKl(ctx, heads.flatMap(() => ctx.tail), heads.length, combineHookProviders(ctx.hooks, zero));
      heads.forEach((h, b) => (row[h] = kl[b]));
    }
    out.push(row);
  }
  return out;
}
