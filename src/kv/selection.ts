/**
 * Row selection at the end of the prompt, for the selection policies (`policy.ts`): each KV head
 * keeps the rows it will need and the rest of its buffer is freed (`KvCache.keepRows`).
 *
 * - SnapKV: the last `window` prompt queries (the observation window) vote for keys with their
 *   attention, summed over the window and the KV head's query heads and max-pooled over `kernel`
 *   neighbouring positions (so a needle keeps its neighbours); each head keeps the sinks, the window
 *   and the top-voted keys.
 * - HeadKV: SnapKV selection with a budget per KV head, shared out by a per-KV-head score (retrieval,
 *   or a mix) with the total fixed: every head gets sink + window, the rest of the pool goes by score.
 * - LongHeads: chunks of `chunk` tokens, each represented by its mean key; a chunk's score is
 *   q·mean(k) for the last prompt query q, read off the captured attention (the mean over the chunk
 *   of log p is q·mean(k)/√d minus the softmax normaliser, so it ranks chunks as q·mean(k) does).
 *   The first chunks (sinks) and the last (the window) are always kept, then the best chunks.
 *
 * The attention comes from the pattern capture hook on the last prefill chunk, which therefore runs
 * on a graph with `capturePattern` on every layer and returns [heads, observed rows, prompt] floats
 * per layer: for a 1024-token prompt with a 64-row window, 8 × 64 × 1024 floats per layer (2 MiB).
 * The prompt is held in full until the selection (as in SnapKV): peak memory is full attention's
 * prompt, what stays is the budget.
 *
 * The scoring functions are pure (attention in, rows out) and tested on hand-made matrices.
 */
import { HeadwiseError } from '../errors.js';
import type { GroupPattern } from '../runtime/forward.js';
import type { PromptSelection } from '../runtime/generate.js';
import type { KvCache } from '../runtime/kvCache.js';

/**
 * SnapKV's votes for keys [0, prefix) by one KV head: Σ over its query heads (`heads`, rows of `data`
 * [allHeads, rows, keys]) and the observation rows, then max-pooled over `kernel` positions.
 * @example snapkvVotes(Float32Array.from([0.1, 0.9, 0, 0]), [0], 1, 4, 3, 1) // → [0.9, 0.9, 0.9]
 */
export function snapkvVotes(data: Float32Array, heads: number[], rows: number, keys: number, prefix: number, kernel: number): Float64Array {
  const sum = new Float64Array(prefix);
  for (const h of heads) for (let r = 0; r < rows; r++) {
    const at = (h * rows + r) * keys;
    for (let s = 0; s < prefix; s++) sum[s] += data[at + s];
  }
  if (kernel <= 1) return sum;
  const half = (kernel - 1) / 2;
  const pooled = new Float64Array(prefix);
  for (let s = 0; s < prefix; s++) {
    let m = -Infinity;
    for (let u = Math.max(0, s - half); u <= Math.min(prefix - 1, s + half); u++) m = Math.max(m, sum[u]);
    pooled[s] = m;
  }
  return pooled;
}

/**
 * Rows a SnapKV head keeps out of `n`: [0, sink), the last `window`, and the `keep − sink − window`
 * best-voted rows between them (ties to the earlier row); ascending. `votes` covers [0, n − window).
 */
export function snapkvRows(votes: Float64Array, n: number, sink: number, window: number, keep: number): number[] {
  if (keep >= n) return Array.from({ length: n }, (_, i) => i);
  const w = Math.min(window, n);
  const s = Math.min(sink, n - w);
  const extra = Math.max(0, keep - s - w);
  const candidates = Array.from({ length: n - w - s }, (_, i) => s + i);
  candidates.sort((a, b) => votes[b] - votes[a] || a - b);
  const rows = [...Array.from({ length: s }, (_, i) => i), ...candidates.slice(0, extra), ...Array.from({ length: w }, (_, i) => n - w + i)];
  return rows.sort((a, b) => a - b);
}

/**
 * Per-KV-head row budgets [layer][kvHead] holding `budget · n` rows per head on average (the total
 * fixed): each head gets at least `minimum`, the rest goes in proportion to its score (NaN and
 * negatives count 0; all zero → evenly), no head past `n`, what a capped head cannot take going to
 * the others. Integers: remainders go to the largest fractions.
 * @example headBudgets([[1, 0]], 0.5, 100, 10) // → [[90, 10]]
 */
export function headBudgets(scores: number[][], budget: number, n: number, minimum: number): number[][] {
  const flat = scores.flat();
  const H = flat.length;
  const total = Math.min(H * n, Math.floor(budget * n) * H);
  const min = Math.min(minimum, n, Math.floor(total / H));
  const b = new Float64Array(H).fill(min);
  const weight = flat.map((s) => (Number.isFinite(s) && s > 0 ? s : 0));
  let free = total - min * H;
  for (let iter = 0; iter < H + 1 && free > 1e-9; iter++) {
    const open = [...b.keys()].filter((i) => b[i] < n);
    if (!open.length) break;
    const wsum = open.reduce((a, i) => a + weight[i], 0);
    const w = (i: number) => (wsum > 0 ? weight[i] / wsum : 1 / open.length);
    let spill = 0;
    for (const i of open) {
      b[i] += free * w(i);
      if (b[i] > n) {
        spill += b[i] - n;
        b[i] = n;
      }
    }
    // Heads with no score left to take more: spread what remains evenly among the open ones.
    if (spill > 0 && open.filter((i) => b[i] < n).every((i) => weight[i] === 0)) weight.fill(0);
    free = spill;
  }
  const out = Array.from(b, Math.floor);
  let left = total - out.reduce((a, x) => a + x, 0);
  const order = [...b.keys()].filter((i) => out[i] < n).sort((x, y) => b[y] - out[y] - (b[x] - out[x]) || x - y);
  for (const i of order) {
    if (left <= 0) break;
    out[i]++;
    left--;
  }
  let k = 0;
  return scores.map((row) => row.map(() => out[k++]));
}

/**
 * Size classes of per-KV-head scores: the heads sorted by score and cut into at most `classes`
 * contiguous runs with the least within-run sum of squared deviations (optimal 1-D k-means, by dynamic
 * programming); returns [layer][kvHead] → class, 0 for the lowest scores. NaN and negatives count 0.
 * @example scoreClasses([[0, 0, 5, 6]], 2) // → [[0, 0, 1, 1]]
 */
export function scoreClasses(scores: number[][], classes: number): number[][] {
  const flat = scores.flat().map((s) => (Number.isFinite(s) && s > 0 ? s : 0));
  const H = flat.length;
  const order = [...flat.keys()].sort((a, b) => flat[a] - flat[b] || a - b);
  const v = order.map((i) => flat[i]);
  const C = Math.max(1, Math.min(classes, H));
  // cost(i, j): squared deviation of v[i..j) from its mean, by prefix sums.
  const s1 = [0];
  const s2 = [0];
  for (const x of v) {
    s1.push(s1[s1.length - 1] + x);
    s2.push(s2[s2.length - 1] + x * x);
  }
  const cost = (i: number, j: number) => s2[j] - s2[i] - (s1[j] - s1[i]) ** 2 / (j - i);
  // best[c][j]: least cost of v[0..j) in c + 1 runs; cut[c][j]: where the last run starts.
  const best = Array.from({ length: C }, () => new Float64Array(H + 1).fill(Infinity));
  const cut = Array.from({ length: C }, () => new Int32Array(H + 1));
  for (let j = 1; j <= H; j++) best[0][j] = cost(0, j);
  for (let c = 1; c < C; c++) for (let j = c + 1; j <= H; j++) for (let i = c; i < j; i++) {
    const x = best[c - 1][i] + cost(i, j);
    // Ties keep the fewer-run answer (a cost of 0 is not improved by splitting equal values).
    if (x < best[c][j] - 1e-12) {
      best[c][j] = x;
      cut[c][j] = i;
    }
  }
  let c = 0;
  for (let k = 1; k < C; k++) if (best[k][H] < best[c][H] - 1e-12) c = k;
  const cls = new Int32Array(H);
  for (let j = H; c >= 0; c--) {
    const i = c > 0 ? cut[c][j] : 0;
    for (let r = i; r < j; r++) cls[order[r]] = c;
    j = i;
  }
  let k = 0;
  return scores.map((row) => row.map(() => cls[k++]));
}

/**
 * Per-head budgets made one per size class: every head of a class gets the floor of the class's mean
 * budget, so the total never exceeds the heads' own (`classes` from `scoreClasses`).
 * @example classBudgets([[10, 20, 31]], [[0, 1, 1]]) // → [[10, 25, 25]]
 */
export function classBudgets(budgets: number[][], classes: number[][]): number[][] {
  const sum = new Map<number, number>();
  const count = new Map<number, number>();
  budgets.forEach((row, l) => row.forEach((b, g) => {
    const c = classes[l][g];
    sum.set(c, (sum.get(c) ?? 0) + b);
    count.set(c, (count.get(c) ?? 0) + 1);
  }));
  return budgets.map((row, l) => row.map((_, g) => Math.floor(sum.get(classes[l][g])! / count.get(classes[l][g])!)));
}

/**
 * LongHeads chunk scores for one KV head: Σ over its query heads of the mean over the chunk of
 * log p[h, row 0, s] (p: attention of the last prompt query), for chunks [c·chunk, (c+1)·chunk).
 */
export function chunkScores(data: Float32Array, heads: number[], keys: number, chunk: number): Float64Array {
  const chunks = Math.ceil(keys / chunk);
  const out = new Float64Array(chunks);
  for (const h of heads) {
    for (let c = 0; c < chunks; c++) {
      const from = c * chunk;
      const to = Math.min(keys, from + chunk);
      let s = 0;
      for (let i = from; i < to; i++) s += Math.log(Math.max(data[h * keys + i], 1e-30));
      out[c] += s / (to - from);
    }
  }
  return out;
}

/**
 * Rows a LongHeads head keeps out of `n`: whole chunks — those holding the `sink` first tokens and the
 * last `window`, then the best-scored until `keep` rows are reached; ascending.
 */
export function longheadsRows(scores: Float64Array, n: number, chunk: number, sink: number, window: number, keep: number): number[] {
  if (keep >= n) return Array.from({ length: n }, (_, i) => i);
  const chunks = Math.ceil(n / chunk);
  const first = Math.min(chunks, Math.max(1, Math.ceil(sink / chunk)));
  const lastFrom = Math.max(first, Math.min(chunks - 1, Math.floor((n - Math.max(1, window)) / chunk)));
  const always = new Set<number>();
  for (let c = 0; c < first; c++) always.add(c);
  for (let c = lastFrom; c < chunks; c++) always.add(c);
  const size = (c: number) => Math.min(n, (c + 1) * chunk) - c * chunk;
  let rows = [...always].reduce((a, c) => a + size(c), 0);
  const middle = Array.from({ length: lastFrom - first }, (_, i) => first + i).sort((a, b) => scores[b] - scores[a] || a - b);
  const picked = new Set(always);
  for (const c of middle) {
    if (rows + chunk > keep) break;
    picked.add(c);
    rows += chunk;
  }
  const out: number[] = [];
  for (const c of [...picked].sort((a, b) => a - b)) for (let r = c * chunk, end = c * chunk + size(c); r < end; r++) out.push(r);
  return out;
}

/**
 * Mean key of chunks [from, to) of one KV head, written into `reps` [chunks, headDim] at row c:
 * `keys` holds the head's rows [rows, headDim] (whole chunks only: the chunk's rows must be held).
 * @example chunkMeans(Float32Array.of(1, 3, 5, 7), 1, 2, 0, 2, reps) // reps → [2, 6]
 */
export function chunkMeans(keys: Float32Array, headDim: number, chunk: number, from: number, to: number, reps: Float32Array): void {
  const D = headDim;
  for (let c = from; c < to; c++) {
    const out = reps.subarray(c * D, (c + 1) * D);
    out.fill(0);
    for (let r = c * chunk; r < (c + 1) * chunk; r++) for (let d = 0; d < D; d++) out[d] += keys[r * D + d];
    for (let d = 0; d < D; d++) out[d] /= chunk;
  }
}

/**
 * LongHeads' per-step chunk scores for one KV head: q·rep for each of `chunks` representatives
 * ([chunks, headDim]), summed over the KV head's query heads (`query`: [queryHeads, headDim]; on an
 * MHA model one head, the paper's own per-head rule; with GQA the heads share the KV head's rows, so
 * their scores add, which ranks as the mean query does).
 * @example repScores(Float32Array.of(1, 0, 0, 1), 2, Float32Array.of(2, 1, 0, 3), 2) // → [3, 3]
 */
export function repScores(query: Float32Array, headDim: number, reps: Float32Array, chunks: number): Float64Array {
  const D = headDim;
  const q = new Float64Array(D);
  for (let i = 0; i < query.length; i++) q[i % D] += query[i];
  const out = new Float64Array(chunks);
  for (let c = 0; c < chunks; c++) {
    let s = 0;
    for (let d = 0; d < D; d++) s += q[d] * reps[c * D + d];
    out[c] = s;
  }
  return out;
}

/** Query heads of KV head j of a pattern's group, as rows of its data (KV-head major). */
function queryRows(p: GroupPattern, nkv: number, j: number): number[] {
  const rep = p.heads.length / nkv;
  return Array.from({ length: rep }, (_, r) => j * rep + r);
}

/** Walks each (layer, group) with its captured pattern; `pick` returns the group's per-head rows or null. */
function selectGroups(cache: KvCache, patterns: GroupPattern[], room: number, pick: (l: number, g: number, p: GroupPattern, n: number) => number[][] | null): void {
  const seen = new Map<number, number>();
  const rows: (number[][] | null)[][] = cache.layout.map((groups) => groups.map(() => null));
  for (const p of patterns) {
    const g = seen.get(p.layer) ?? 0;
    seen.set(p.layer, g + 1);
    const n = cache.buffers[p.layer][g].length;
    if (p.keyPositions.length !== n) throw new HeadwiseError(`selection: the captured attention covers ${p.keyPositions.length} keys, the cache holds ${n}`);
    rows[p.layer][g] = pick(p.layer, g, p, n);
  }
  if (rows.some((groups) => groups.some((r) => r !== null))) cache.keepRows(rows, room);
}

/** Rows held per head after the selection, prompt and tokens to come together. */
const heldRows = (budget: number, n: number, room: number) => Math.floor(budget * (n + room));

export function snapkvSelection(o: { sink: number; window: number; kernel: number; budget: number }): PromptSelection {
  return {
    observe: (n) => Math.min(o.window, n),
    select(cache, patterns, room) {
      selectGroups(cache, patterns, room, (l, g, p, n) => {
        const keep = Math.max(heldRows(o.budget, n, room) - room, o.sink + o.window);
        if (keep >= n) return null;
        const rows = p.queryPositions.length;
        const nkv = cache.layout[l][g].kvHeads.length;
        return Array.from({ length: nkv }, (_, j) => snapkvRows(snapkvVotes(p.data, queryRows(p, nkv, j), rows, n, n - Math.min(o.window, n), o.kernel), n, o.sink, o.window, keep));
      });
    },
  };
}

export function headkvSelection(o: { sink: number; window: number; kernel: number; budgets: (promptTokens: number, room: number) => number[][] }): PromptSelection {
  return {
    observe: (n) => Math.min(o.window, n),
    select(cache, patterns, room) {
      const n = cache.seen;
      const budgets = o.budgets(n, room);
      selectGroups(cache, patterns, room, (l, g, p) => {
        const group = cache.layout[l][g];
        const keep = budgets[l][group.kvHeads[0]] - room;
        if (keep >= n) return null;
        const rows = p.queryPositions.length;
        return group.kvHeads.map((_, j) => snapkvRows(snapkvVotes(p.data, queryRows(p, group.kvHeads.length, j), rows, n, n - Math.min(o.window, n), o.kernel), n, o.sink, o.window, keep));
      });
    },
  };
}

export function longheadsSelection(o: { sink: number; window: number; chunk: number; budget: number }): PromptSelection {
  return {
    observe: () => 1,
    select(cache, patterns, room) {
      selectGroups(cache, patterns, room, (l, g, p, n) => {
        const keep = heldRows(o.budget, n, room) - room;
        if (keep >= n) return null;
        const nkv = cache.layout[l][g].kvHeads.length;
        return Array.from({ length: nkv }, (_, j) => longheadsRows(chunkScores(p.data, queryRows(p, nkv, j), n, o.chunk), n, o.chunk, o.sink, o.window, keep));
      });
    },
  };
}

/**
 * A mix of per-KV-head scores (HeadKV's retrieval–reasoning mix, here retrieval and streaming harm):
 * each scaled to sum 1 over the model, then averaged; NaN and negatives count 0.
 * @example mixScores([[1, 0]], [[1, 3]]) // → [[0.625, 0.375]]
 */
export function mixScores(...all: number[][][]): number[][] {
  const clean = (x: number) => (Number.isFinite(x) && x > 0 ? x : 0);
  const sums = all.map((s) => s.flat().reduce((a, x) => a + clean(x), 0));
  return all[0].map((row, l) => row.map((_, g) => all.reduce((a, s, i) => a + (sums[i] > 0 ? clean(s[l][g]) / sums[i] : 0), 0) / all.length));
}
