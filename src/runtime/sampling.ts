/**
 * Choosing the next token from logits: greedy (temperature 0), or sampling with temperature,
 * top-k and top-p from a seeded generator so runs are reproducible.
 */
export interface SamplingOptions {
  temperature?: number;
  topK?: number;
  topP?: number;
  seed?: number;
}

/** mulberry32: a small, fast, seedable PRNG returning floats in [0, 1). */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function argmax(x: ArrayLike<number>, from = 0, to = x.length): number {
  let best = from;
  for (let i = from + 1; i < to; i++) if (x[i] > x[best]) best = i;
  return best - from;
}

export class Sampler {
  private readonly random: () => number;

  constructor(private readonly opts: SamplingOptions = {}) {
    this.random = seededRandom(opts.seed ?? 0);
  }

  /** Picks a token from one row of logits. */
  next(logits: ArrayLike<number>): number {
    const t = this.opts.temperature ?? 0;
    if (t <= 0) return argmax(logits);
    let idx = Array.from({ length: logits.length }, (_, i) => i);
    let max = -Infinity;
    for (const i of idx) max = Math.max(max, logits[i]);
    let probs = idx.map((i) => Math.exp((logits[i] - max) / t));
    const order = idx.map((_, k) => k).sort((a, b) => probs[b] - probs[a]);
    let keep = order;
    if (this.opts.topK && this.opts.topK > 0) keep = keep.slice(0, this.opts.topK);
    const total = keep.reduce((s, k) => s + probs[k], 0);
    if (this.opts.topP && this.opts.topP < 1) {
      let acc = 0;
      const cut: number[] = [];
      for (const k of keep) {
        cut.push(k);
        acc += probs[k] / total;
        if (acc >= this.opts.topP) break;
      }
      keep = cut;
    }
    idx = keep.map((k) => idx[k]);
    probs = keep.map((k) => probs[k]);
    const sum = probs.reduce((a, b) => a + b, 0);
    let r = this.random() * sum;
    for (let i = 0; i < idx.length; i++) {
      r -= probs[i];
      if (r <= 0) return idx[i];
    }
    return idx[idx.length - 1];
  }
}
