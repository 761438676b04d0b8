/**
 * The atlas run: measures every head of a model on needle prompts and probe sequences and returns an
 * atlas (`file.ts`). Per needle prompt, one prefill (the dominant cost) serves everything:
 *  (a) the prompt is prefilled with full attention, capturing attention on every `captureStride`-th row
 *      (first `patternSamples` prompts) for the row statistics (sink, hidden sinks, previous token,
 *      reach, WAAD, entropy);
 *  (b) the tail — the last prompt token and the answer tokens but the last, teacher-forced — has every
 *      layer captured: its logits say which answer steps the model gets right (only those are scored
 *      for retrieval, methods.md §1) and what greedy decoding answers (exact match read off the
 *      teacher-forced argmaxes, decoding on only where that leaves it open), and its attention rows
 *      give the retrieval copies. The tail rides on the prompt's last prefill call, except on prompts
 *      where (c) or (d) re-run it on the prompt's cache;
 *  (c) streaming harm per KV head and (d) ablation importance per head re-run the tail with that head
 *      changed (`variants.ts`) on the first `harmSamples` / `ablationSamples` prompts.
 * Probe sequences (BOS, then `probeTokens` random tokens twice) give induction and duplicate-token
 * scores. A caller's hooks (an intervention) apply to every pass.
 */
import { HeadwiseError } from '../errors.js';
import type { HookOptions } from '../graph/hooks.js';
import { HeadAccumulator, perKvHead, RetrievalAccumulator, topHeads } from '../heads/index.js';
import { loadHaystack } from '../eval/haystack.js';
import { DEFAULT_DEPTHS, niahSamples, type NeedleMix, type NiahItem } from '../eval/niahSet.js';
import { decodeOn, greedyReadout, summarizeNiah, type NiahOutcomeDetail } from '../eval/niahRun.js';
import { deriveSeed, Random } from '../eval/random.js';
import { disposeDeviceKv } from '../runtime/deviceKv.js';
import { forward, type GroupPattern, type HookProvider } from '../runtime/forward.js';
import { DEFAULT_PREFILL_CHUNK, fullCache, kvBytesFull } from '../runtime/generate.js';
import { densePatterns, windowCaveats } from './windows.js';
import { allLayers, unionHookOptions, withBound, type HookBinder } from '../runtime/hookSet.js';
import { KvCache } from '../runtime/kvCache.js';
import type { Model } from '../runtime/model.js';
import { ATLAS_FORMAT, ATLAS_VERSION, type AtlasFile, type MetricInfo } from './file.js';
import { pickRows, probeStats, retrievalCopies, rowStats } from './gather.js';
import { ablationKl, streamingHarm } from './variants.js';
import { klBase } from './deviceKl.js';

export interface AtlasOptions {
  /** Prompt length in tokens (default 1024, or the model's context if shorter). */
  contextTokens?: number;
  /** Needle prompts (default 96). */
  samples?: number;
  seed?: number;
  depths?: readonly number[];
  mix?: NeedleMix;
  keyCount?: number;
  /** Haystack text (default: the bundled KJV). */
  haystack?: string;
  /** Prompts whose strided rows feed the row statistics (default 16; 0 = skip). */
  patternSamples?: number;
  /** Capture every n-th prompt row for the row statistics (default 16). */
  captureStride?: number;
  /** Prompt tokens per prefill call (default `DEFAULT_PREFILL_CHUNK`: 4 × 256 tokens measured 13% faster than one 1024-token call on ref-llama-30m, as a chunk's queries skip the later chunks' keys). */
  prefillChunk?: number;
  /** Prompts for streaming harm (default 8; 0 = skip). */
  harmSamples?: number;
  /** Layers whose KV heads share one graph run in streaming harm (default 4). */
  harmLayersPerRun?: number;
  /** Prompts for ablation importance (default 2; 0 = skip). */
  ablationSamples?: number;
  /** Random repeated sequences for induction / duplicate-token (default 8; 0 = skip). */
  probes?: number;
  /** Random tokens per probe half (default 100). */
  probeTokens?: number;
  /** Streaming policy of the harm metric (StreamingLLM defaults 4 + 64). */
  sink?: number;
  window?: number;
  /** How many top heads per metric the atlas lists (default 10). */
  topK?: number;
  /** A caller's hooks (an intervention): hook points and the provider that feeds them. */
  hookOptions?: HookOptions;
  hooks?: HookProvider;
  /** Hooks bound to each prompt and probe (an intervention with prompt spans), applied before `hooks`. */
  bindHooks?: HookBinder;
  onProgress?: (p: AtlasProgress) => void;
}

export interface AtlasProgress {
  phase: 'needles' | 'probes';
  /** Steps done and total over the whole run (one per needle prompt and per probe). */
  done: number;
  total: number;
  /** Running exact-match accuracy of the needle prompts so far. */
  accuracy?: number;
}

export const ATLAS_DEFAULTS = {
  contextTokens: 1024,
  samples: 96,
  seed: 0,
  patternSamples: 16,
  captureStride: 16,
  prefillChunk: DEFAULT_PREFILL_CHUNK,
  harmSamples: 8,
  harmLayersPerRun: 4,
  ablationSamples: 2,
  probes: 8,
  probeTokens: 100,
  sink: 4,
  window: 64,
  topK: 10,
  keyCount: 4,
} as const;

/** Rows of a prompt captured for the row statistics: every `stride`-th, from `stride − 1`. */
function stridedRows(length: number, stride: number): number[] {
  const rows: number[] = [];
  for (let t = stride - 1; t < length; t += stride) rows.push(t);
  return rows;
}

function argmaxRow(logits: Float32Array, row: number, vocab: number): number {
  let best = 0;
  const base = row * vocab;
  for (let i = 1; i < vocab; i++) if (logits[base + i] > logits[base + best]) best = i;
  return best;
}

/** Random probe ids: prefix (e.g. BOS) + r + r, with r drawn from the non-special vocabulary. */
export function probeSequence(prefix: number[], vocab: number, tokens: number, seed: number, special: Set<number>): number[] {
  const rng = new Random(seed);
  const r: number[] = [];
  while (r.length < tokens) {
    const id = rng.int(0, vocab - 1);
    if (!special.has(id)) r.push(id);
  }
  return [...prefix, ...r, ...r];
}

/** Runs the atlas. Throws a HeadwiseError for settings the model cannot run. */
export async function runAtlas(model: Model, opts: AtlasOptions = {}): Promise<AtlasFile> {
  const t0 = performance.now();
  const c = model.config;
  const tok = model.tokenizer;
  if (!tok) throw new HeadwiseError(`${model.ckpt.dir}: no tokenizer.json; the atlas needs one to build needle prompts`);
  const o = { ...ATLAS_DEFAULTS, ...Object.fromEntries(Object.entries(opts).filter(([, v]) => v !== undefined)) } as typeof ATLAS_DEFAULTS & AtlasOptions;
  const contextTokens = opts.contextTokens ?? Math.min(ATLAS_DEFAULTS.contextTokens, c.maxPositions - 16);
  if (contextTokens + 16 > c.maxPositions) {
    throw new HeadwiseError(`--context ${contextTokens} leaves no room for the answer in the model's context of ${c.maxPositions} tokens`);
  }
  for (const key of ['samples', 'captureStride', 'prefillChunk', 'harmLayersPerRun', 'probeTokens', 'keyCount', 'window'] as const) {
    if (!Number.isInteger(o[key]) || o[key] < 1) throw new HeadwiseError(`atlas: ${key} must be a positive integer (got ${o[key]})`);
  }
  for (const key of ['patternSamples', 'harmSamples', 'ablationSamples', 'probes', 'sink', 'seed'] as const) {
    if (!Number.isInteger(o[key]) || o[key] < 0) throw new HeadwiseError(`atlas: ${key} must be a non-negative integer (got ${o[key]})`);
  }
  const depths = opts.depths ?? DEFAULT_DEPTHS;
  const L = c.numLayers;
  const H = c.numHeads;
  const Hkv = c.numKvHeads;
  const V = c.vocabSize;
  const layers = allLayers(L);
  const samples = Math.max(1, o.samples);
  const patternSamples = Math.min(o.patternSamples, samples);
  const harmSamples = Math.min(o.harmSamples, samples);
  const ablationSamples = Math.min(o.ablationSamples, samples);

  const items = niahSamples(tok, opts.haystack ?? loadHaystack(), {
    contextTokens: [contextTokens],
    depths,
    samples,
    seed: o.seed,
    mix: o.mix,
    keyCount: o.keyCount,
  });

  const setup = fullCache(model);
  const captureHooks = { capturePattern: layers, captureZ: [], headHooks: false, scoreBias: [], act: [] };
  const variantHooks = { capturePattern: [], captureZ: [], headHooks: true, scoreBias: layers, act: [] };
  // Ablation runs on the variants session too: a layer without a bias takes a [heads, 1, 1] zero
  // (forward.ts), so sharing costs ~nothing per run, while another session costs its creation (~1.2 s
  // at the 1B shape on the GPU, measured) and, on the CPU, another copy of the weights.
  /** The caller's hooks for one prompt, and the sessions that carry them. */
  const hooksFor = async (ids: number[], prompt: string) => {
    const bound = opts.bindHooks ? await opts.bindHooks(ids, prompt) : null;
    const h = withBound(bound, opts.hookOptions, opts.hooks);
    return {
      ...h,
      capture: await model.session(setup.layout, unionHookOptions(h.hookOptions, captureHooks)),
      // The variant runs' logits stay on the GPU for the KL session (`deviceKl.ts`).
      variants: harmSamples + ablationSamples > 0 ? await model.session(setup.layout, unionHookOptions(h.hookOptions, variantHooks), { deviceLogits: true }) : null,
    };
  };

  const retrieval = new RetrievalAccumulator(L, H, 'pooled');
  const rowAcc = { sink: new HeadAccumulator(L, H), hiddenSinks: new HeadAccumulator(L, H), previousToken: new HeadAccumulator(L, H), reach: new HeadAccumulator(L, H), waad: new HeadAccumulator(L, H), entropy: new HeadAccumulator(L, H) };
  const probeAcc = { induction: new HeadAccumulator(L, H), duplicateToken: new HeadAccumulator(L, H) };
  const harmAcc = new HeadAccumulator(L, Hkv);
  const ablationAcc = new HeadAccumulator(L, H);
  const outcomes: NiahOutcomeDetail[] = [];
  const timing = { prefillMs: 0, tailMs: 0, harmMs: 0, ablationMs: 0, decodeMs: 0, probesMs: 0, totalMs: 0, cpuMs: 0 };
  const cpu0 = process.cpuUsage();
  const totalSteps = samples + o.probes;
  let step = 0;
  let correct = 0;

  // One cache for every prompt, reset in between: its buffers are allocated once.
  // (KV mode `present`, webgpu: the keys and values are device tensors; nothing to reserve on the host.)
  const cache = new KvCache(setup.layout, setup.policies, c.headDim);
  if (model.kvMode === 'append') cache.reserve(Math.max(...items.map((it) => it.sample.inputIds.length)) + 16);
  for (const [i, item] of items.entries()) {
    const { sample } = item;
    const ids = sample.inputIds;
    const P = ids.length;
    const A = sample.answerIds.length;
    const tokens = [...ids, ...sample.answerIds];
    const prefix = ids.slice(0, P - 1);
    const tail = [ids[P - 1], ...sample.answerIds.slice(0, A - 1)];
    const tailRows = tail.map((_, r) => r);

    const tStart = performance.now();
    const { hooks, hookOptions, capture, variants } = await hooksFor(ids, sample.prompt);
    cache.reset();
    const prefixRows = i < patternSamples ? stridedRows(prefix.length, o.captureStride) : [];
    // A prompt whose cache nothing re-runs on takes the tail in its last prefill call (one graph run
    // fewer); otherwise the tail runs on its own, with commit: false, on top of the prompt's cache.
    const reruns = i < harmSamples || i < ablationSamples;
    const rowPatterns: GroupPattern[] = [];
    let tailCapture: GroupPattern[] = [];
    let tailLogits: Float32Array = new Float32Array(0);
    for (let from = 0; from < prefix.length; from += o.prefillChunk) {
      const to = Math.min(prefix.length, from + o.prefillChunk);
      const withTail = !reruns && to === prefix.length;
      const part = withTail ? [...prefix.slice(from, to), ...tail] : prefix.slice(from, to);
      const rows = prefixRows.filter((t) => t >= from && t < to).map((t) => t - from);
      const tailAt = withTail ? tailRows.map((r) => to - from + r) : [];
      const r = await forward(model, capture, cache, part, { captureRows: [...rows, ...tailAt], logitsAt: withTail ? tailAt : undefined, hooks, commit: !withTail });
      if (rows.length) rowPatterns.push(...pickRows(densePatterns(r.patterns), 0, rows.length));
      if (withTail) {
        tailCapture = pickRows(densePatterns(r.patterns), rows.length, rows.length + tailAt.length);
        tailLogits = r.logits;
      }
    }
    if (prefixRows.length) {
      const s = rowStats(rowPatterns, L, H);
      for (const key of Object.keys(rowAcc) as (keyof typeof rowAcc)[]) rowAcc[key].addAll(s[key]);
    }
    const tPrefillEnd = performance.now();
    timing.prefillMs += tPrefillEnd - tStart;

    if (reruns) {
      const r = await forward(model, capture, cache, tail, { commit: false, captureRows: tailRows, logitsAt: tailRows, hooks });
      tailCapture = densePatterns(r.patterns);
      tailLogits = r.logits;
    }
    const predicted = tailRows.map((r) => argmaxRow(tailLogits, r, V));
    const scored = tailRows.filter((r) => predicted[r] === sample.answerIds[r]);
    const span = sample.needles[sample.target].span;
    retrieval.addPrompt(retrievalCopies(tailCapture, L, H, scored, sample.answerIds, span, tokens), scored.length);
    const tTailEnd = performance.now();
    timing.tailMs += tTailEnd - tPrefillEnd;

    const base = reruns ? await klBase(model, tailLogits, V) : null;
    let tHarmEnd = tTailEnd;
    try {
      const ctx = { model, session: variants!, cache, tail, base: base!, hooks };
      if (i < harmSamples) harmAcc.addAll(await streamingHarm(ctx, o.sink, o.window, o.harmLayersPerRun));
      tHarmEnd = performance.now();
      timing.harmMs += tHarmEnd - tTailEnd;
      if (i < ablationSamples) ablationAcc.addAll(await ablationKl(ctx));
    } finally {
      base?.dispose();
    }
    const tAblEnd = performance.now();
    timing.ablationMs += tAblEnd - tHarmEnd;

    // Greedy outcome, read off the teacher-forced argmaxes; decode on from the cache only when open.
    let { text, verdict, wrong, greedy } = greedyReadout(tok, sample, predicted, c.eosTokenIds);
    if (verdict === 'open') {
      const feed = [...prefix.slice(cache.seen), ...tail.slice(0, wrong + 1)];
      ({ text, verdict } = await decodeOn(model, cache, feed, greedy, sample.value, hookOptions, hooks));
    }
    timing.decodeMs += performance.now() - tAblEnd;
    const ok = verdict === 'correct';
    if (ok) correct++;
    outcomes.push({
      contextTokens: item.contextTokens,
      depth: item.depth,
      variant: sample.variant,
      value: sample.value,
      text,
      correct: ok,
      promptTokens: P,
      kvBytes: cache.kvBytesUsed,
      kvBytesHeld: cache.kvBytesUsed,
      kvBytesFull: kvBytesFull(model, cache.seen),
    });
    opts.onProgress?.({ phase: 'needles', done: ++step, total: totalSteps, accuracy: correct / outcomes.length });
  }

  const tProbes = performance.now();
  const prefixIds = tok.encode('');
  const special = new Set([...prefixIds, ...c.eosTokenIds, ...(c.bosTokenId !== null ? [c.bosTokenId] : [])]);
  for (let p = 0; p < o.probes; p++) {
    const seq = probeSequence(prefixIds, V, o.probeTokens, deriveSeed(o.seed, 0x9e37, p), special);
    cache.reset();
    const { hooks, capture } = await hooksFor(seq, tok.decode(seq));
    const r = await forward(model, capture, cache, seq, { captureRows: seq.map((_, j) => j), hooks });
    const s = probeStats(densePatterns(r.patterns), L, H, seq);
    probeAcc.induction.addAll(s.induction);
    probeAcc.duplicateToken.addAll(s.duplicateToken);
    opts.onProgress?.({ phase: 'probes', done: ++step, total: totalSteps });
  }
  timing.probesMs = performance.now() - tProbes;
  disposeDeviceKv(cache);

  const metrics: Record<string, number[][]> = {};
  const metricInfo: Record<string, MetricInfo> = {};
  const sampleCounts: Record<string, number[][]> = {};
  const put = (name: string, mean: number[][], counts: number[][], info: MetricInfo) => {
    metrics[name] = mean;
    sampleCounts[name] = counts;
    metricInfo[name] = info;
  };
  const ret = retrieval.scores();
  put('retrieval', ret.mean, ret.samples, {
    per: 'head',
    samples: retrieval.answerTokens,
    description:
      'Retrieval score (Wu et al. 2024, copy-paste): at each teacher-forced answer step the model predicts correctly, the head copies when its most-attended key lies in the asked-about needle and holds the emitted token; copies / answer tokens scored, pooled over the prompts (samples = answer tokens scored).',
  });
  const rowInfo = (what: string): MetricInfo => ({
    per: 'head',
    samples: patternSamples,
    description: `${what} Measured on every ${o.captureStride}th query row of the first ${patternSamples} needle prompts (natural text), averaged over rows, then prompts.`,
  });
  if (patternSamples > 0) {
    const r = (k: keyof typeof rowAcc) => rowAcc[k].result();
    put('sink', r('sink').mean, r('sink').samples, rowInfo('Sink score (StreamingLLM): mean attention on the first token (BOS) over query rows t ≥ 8.'));
    put('hiddenSinks', r('hiddenSinks').mean, r('hiddenSinks').samples, rowInfo('Hidden sinks (ACT): number of key columns k > 0 whose mean received attention over the captured rows t ≥ k exceeds τ = 0.1 (columns seen by at least 4 captured rows).'));
    put('previousToken', r('previousToken').mean, r('previousToken').samples, rowInfo('Previous-token score: share of attention on key t − 1.'));
    put('reach', r('reach').mean, r('reach').samples, rowInfo('Mean reach d(h) = Σ_s A[t,s]·(t − s), in tokens.'));
    put('waad', r('waad').mean, r('waad').samples, rowInfo('Windowed average attention distance Σ_s A[t,s]·min(t − s, 10).'));
    put('entropy', r('entropy').mean, r('entropy').samples, rowInfo('Attention entropy −Σ_s A[t,s]·ln A[t,s], in nats.'));
  }
  if (o.probes > 0) {
    const probeInfo = (what: string): MetricInfo => ({
      per: 'head',
      samples: o.probes,
      description: `${what} On ${o.probes} probe sequences of BOS + ${o.probeTokens} random tokens repeated twice; share of the attention mass over all rows (TransformerLens detect_head, "mul").`,
    });
    const r = (k: keyof typeof probeAcc) => probeAcc[k].result();
    put('induction', r('induction').mean, r('induction').samples, probeInfo('Induction score: attention on the token after an earlier copy of the current token.'));
    put('duplicateToken', r('duplicateToken').mean, r('duplicateToken').samples, probeInfo('Duplicate-token score: attention on earlier copies of the current token.'));
  }
  if (harmSamples > 0) {
    const r = harmAcc.result();
    put('streamingHarm', r.mean, r.samples, {
      per: 'kvHead',
      samples: harmSamples,
      description:
        `Streaming harm: mean KL(full ‖ streaming) in nats of the next-token distribution on the teacher-forced answer tokens when only this KV head attends to sink ${o.sink} + window ${o.window} keys, over the first ${harmSamples} needle prompts. ` +
        'Approximation: the streaming mask is applied on the answer rows only (the rows whose distribution is measured); the prompt itself is processed with full attention.',
    });
  }
  if (ablationSamples > 0) {
    const r = ablationAcc.result();
    put('ablationKl', r.mean, r.samples, {
      per: 'head',
      samples: ablationSamples,
      description:
        `Ablation importance: mean KL(base ‖ ablated) in nats on the teacher-forced answer tokens when the head's output is zeroed, over the first ${ablationSamples} needle prompts. ` +
        'Approximation: the head is zeroed on the answer rows only; the prompt is processed unablated.',
    });
  }

  windowCaveats(metricInfo, c, contextTokens);
  const topK = o.topK;
  const top = (name: string) => (metrics[name] ? topHeads(metrics[name], topK).map(({ layer, head }) => ({ layer, head, score: metrics[name][layer][head] })) : undefined);
  const niah = summarizeNiah(outcomes);
  timing.totalMs = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  // CPU time of the whole process (ONNX Runtime's threads included): a yardstick that contention on a shared machine disturbs less than wall time.
  timing.cpuMs = (cpu.user + cpu.system) / 1000;
  return {
    format: ATLAS_FORMAT,
    version: ATLAS_VERSION,
    createdAt: new Date().toISOString(),
    model: { name: model.name, family: c.family, layers: L, heads: H, kvHeads: Hkv, headDim: c.headDim, vocab: V, weights: model.weightsKey },
    settings: {
      contextTokens,
      samples,
      seed: o.seed,
      depths: [...depths],
      mix: o.mix ?? 'mixed',
      keyCount: o.keyCount,
      patternSamples,
      captureStride: o.captureStride,
      prefillChunk: o.prefillChunk,
      harmSamples,
      ablationSamples,
      probes: o.probes,
      probeTokens: o.probeTokens,
      sink: o.sink,
      window: o.window,
      retrievalAveraging: 'pooled',
      interventions: Boolean(opts.hooks || opts.bindHooks),
    },
    metrics,
    metricInfo,
    sampleCounts,
    topHeads: {
      retrieval: top('retrieval')!,
      ...(metrics.streamingHarm ? { streamingHarm: top('streamingHarm')! } : {}),
      ...(metrics.ablationKl ? { ablationKl: top('ablationKl')! } : {}),
    },
    kvHeads: { retrieval: perKvHead(ret, Hkv).mean },
    niah: {
      accuracy: niah.accuracy,
      samples: niah.samples,
      contextTokens: niah.grid.contextTokens,
      depths: niah.grid.depths,
      grid: niah.grid.accuracy,
      counts: niah.grid.counts,
      method: 'greedy exact match, read off the teacher-forced answer (decoding on where that leaves it open)',
    },
    timing: Object.fromEntries(Object.entries(timing).map(([k, v]) => [k, Math.round(v)])),
  };
}

/** The needle set of an atlas's settings (to re-run it, e.g. for validation). */
export function atlasNeedleSet(model: Model, atlas: AtlasFile, haystack?: string): NiahItem[] {
  const s = atlas.settings as { contextTokens: number; samples: number; seed: number; depths: number[]; mix?: NeedleMix; keyCount?: number };
  return niahSamples(model.tokenizer!, haystack ?? loadHaystack(), {
    contextTokens: [s.contextTokens],
    depths: s.depths,
    samples: s.samples,
    seed: s.seed,
    mix: s.mix,
    keyCount: s.keyCount,
  });
}

export type { AtlasFile };
