/** RoPE frequencies of every type against values computed by hand from the Hugging Face formulas. */
import { describe, expect, it } from 'vitest';
import type { RopeConfig } from '../hf/config.js';
import { ropeFrequencies } from './rope.js';

const base = (theta: number, dim: number) => Array.from({ length: dim / 2 }, (_, i) => 1 / Math.pow(theta, (2 * i) / dim));
const close = (a: ArrayLike<number>, b: ArrayLike<number>, tol = 1e-6) => {
  expect(a.length).toBe(b.length);
  for (let i = 0; i < a.length; i++) expect(Math.abs(a[i] - b[i]), `index ${i}`).toBeLessThan(tol * Math.max(1, Math.abs(b[i])));
};

describe('ropeFrequencies', () => {
  const rope = (r: Partial<RopeConfig>): RopeConfig => ({ theta: 10000, type: 'default', partialRotary: 1, ...r });

  it('default and dynamic (inside the context): 1/θ^(2i/d); linear divides by the factor', () => {
    close(ropeFrequencies(rope({}), 16, 128).inv, base(10000, 16));
    close(ropeFrequencies(rope({ type: 'dynamic', factor: 2, originalMaxPositions: 16 }), 16, 128).inv, base(10000, 16));
    close(ropeFrequencies(rope({ type: 'linear', factor: 4 }), 16, 128).inv, base(10000, 16).map((x) => x / 4));
  });

  it('partial rotary rotates the first floor(d·f) dims with frequencies of that width', () => {
    const r = ropeFrequencies(rope({ partialRotary: 0.25 }), 16, 128);
    expect(r.rotaryDim).toBe(4);
    close(r.inv, base(10000, 4));
  });

  it('yarn: extrapolation below the ramp, interpolation (÷ factor) above it, cos/sin × (0.1·ln f + 1)', () => {
    const r = ropeFrequencies(rope({ type: 'yarn', factor: 4, originalMaxPositions: 16 }), 64, 128);
    const b = base(10000, 64);
    // With 16 original positions the ramp is [floor(low), ceil(high)] of dims: dim 0 is pure extrapolation, the last pure interpolation.
    close([r.inv[0]], [b[0]]);
    close([r.inv[31]], [b[31] / 4]);
    expect(r.scale).toBeCloseTo(0.1 * Math.log(4) + 1, 6);
  });

  it('longrope: short factors, long ones past the original context, scale √(1 + ln(max/orig)/ln orig)', () => {
    const short = [1, 2, 3, 4];
    const long = [5, 6, 7, 8];
    const r = ropeFrequencies(rope({ type: 'longrope', shortFactor: short, longFactor: long, originalMaxPositions: 16 }), 8, 128);
    close(r.inv, base(10000, 8).map((x, i) => x / short[i]));
    close(r.long!.inv, base(10000, 8).map((x, i) => x / long[i]));
    expect(r.long!.from).toBe(16);
    expect(r.scale).toBeCloseTo(Math.sqrt(1 + Math.log(8) / Math.log(16)), 6);
  });

  it('llama3: high frequencies kept, low ones ÷ factor', () => {
    const r = ropeFrequencies(rope({ type: 'llama3', theta: 500000, factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositions: 8192 }), 16, 131072);
    const b = base(500000, 16);
    close([r.inv[0]], [b[0]]);
    close([r.inv[7]], [b[7] / 8]);
  });
});
