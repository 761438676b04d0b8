/**
 * Fused GroupQueryAttention (`graph/fusedAttention.ts`) on the families whose attention spec is not
 * plain 1/√D attention: a non-default score scale (granite `attention_multiplier`), sliding windows
 * (mistral on every layer, qwen2 on one, phi3 with partial rotary), and a score soft-cap (gemma2),
 * which GQA cannot express on WebGPU, so those layers must stay explicit.
 *
 * - The fused graph has one GroupQueryAttention per layer the rule admits (none on gemma2; a layer
 *   with an ACT hook stays explicit; one with pattern capture stays fused, its captured rows computed
 *   beside GQA — and those rows equal the explicit graph's, 1e-5, with the same logits).
 * - KV mode `present` on the CPU, fused vs explicit: the same logits (1e-4) over a chunked prefill
 *   and decode that runs past the windows. Runs always.
 * - webgpu (where an adapter can be created, e.g. lavapipe), fused (forced) vs explicit, both on the
 *   device: 1e-3 in calls of < 32 new tokens; skipped visibly where it cannot. From 32 new tokens in one
 *   call ORT's kernel is wrong on lavapipe: the default follows `runtime/fusedAttentionProbe.ts`, and
 *   the probe's verdict is checked against the model (a 40-token call fused vs explicit).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compileGraph } from '../src/graph/compile.js';
import { NO_HOOKS, type HookOptions } from '../src/graph/hooks.js';
import { ModelProto } from '../src/graph/onnxProto.js';
import { disposeDeviceKv } from '../src/runtime/deviceKv.js';
import { forward, newCache, type HookProvider } from '../src/runtime/forward.js';
import { fullCache } from '../src/runtime/generate.js';
import { Model, type ModelOptions } from '../src/runtime/model.js';
import { fusedAttentionDeviation } from '../src/runtime/fusedAttentionProbe.js';
import { probeWebgpu } from '../src/runtime/ort.js';
import { worstDiff } from './compare.js';

process.env.HEADWISE_CACHE ??= fs.mkdtempSync(path.join(os.tmpdir(), 'headwise-test-'));

/** Fixture and how many of its (two) layers attend fused without hooks. */
const FAMILIES: [string, number][] = [
  ['tiny-granite', 2],
  ['tiny-mistral-swa', 2],
  ['tiny-qwen2-swa', 2],
  ['tiny-phi3-swa', 2],
  ['tiny-gemma2', 0],
];
const dirOf = (name: string) => path.resolve('test/fixtures/models', name);
const ids = (n: number, vocab: number, seed: number) => Array.from({ length: n }, (_, i) => 1 + ((i * 7919 + seed * 104729) % (vocab - 1)));

function gqaNodes(model: Model, hooks: HookOptions): number {
  const { file } = compileGraph(model.ckpt, fullCache(model).layout, hooks, 'present', { fusedAttention: true });
  const proto = ModelProto.decode(fs.readFileSync(file)) as unknown as { graph: { node: { opType: string }[] } };
  return proto.graph.node.filter((n) => n.opType === 'GroupQueryAttention').length;
}

/** Logits of every row of a 20-token prompt in chunks [9, 11] and 6 decoded tokens (window 8: both past it). */
async function trace(model: Model, oneCall = 0): Promise<Float32Array[]> {
  const c = model.config;
  const setup = fullCache(model);
  const gs = await model.session(setup.layout);
  const cache = newCache(model, gs, setup.policies);
  const prompt = ids(20, c.vocabSize, 1);
  const calls = oneCall > 0 ? [ids(oneCall, c.vocabSize, 3)] : [prompt.slice(0, 9), prompt.slice(9), ...ids(6, c.vocabSize, 2).map((t) => [t])];
  const out: Float32Array[] = [];
  for (const call of calls) out.push((await forward(model, gs, cache, call, { logitsAt: call.map((_, i) => i) })).logits);
  disposeDeviceKv(cache);
  return out;
}

function suite(title: string, fused: ModelOptions, explicit: ModelOptions, tol: number): void {
  describe.each(FAMILIES)(`${title}: %s`, (name) => {
    let a: Model;
    let b: Model;
    beforeAll(async () => {
      a = await Model.load(dirOf(name), fused);
      b = await Model.load(dirOf(name), explicit);
    });
    afterAll(async () => {
      await a?.dispose();
      await b?.dispose();
    });
    it(`fused matches explicit attention within ${tol}`, async () => {
      const d = worstDiff(await trace(a), await trace(b));
      console.info(`[headwise tests] ${title} ${name}: max |Δlogits| ${d.toExponential(2)}`);
      expect(d).toBeLessThanOrEqual(tol);
    });
  });
}

describe('which layers attend fused', () => {
  it.each(FAMILIES)('%s: %i GroupQueryAttention nodes without hooks; an ACT hook on layer 0 keeps it explicit, pattern capture does not', async (name, fusedLayers) => {
    const model = await Model.load(dirOf(name));
    try {
      expect(gqaNodes(model, NO_HOOKS)).toBe(fusedLayers);
      expect(gqaNodes(model, { ...NO_HOOKS, act: [0] })).toBe(Math.max(0, fusedLayers - 1));
      expect(gqaNodes(model, { ...NO_HOOKS, capturePattern: [0, 1] })).toBe(fusedLayers);
    } finally {
      await model.dispose();
    }
  });
});

/** Logits and captured patterns of a 20-token prompt in chunks [9, 11] and 3 decoded tokens, every layer captured on a few rows. */
async function patternTrace(model: Model, withBias: boolean): Promise<{ logits: Float32Array[]; patterns: Float32Array[] }> {
  const c = model.config;
  const setup = fullCache(model);
  const all = Array.from({ length: c.numLayers }, (_, l) => l);
  const gs = await model.session(setup.layout, { ...NO_HOOKS, capturePattern: all, scoreBias: withBias ? all : [] });
  // withBias: layer 0 masks key 2 for its first query head, the other layers take the [H, 1, 1] zero.
  const hooks: HookProvider | undefined = withBias ? {
    scoreBias: (l, heads, queryPositions, keyPositions) => {
      if (l !== 0) return null;
      const out = new Float32Array(heads.length * queryPositions.length * keyPositions.length);
      for (let t = 0; t < queryPositions.length; t++) out[t * keyPositions.length + 2] = -1e30;
      return out;
    },
  } : undefined;
  const cache = newCache(model, gs, setup.policies);
  const prompt = ids(20, c.vocabSize, 1);
  const calls = [prompt.slice(0, 9), prompt.slice(9), ...ids(3, c.vocabSize, 2).map((t) => [t])];
  const logits: Float32Array[] = [];
  const patterns: Float32Array[] = [];
  for (const call of calls) {
    const rows = call.length === 1 ? [0] : [0, 3, call.length - 1];
    const r = await forward(model, gs, cache, call, { logitsAt: call.map((_, i) => i), captureRows: rows, hooks });
    logits.push(r.logits);
    expect(r.patterns.length).toBe(c.numLayers);
    for (const p of r.patterns) {
      expect(p.data.length).toBe(p.heads.length * rows.length * p.keyPositions.length);
      patterns.push(p.data);
    }
  }
  disposeDeviceKv(cache);
  return { logits, patterns };
}

describe.each(FAMILIES.filter(([, fusedLayers]) => fusedLayers > 0))('pattern rows beside fused attention (present KV mode on cpu): %s', (name) => {
  it.each([false, true])('the captured rows and the logits match the explicit graph (score bias hook: %s)', async (withBias) => {
    const fused = await Model.load(dirOf(name), { kvMode: 'present', fusedAttention: true });
    const explicit = await Model.load(dirOf(name), { kvMode: 'present', fusedAttention: false });
    try {
      const a = await patternTrace(fused, withBias);
      const b = await patternTrace(explicit, withBias);
      const dp = worstDiff(a.patterns, b.patterns);
      const dl = worstDiff(a.logits, b.logits);
      console.info(`[headwise tests] fused pattern rows ${name} (bias ${withBias}): max |Δpattern| ${dp.toExponential(2)}, |Δlogits| ${dl.toExponential(2)}`);
      expect(dp).toBeLessThanOrEqual(1e-5);
      expect(dl).toBeLessThanOrEqual(1e-4);
    } finally {
      await fused.dispose();
      await explicit.dispose();
    }
  });
});

suite('present KV mode on cpu', { kvMode: 'present', fusedAttention: true }, { kvMode: 'present', fusedAttention: false }, 1e-4);

const adapter = await probeWebgpu();
if (!adapter.ok) {
  console.warn(`[headwise tests] SKIPPING webgpu fused-attention tests: ${adapter.reason} (on a machine without a GPU: eval "$(bash tools/device/lavapipe.sh)")`);
  describe('webgpu', () => {
    it.skip(`skipped: ${adapter.reason}`, () => {});
  });
} else {
  suite('webgpu', { device: 'webgpu', strictDevice: true, fusedAttention: true }, { device: 'webgpu', strictDevice: true, fusedAttention: false }, 1e-3);

  describe('webgpu default: fused where the probe finds the kernel right', () => {
    it('tiny-mistral-swa: the default follows the probe, and the probe is right about a 40-token call', async () => {
      const fused = await Model.load(dirOf('tiny-mistral-swa'), { device: 'webgpu', strictDevice: true, fusedAttention: true });
      const explicit = await Model.load(dirOf('tiny-mistral-swa'), { device: 'webgpu', strictDevice: true, fusedAttention: false });
      const auto = await Model.load(dirOf('tiny-mistral-swa'), { device: 'webgpu', strictDevice: true });
      try {
        const c = auto.config;
        const deviation = await fusedAttentionDeviation(c.numHeads, c.numKvHeads, c.headDim);
        const agrees = deviation <= 1e-3;
        expect((await auto.session(fullCache(auto).layout)).fusedAttention).toBe(agrees);
        const d = worstDiff(await trace(fused, 40), await trace(explicit, 40));
        console.info(`[headwise tests] webgpu probe: GQA vs cpu ${deviation.toExponential(2)}; 40-token call fused vs explicit max |Δlogits| ${d.toExponential(2)}`);
        if (agrees) expect(d).toBeLessThanOrEqual(1e-3);
        else expect(d).toBeGreaterThan(1e-3);
      } finally {
        for (const m of [fused, explicit, auto]) await m.dispose();
      }
    });
  });
}
