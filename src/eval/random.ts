/**
 * Seeded randomness for the evaluation generators: mulberry32 (a 32-bit generator, small, fast and
 * good enough for picking words and positions) and a seed mixer, so that a sample is a pure function
 * of its seed and a grid cell's seed depends only on the cell, not on the grid around it.
 */
import { check } from '../errors.js';

/** mulberry32: returns floats in [0, 1) from a 32-bit seed. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * A 32-bit seed from a base seed and any number of integer parts (murmur3-style mixing), e.g.
 * `deriveSeed(seed, contextTokens, depthPermille, i)`. Different parts give unrelated streams.
 */
export function deriveSeed(seed: number, ...parts: number[]): number {
  let h = seed >>> 0;
  for (const part of [...parts, parts.length]) {
    check(Number.isFinite(part), `deriveSeed: part ${part} is not finite`);
    let k = Math.imul(Math.trunc(part) >>> 0, 0xcc9e2d51);
    k = Math.imul((k << 15) | (k >>> 17), 0x1b873593);
    h ^= k;
    h = (Math.imul((h << 13) | (h >>> 19), 5) + 0xe6546b64) >>> 0;
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** Convenience draws over a mulberry32 stream. */
export class Random {
  private readonly next: () => number;

  constructor(readonly seed: number) {
    check(Number.isInteger(seed), `seed must be an integer (got ${seed})`);
    this.next = mulberry32(seed);
  }

  /** Float in [0, 1). */
  float(): number {
    return this.next();
  }

  /** Integer in [min, max], both included. */
  int(min: number, max: number): number {
    check(Number.isInteger(min) && Number.isInteger(max) && min <= max, `Random.int: bad range [${min}, ${max}]`);
    return min + Math.floor(this.next() * (max - min + 1));
  }

  /** One element, uniformly. */
  pick<T>(items: readonly T[]): T {
    check(items.length > 0, 'Random.pick from an empty list');
    return items[Math.floor(this.next() * items.length)];
  }

  /** k distinct elements in random order (partial Fisher–Yates on a copy). */
  sample<T>(items: readonly T[], k: number): T[] {
    check(Number.isInteger(k) && k >= 0 && k <= items.length, `Random.sample: cannot draw ${k} of ${items.length}`);
    const pool = items.slice();
    for (let i = 0; i < k; i++) {
      const j = i + Math.floor(this.next() * (pool.length - i));
      [pool[i], pool[j]] = [pool[j], pool[i]];
    }
    return pool.slice(0, k);
  }
}
