import { describe, expect, it } from 'vitest';
import { NO_HOOKS } from '../graph/hooks.js';
import type { HookProvider } from './forward.js';
import { combineHookProviders, unionHookOptions, withBound, zeroHeads } from './hookSet.js';

describe('unionHookOptions', () => {
  it('merges layers (sorted, unique) and flags', () => {
    expect(unionHookOptions({ ...NO_HOOKS, capturePattern: [3, 1], scoreBias: [2], capture: ['blocks.1.hook_resid_pre'] }, undefined, { ...NO_HOOKS, capturePattern: [1, 0], headHooks: true, act: [5], logitLens: true })).toEqual({
      capturePattern: [0, 1, 3],
      captureZ: [],
      headHooks: true,
      scoreBias: [2],
      act: [5],
      capture: ['blocks.1.hook_resid_pre'],
      logitLens: true,
    });
  });
});

describe('combineHookProviders', () => {
  // 2 heads of head dim 2.
  const first: HookProvider = {
    headScale: () => Float32Array.from([2, 1]),
    headAdd: () => Float32Array.from([1, 1, 3, 3]),
    scoreBias: () => Float32Array.from([0, -1]),
    act: () => ({ mask: Float32Array.from([1]), beta: Float32Array.from([0.4]) }),
  };
  it('composes output hooks as affine maps, first then second', () => {
    const c = combineHookProviders(first, zeroHeads([{ layer: 0, head: 1 }], 2))!;
    expect(Array.from(c.headScale!(0)!)).toEqual([2, 0]);
    // a = s2·a1 + a2: head 1's added vector is zeroed along with its output.
    expect(Array.from(c.headAdd!(0)!)).toEqual([1, 1, 0, 0]);
    expect(Array.from(c.headScale!(1)!)).toEqual([2, 1]);
  });
  it('adds score biases, keeps a single ACT, refuses two', () => {
    const bias: HookProvider = { scoreBias: () => Float32Array.from([5, 5]) };
    const c = combineHookProviders(first, bias)!;
    const q = new Int32Array(1);
    expect(Array.from(c.scoreBias!(0, [0], q, q)!)).toEqual([5, 4]);
    expect(c.act!(0, [0], q)!.beta[0]).toBeCloseTo(0.4);
    expect(() => combineHookProviders(first, first)!.act!(0, [0], q)).toThrow(/two ACT calibrations on layer 0/);
  });
  it('passes a lone provider through', () => {
    expect(combineHookProviders(undefined, first)).toBe(first);
    expect(combineHookProviders(first, undefined)).toBe(first);
    expect(combineHookProviders(undefined, undefined)).toBeUndefined();
  });
});

describe('zeroHeads / withBound', () => {
  it('zeroes the listed heads of each layer only', () => {
    const z = zeroHeads([{ layer: 1, head: 0 }, { layer: 1, head: 2 }], 3);
    expect(Array.from(z.headScale!(1)!)).toEqual([0, 1, 0]);
    expect(z.headScale!(0)).toBeNull();
  });
  it('puts a prompt-bound intervention before the runner\'s hooks', () => {
    const bound = { hookOptions: { ...NO_HOOKS, scoreBias: [1] }, hooks: { headScale: () => Float32Array.from([3, 3]) } };
    const r = withBound(bound, { ...NO_HOOKS, headHooks: true }, zeroHeads([{ layer: 0, head: 0 }], 2));
    expect(r.hookOptions).toMatchObject({ headHooks: true, scoreBias: [1] });
    expect(Array.from(r.hooks!.headScale!(0)!)).toEqual([0, 3]);
    expect(withBound(null, undefined, undefined)).toEqual({ hookOptions: undefined, hooks: undefined });
  });
});
