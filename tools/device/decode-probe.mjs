#!/usr/bin/env node
// Decode speed of one model on webgpu per weight format (a probe beside bench:gpu, which times fp32 and
// f16): prefill CONTEXT tokens, then STEPS single-token steps; one JSON line per format on stdout.
// Usage: node tools/device/decode-probe.mjs MODEL_DIR [formats=f16,q4] [context=2048] [steps=32]
import { Model } from '../../dist/runtime/model.js';
import { forward, newCache } from '../../dist/runtime/forward.js';
import { disposeDeviceKv } from '../../dist/runtime/deviceKv.js';
import { weightOptions } from '../../dist/graph/quant.js';
import { FULL_HISTORY } from '../../dist/kv/classPolicy.js';

const [dir, formatsArg = 'f16,q4', contextArg = '2048', stepsArg = '32'] = process.argv.slice(2);
const context = Number(contextArg);
const steps = Number(stepsArg);
for (const format of formatsArg.split(',')) {
  const t0 = performance.now();
  const model = await Model.load(dir, { device: 'webgpu', strictDevice: true, fusedAttention: true, weights: weightOptions(format) });
  const gs = await model.session(undefined, undefined, { causalClasses: ['full'] });
  const loadMs = performance.now() - t0;
  const ids = Array.from({ length: context }, (_, i) => 1 + ((i * 7919) % 8000));
  let cache = newCache(model, gs, new Map([['full', FULL_HISTORY]]));
  let t = performance.now();
  await forward(model, gs, cache, ids);
  disposeDeviceKv(cache);
  cache = newCache(model, gs, new Map([['full', FULL_HISTORY]]));
  t = performance.now();
  await forward(model, gs, cache, ids);
  const prefillMs = performance.now() - t;
  for (let i = 0; i < 2; i++) await forward(model, gs, cache, [7 + i]);
  t = performance.now();
  const cpu0 = process.cpuUsage();
  for (let i = 0; i < steps; i++) await forward(model, gs, cache, [11 + (i % 100)]);
  const ms = (performance.now() - t) / steps;
  const cpu = process.cpuUsage(cpu0);
  console.log(JSON.stringify({ format, context, loadMs: Math.round(loadMs), prefillTokS: Math.round(context / (prefillMs / 1000)), decodeMsPerToken: +ms.toFixed(2), decodeTokS: +(1000 / ms).toFixed(1), cpuMsPerToken: +((cpu.user + cpu.system) / 1000 / steps).toFixed(2) }));
  disposeDeviceKv(cache);
  await model.dispose();
}
