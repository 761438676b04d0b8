/**
 * Mean head outputs, for mean ablation (`ablate {mode: "mean"}`): each head's output before o_proj
 * (`hook_z`), averaged over every token of a small prompt set except the first (BOS, whose outputs are
 * atypical), on the unmodified model. `headMeans` computes them; `cachedHeadMeans` keeps them in the
 * model's cache folder keyed by the exact prompt ids, so a second run reads a file. The default prompt
 * set is a few seeded windows of the bundled haystack text (`defaultMeanPrompts`).
 */

import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { HeadwiseError } from '../errors.js';
import { haystackWindow, loadHaystack } from '../eval/haystack.js';
import { Random } from '../eval/random.js';
import type { TextTokenizer } from '../eval/textTokenizer.js';
import { modelCacheDir, writeFileAtomic } from '../graph/weights.js';
import { NO_HOOKS } from '../graph/hooks.js';
import { forward, newCache } from '../runtime/forward.js';
import { DEFAULT_PREFILL_CHUNK, fullCache } from '../runtime/generate.js';
import type { Model } from '../runtime/model.js';

/** Per layer, [numHeads·headDim] head-major: the mean output of each head — the shape `lowerSpec` takes. */
export type HeadMeans = Float32Array[];

export const MEAN_PROMPT_DEFAULTS = Object.freeze({ count: 8, tokens: 256, seed: 0 });

export interface HeadMeansOptions {
  /** Tokens per forward call (default 512). */
  prefillChunk?: number;
  /** Called after each prompt with (done, total). */
  onProgress?: (done: number, total: number) => void;
}

/**
 * Mean `hook_z` of every head over all tokens but the first of each prompt.
 *
 * @example
 * const means = await headMeans(model, defaultMeanPrompts(model.tokenizer!));
 * const lowered = lowerSpec(spec, modelShape(model), { means });
 */
export async function headMeans(model: Model, prompts: readonly (readonly number[])[], options: HeadMeansOptions = {}): Promise<HeadMeans> {
  const c = model.config;
  const width = c.numHeads * c.headDim;
  const layers = Array.from({ length: c.numLayers }, (_, l) => l);
  const setup = fullCache(model);
  const gs = await model.session(setup.layout, { ...NO_HOOKS, captureZ: layers });
  const sums = layers.map(() => new Float64Array(width));
  let count = 0;
  const chunk = options.prefillChunk ?? DEFAULT_PREFILL_CHUNK;
  for (const [n, ids] of prompts.entries()) {
    if (ids.length < 2) throw new HeadwiseError(`mean prompts: prompt ${n} has ${ids.length} token(s); each needs at least 2 (the first is skipped)`);
    const cache = newCache(model, gs, setup.policies);
    cache.reserve(ids.length);
    for (let i = 0; i < ids.length; i += chunk) {
      const part = ids.slice(i, i + chunk);
      const r = await forward(model, gs, cache, [...part]);
      for (const l of layers) {
        const z = r.z.get(l)!;
        const s = sums[l];
        for (let t = i === 0 ? 1 : 0; t < part.length; t++) for (let d = 0; d < width; d++) s[d] += z[t * width + d];
      }
    }
    count += ids.length - 1;
    options.onProgress?.(n + 1, prompts.length);
  }
  if (count === 0) throw new HeadwiseError('mean prompts: no prompts given');
  return sums.map((s) => Float32Array.from(s, (x) => x / count));
}

/**
 * `count` windows of the haystack text, each cut to `tokens` tokens (BOS included), seeded.
 * Needs the model's tokenizer.
 */
export function defaultMeanPrompts(
  tokenizer: TextTokenizer,
  { count = MEAN_PROMPT_DEFAULTS.count, tokens = MEAN_PROMPT_DEFAULTS.tokens, seed = MEAN_PROMPT_DEFAULTS.seed, haystack }: { count?: number; tokens?: number; seed?: number; haystack?: string } = {},
): number[][] {
  const text = haystack ?? loadHaystack();
  const rng = new Random(seed);
  return Array.from({ length: count }, () => tokenizer.encode(haystackWindow(text, rng, tokens * 8)).slice(0, tokens));
}

/**
 * `headMeans` over `prompts`, read from the model's cache folder when these exact prompts were averaged
 * before, else computed and stored there.
 */
export async function cachedHeadMeans(model: Model, prompts: readonly (readonly number[])[], options: HeadMeansOptions = {}): Promise<HeadMeans> {
  const c = model.config;
  const key = crypto.createHash('sha256').update(JSON.stringify(prompts)).digest('hex').slice(0, 16);
  const file = path.join(modelCacheDir(model.ckpt), `head-means-${key}.json`);
  if (fs.existsSync(file)) {
    try {
      const saved = JSON.parse(fs.readFileSync(file, 'utf8')) as { numLayers: number; numHeads: number; headDim: number; means: number[][] };
      if (saved.numLayers === c.numLayers && saved.numHeads === c.numHeads && saved.headDim === c.headDim) {
        return saved.means.map((m) => Float32Array.from(m));
      }
    } catch {
      // A damaged cache file is recomputed.
    }
  }
  const means = await headMeans(model, prompts, options);
  const tokens = prompts.reduce((n, p) => n + p.length - 1, 0);
  writeFileAtomic(file, JSON.stringify({ numLayers: c.numLayers, numHeads: c.numHeads, headDim: c.headDim, prompts: prompts.length, tokens, means: means.map((m) => Array.from(m)) }));
  return means;
}

/** Mean head outputs over `defaultMeanPrompts` (haystack windows), cached: what the CLI and the library use. */
export async function defaultHeadMeans(model: Model, options: HeadMeansOptions = {}): Promise<HeadMeans> {
  if (!model.tokenizer) throw new HeadwiseError(`${model.ckpt.dir}: no tokenizer.json, needed for the mean-ablation prompts; pass means computed with headMeans()`);
  return cachedHeadMeans(model, defaultMeanPrompts(model.tokenizer), options);
}
