/**
 * The lean GPU graph (`graph/leanAttention.ts`, `Arch.skipNorm`, `Model.session`'s causalClasses) on
 * the families it changes: RMSNorm (llama, granite's scale, gemma's 1 + w, gemma3's sandwich norms,
 * q/k norm and local RoPE windows, qwen3's q/k norm, phi3's fused projections), LayerNorm families that
 * keep Add + norm (gpt-neox with partial rotary, stablelm's parallel residual), and a window model.
 *
 * - Node census: a no-hook graph has no Transpose, one Reshape and one Unsqueeze (the residual
 *   stream stays [1, q, hidden]; the masked graph adds the mask's and RoPE positions'); the causal
 *   graph of a full-history model reads no mask and gives GQA no attention_bias; RMSNorm families add
 *   the residual inside SkipSimplifiedLayerNormalization. A layer with a hook leaves the stream 2D.
 * - A graph with pattern capture on layer 0 (explicit there, lean elsewhere, 2D stream) agrees too.
 * - KV mode `present` on the CPU: the lean graph (masked, and causal) gives the explicit graph's
 *   logits (1e-4) over a chunked prefill and decode. Runs always.
 * - webgpu (where an adapter can be created, e.g. lavapipe): the same, both on the device, 1e-3, in
 *   calls of < 32 new tokens (lavapipe's GQA is wrong from 32 on: `fusedAttention.test.ts`).
 * - A causal session refuses branches and a window policy on its causal class, naming the class.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compileGraph } from '../src/graph/compile.js';
import { NO_HOOKS, type HookOptions } from '../src/graph/hooks.js';
import { ModelProto } from '../src/graph/onnxProto.js';
import { disposeDeviceKv } from '../src/runtime/deviceKv.js';
import { forward, newCache } from '../src/runtime/forward.js';
import { fullCache } from '../src/runtime/generate.js';
import { causalClassesOf, Model, type ModelOptions, type SessionChoice } from '../src/runtime/model.js';
import { windowClass } from '../src/kv/classPolicy.js';
import { probeWebgpu } from '../src/runtime/ort.js';
import { worstDiff } from './compare.js';

process.env.HEADWISE_CACHE ??= fs.mkdtempSync(path.join(os.tmpdir(), 'headwise-test-'));

const FAMILIES = ['tiny-llama', 'tiny-granite', 'tiny-gemma', 'tiny-gemma3', 'tiny-qwen3', 'tiny-olmo2', 'tiny-phi3', 'tiny-gpt-neox', 'tiny-stablelm-parallel', 'tiny-mistral-swa'];
const dirOf = (name: string) => path.resolve('test/fixtures/models', name);
const ids = (n: number, vocab: number, seed: number) => Array.from({ length: n }, (_, i) => 1 + ((i * 7919 + seed * 104729) % (vocab - 1)));

type Node = { opType: string; input: string[] };
type Graph = { node: Node[]; input: { name: string }[] };

function graphOf(model: Model, causal: boolean): Graph {
  const setup = fullCache(model);
  const { file } = compileGraph(model.ckpt, setup.layout, NO_HOOKS, 'present', { fusedAttention: true, causalClasses: causal ? causalClassesOf(setup.policies) : [] });
  return (ModelProto.decode(fs.readFileSync(file)) as unknown as { graph: Graph }).graph;
}

const count = (g: Graph, op: string) => g.node.filter((n) => n.opType === op).length;

/** Logits of every row of a 20-token prompt in chunks [9, 11] and 6 decoded tokens. */
async function trace(model: Model, choice: SessionChoice, hooks: HookOptions = NO_HOOKS): Promise<Float32Array[]> {
  const c = model.config;
  const setup = fullCache(model);
  const gs = await model.session(setup.layout, hooks, choice);
  const cache = newCache(model, gs, setup.policies);
  const prompt = ids(20, c.vocabSize, 1);
  const out: Float32Array[] = [];
  for (const call of [prompt.slice(0, 9), prompt.slice(9), ...ids(6, c.vocabSize, 2).map((t) => [t])]) {
    out.push((await forward(model, gs, cache, call, { logitsAt: call.map((_, i) => i) })).logits);
  }
  disposeDeviceKv(cache);
  return out;
}

describe('lean graph census', () => {
  it('tiny-llama: no Transpose, one Reshape and one Unsqueeze (+ mask and RoPE positions); causal: no mask input, no attention_bias, packed QKV; residual adds inside the norms', async () => {
    const model = await Model.load(dirOf('tiny-llama'));
    try {
      const L = model.config.numLayers;
      for (const causal of [false, true]) {
        const g = graphOf(model, causal);
        expect(count(g, 'GroupQueryAttention')).toBe(L);
        expect(count(g, 'Transpose')).toBe(0);
        // No hooks: the residual stream is [1, q, hidden] throughout (one Unsqueeze after the embedding, one Reshape before the logits rows).
        expect(count(g, 'Reshape')).toBe(1);
        expect(count(g, 'Unsqueeze')).toBeLessThanOrEqual(causal ? 1 : 3);
        expect(count(g, 'SkipSimplifiedLayerNormalization')).toBe(2 * L - 1);
        const gqa = g.node.filter((n) => n.opType === 'GroupQueryAttention');
        const hasMask = g.input.some((i) => i.name.startsWith('mask.'));
        expect(hasMask).toBe(!causal);
        for (const n of gqa) expect(n.input.length > 10 && n.input[10] !== '').toBe(!causal);
        // Causal: RoPE inside GQA (cos/sin inputs), no RotaryEmbedding nodes, and q|k|v packed into
        // GQA (no key/value inputs): the only Splits left are the MLPs' gate|up.
        expect(count(g, 'RotaryEmbedding')).toBe(causal ? 0 : 2 * L);
        for (const n of gqa) expect(n.input[1] === '' && n.input[2] === '').toBe(causal);
        expect(count(g, 'Split')).toBe(causal ? L : 2 * L);
      }
    } finally {
      await model.dispose();
    }
  });
});

function suite(title: string, opts: ModelOptions, tol: number): void {
  describe.each(FAMILIES)(`${title}: %s`, (name) => {
    let lean: Model;
    let explicit: Model;
    beforeAll(async () => {
      lean = await Model.load(dirOf(name), { ...opts, fusedAttention: true });
      explicit = await Model.load(dirOf(name), { ...opts, fusedAttention: false });
    });
    afterAll(async () => {
      await lean?.dispose();
      await explicit?.dispose();
    });
    it(`lean (masked and causal) matches explicit attention within ${tol}`, async () => {
      const ref = await trace(explicit, {});
      const masked = worstDiff(await trace(lean, {}), ref);
      const causal = worstDiff(await trace(lean, { causalClasses: causalClassesOf(fullCache(lean).policies) }), ref);
      const hooked = worstDiff(await trace(lean, { causalClasses: causalClassesOf(fullCache(lean).policies) }, { ...NO_HOOKS, capturePattern: [0] }), ref);
      console.info(`[headwise tests] ${title} ${name}: max |Δlogits| masked ${masked.toExponential(2)}, causal ${causal.toExponential(2)}, layer 0 hooked ${hooked.toExponential(2)}`);
      expect(masked).toBeLessThanOrEqual(tol);
      expect(causal).toBeLessThanOrEqual(tol);
      expect(hooked).toBeLessThanOrEqual(tol);
    });
  });
}

suite('present KV mode on cpu', { kvMode: 'present' }, 1e-4);

describe('a causal session refuses calls that need a mask', () => {
  it('branches and a window policy on the causal class are refused, naming the class', async () => {
    const model = await Model.load(dirOf('tiny-llama'), { kvMode: 'present', fusedAttention: true });
    try {
      const setup = fullCache(model);
      const gs = await model.session(setup.layout, NO_HOOKS, { causalClasses: ['full'] });
      expect(gs.causalClasses).toEqual(['full']);
      const cache = newCache(model, gs, setup.policies);
      await forward(model, gs, cache, ids(4, model.config.vocabSize, 1));
      await expect(forward(model, gs, cache, ids(4, model.config.vocabSize, 2), { commit: false, branches: 2 })).rejects.toThrow(/mask of cache class "full".*2 branches/);
      disposeDeviceKv(cache);
      const windowed = newCache(model, gs, new Map([['full', windowClass(2, 4)]]));
      await expect(forward(model, gs, windowed, ids(3, model.config.vocabSize, 3))).rejects.toThrow(/mask of cache class "full".*window KV policy/);
      disposeDeviceKv(windowed);
    } finally {
      await model.dispose();
    }
  });
});

const adapter = await probeWebgpu();
if (!adapter.ok) {
  console.warn(`[headwise tests] SKIPPING webgpu lean-graph tests: ${adapter.reason} (on a machine without a GPU: eval "$(bash tools/device/lavapipe.sh)")`);
  describe('webgpu', () => {
    it.skip(`skipped: ${adapter.reason}`, () => {});
  });
} else {
  suite('webgpu', { device: 'webgpu', strictDevice: true }, 1e-3);
}
