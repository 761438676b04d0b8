#!/usr/bin/env node
// The nodes ONNX Runtime executes per decode step of a model's no-hook GPU graph (KV mode present,
// fused attention forced on): a short prefill, then STEPS single-token steps, with ONNX Runtime's
// profiler on (HEADWISE_ORT_PROFILE), summarised per op by ort-profile-summary.mjs. On a machine
// without a GPU run it on lavapipe (`eval "$(bash tools/device/lavapipe.sh)"`): the node counts are
// exact, the times only indicative. Needs `npm run build` (reads dist/).
// The session promises full-history class "full" (`causalClasses`, the lean maskless graph) unless
// HEADWISE_CENSUS_MASKED=1.
// Usage: node tools/device/decode-census.mjs MODEL_DIR [STEPS=24] [PREFILL=16]
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const [dir, stepsArg = '24', prefillArg = '16'] = process.argv.slice(2);
if (!dir) {
  console.error('usage: node tools/device/decode-census.mjs MODEL_DIR [STEPS] [PREFILL]');
  process.exit(2);
}
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'decode-census-'));
process.env.HEADWISE_ORT_PROFILE = path.join(tmp, 'p');
const { Model } = await import('../../dist/runtime/model.js');
const { forward, newCache } = await import('../../dist/runtime/forward.js');
const { fullCache } = await import('../../dist/runtime/generate.js');
const { disposeDeviceKv } = await import('../../dist/runtime/deviceKv.js');

const model = await Model.load(path.resolve(dir), { device: 'webgpu', strictDevice: true, fusedAttention: true });
const setup = fullCache(model);
const gs = await model.session(setup.layout, undefined, process.env.HEADWISE_CENSUS_MASKED === '1' ? {} : { causalClasses: ['full'] });
const cache = newCache(model, gs, setup.policies);
const V = model.config.vocabSize;
const prompt = Array.from({ length: Number(prefillArg) }, (_, i) => 1 + ((i * 7919) % (V - 1)));
await forward(model, gs, cache, prompt);
const t0 = performance.now();
const steps = Number(stepsArg);
for (let s = 0; s < steps; s++) await forward(model, gs, cache, [1 + ((s * 104729) % (V - 1))]);
const ms = (performance.now() - t0) / steps;
disposeDeviceKv(cache);
await model.dispose();
console.log(`${path.basename(dir)}: ${steps} decode steps after a ${prompt.length}-token prefill, ${ms.toFixed(2)} ms/step wall (profiler on)`);
const files = fs.readdirSync(tmp).map((f) => path.join(tmp, f));
const summary = execFileSync(process.execPath, [path.join(path.dirname(new URL(import.meta.url).pathname), 'ort-profile-summary.mjs'), ...files], { encoding: 'utf8' });
console.log(summary.trimEnd());
fs.rmSync(tmp, { recursive: true, force: true });
