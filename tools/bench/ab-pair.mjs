// Paired A/B of two builds in ONE process, for the shared box: both dist folders load the same model (each with its
// own graph cache folder) and alternate rep by rep in ABBA order, so both see the same machine load; each rep is a
// prefill of 512 tokens (256-token chunks) then 32 decode steps. Prints each rep's tok/s, the geometric mean of the
// per-rep ratios B/A (a position effect cancels in ABBA), and CPU ms per phase (all threads: the work done, less
// sensitive to other processes than wall time; with --threads 1 there is no spinning thread pool in it).
//   node tools/bench/ab-pair.mjs DIST_A CACHE_A DIST_B CACHE_B [--format f32|f16|q8|q4] [--reps N] [--threads N] [--model DIR]
// e.g. main built in a copy (git worktree add /tmp/main main && cd /tmp/main && npx tsc -p tsconfig.build.json).
import { parseArgs } from 'node:util';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { format: { type: 'string', default: 'f32' }, reps: { type: 'string', default: '12' }, threads: { type: 'string', default: '2' }, model: { type: 'string', default: '../shared/models/ref-llama-30m' } },
});
if (positionals.length !== 4) {
  console.error('usage: node tools/bench/ab-pair.mjs DIST_A CACHE_A DIST_B CACHE_B [--format F] [--reps N] [--threads N] [--model DIR]');
  process.exit(2);
}
const reps = Number(values.reps);
const threads = Number(values.threads);
const builds = [['A', positionals[0], positionals[1]], ['B', positionals[2], positionals[3]]];
const runs = [];
for (const [label, dist, cache] of builds) {
  // The cache root is read when a graph is compiled: this build's folder until its session exists.
  process.env.HEADWISE_CACHE = cache;
  const { Model } = await import(`${dist}/runtime/model.js`);
  const { forward, newCache } = await import(`${dist}/runtime/forward.js`);
  const { fullCache } = await import(`${dist}/runtime/generate.js`);
  const { weightOptions } = await import(`${dist}/graph/quant.js`);
  const model = await Model.load(values.model, { threads, weights: weightOptions(values.format) });
  const gs = await model.session();
  runs.push({ label, model, gs, forward, newCache, setup: fullCache(model) });
}
const ids = Array.from({ length: 512 }, (_, i) => 1 + ((i * 7919) % 8000));
const cpu = () => { const u = process.cpuUsage(); return (u.user + u.system) / 1e3; };
const res = Object.fromEntries(runs.map((r) => [r.label, { pre: [], dec: [], preCpu: [], decCpu: [] }]));
for (let rep = 0; rep <= reps; rep++) {
  for (const r of rep % 2 ? runs : [...runs].reverse()) {
    const cache = r.newCache(r.model, r.gs, r.setup.policies);
    cache.reserve(600);
    let c0 = cpu();
    let t = performance.now();
    for (let i = 0; i < 512; i += 256) await r.forward(r.model, r.gs, cache, ids.slice(i, i + 256));
    const pre = 512 / ((performance.now() - t) / 1000);
    const preCpu = cpu() - c0;
    c0 = cpu();
    t = performance.now();
    for (let i = 0; i < 32; i++) await r.forward(r.model, r.gs, cache, [7 + i]);
    const dec = 32 / ((performance.now() - t) / 1000);
    const decCpu = cpu() - c0;
    // rep 0 warms both up
    if (rep > 0) Object.entries({ pre, dec, preCpu, decCpu }).forEach(([k, v]) => res[r.label][k].push(v));
  }
}
const med = (x) => [...x].sort((a, b) => a - b)[x.length >> 1];
const geo = (k) => Math.exp(res.B[k].reduce((s, v, i) => s + Math.log(v / res.A[k][i]), 0) / reps);
const list = (x) => x.map((v) => Math.round(v)).join(',');
console.log(JSON.stringify({
  format: values.format, threads, reps,
  prefill: { A: list(res.A.pre), B: list(res.B.pre), ratioBA: +geo('pre').toFixed(3) },
  decode: { A: list(res.A.dec), B: list(res.B.dec), ratioBA: +geo('dec').toFixed(3) },
  // CPU ms per phase, medians; the ratio is A's CPU time over B's (> 1: B does less work).
  cpuMs: { prefill: [med(res.A.preCpu), med(res.B.preCpu)].map(Math.round), decode: [med(res.A.decCpu), med(res.B.decCpu)].map(Math.round), prefillRatioAB: +(1 / geo('preCpu')).toFixed(3), decodeRatioAB: +(1 / geo('decCpu')).toFixed(3) },
}));
for (const r of runs) await r.model.dispose();
