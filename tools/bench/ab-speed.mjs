// A/B of two builds: prefill 512 (256-token chunks) and decode@512 of ref-llama-30m with the dist folder given as argv[2]
// (run old and new builds in interleaved processes: node tools/bench/ab-speed.mjs /path/to/dist; HEADWISE_CACHE per build).
const dist = process.argv[2];
const { Model } = await import(`${dist}/runtime/model.js`);
const { forward, newCache } = await import(`${dist}/runtime/forward.js`);
const { fullCache } = await import(`${dist}/runtime/generate.js`);
const model = await Model.load(process.argv[3] ?? '../shared/models/ref-llama-30m', { threads: 2 });
const gs = await model.session();
const setup = fullCache(model);
const ids = Array.from({ length: 512 }, (_, i) => 1 + ((i * 7919) % 8000));
const pre = [], dec = [];
for (let rep = 0; rep < 4; rep++) {
  const cache = newCache(model, gs, setup.policies);
  cache.reserve(600);
  let t = performance.now();
  for (let i = 0; i < 512; i += 256) await forward(model, gs, cache, ids.slice(i, i + 256));
  pre.push(512 / ((performance.now() - t) / 1000));
  t = performance.now();
  for (let i = 0; i < 32; i++) await forward(model, gs, cache, [7 + i]);
  dec.push(32 / ((performance.now() - t) / 1000));
}
const med = (x) => [...x].sort((a, b) => a - b)[x.length >> 1];
console.log(JSON.stringify({ dist, prefill: med(pre.slice(1)), decode: med(dec.slice(1)) }));
await model.dispose();
