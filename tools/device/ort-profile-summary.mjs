#!/usr/bin/env node
// Summarises ONNX Runtime profiles (HEADWISE_ORT_PROFILE=PREFIX writes PREFIX_<date>.json per session):
// per file, the number of session runs, their mean duration, and per (provider, op) the node count per
// run and the mean host time per run (for the WebGPU EP a node's time is the host-side cost of recording
// its dispatch, not GPU time). Usage: node tools/device/ort-profile-summary.mjs FILE.json...
import fs from 'node:fs';

for (const file of process.argv.slice(2)) {
  const events = JSON.parse(fs.readFileSync(file, 'utf8'));
  const runs = events.filter((e) => e.cat === 'Session' && e.name === 'model_run');
  if (!runs.length) continue;
  // The typical runs (decode steps, when a profile holds a few prefills and many steps): within 2× of the median.
  const sorted = runs.map((r) => r.dur).sort((a, b) => a - b);
  const median = sorted[Math.floor(sorted.length / 2)];
  const typical = runs.filter((r) => r.dur <= 2 * median);
  const inTypical = (ts) => typical.some((r) => ts >= r.ts && ts <= r.ts + r.dur);
  console.log(`${file}: ${runs.length} runs, median ${(median / 1000).toFixed(3)} ms; ${typical.length} typical runs (≤ 2× median) summarised`);
  const byOp = new Map();
  for (const e of events) {
    if (e.cat !== 'Node' || !e.name.endsWith('_kernel_time') || !inTypical(e.ts)) continue;
    const key = `${e.args?.provider ?? '?'} ${e.args?.op_name ?? '?'}`;
    const s = byOp.get(key) ?? { n: 0, us: 0 };
    s.n++;
    s.us += e.dur;
    byOp.set(key, s);
  }
  const n = typical.length;
  const total = typical.reduce((a, r) => a + r.dur, 0);
  const nodeUs = [...byOp.values()].reduce((a, s) => a + s.us, 0);
  console.log(`  mean ${(total / n / 1000).toFixed(3)} ms/run, of which nodes ${(nodeUs / n / 1000).toFixed(3)} ms/run`);
  for (const [key, s] of [...byOp].sort((a, b) => b[1].us - a[1].us).slice(0, 25)) {
    console.log(`  ${key.padEnd(48)} ${(s.n / n).toFixed(1).padStart(7)} nodes/run ${(s.us / n / 1000).toFixed(3).padStart(9)} ms/run ${(s.us / s.n).toFixed(1).padStart(8)} us/node`);
  }
}
