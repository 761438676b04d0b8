#!/usr/bin/env node
// Agreement of two atlas files of one model (e.g. webgpu f16 vs the CPU EP in fp32): per metric the
// largest |Δ| over heads, the top-k retrieval heads of each and whether they are the same heads in the
// same order, and needle accuracy. One JSON object on stdout.
// Usage: node tools/device/atlas-agree.mjs REFERENCE.json OTHER.json [k=4]
import fs from 'node:fs';

const [refFile, otherFile, kArg] = process.argv.slice(2);
if (!refFile || !otherFile) {
  console.error('usage: node tools/device/atlas-agree.mjs REFERENCE.json OTHER.json [k]');
  process.exit(2);
}
const k = Number(kArg ?? 4);
const read = (f) => JSON.parse(fs.readFileSync(f, 'utf8'));
const ref = read(refFile);
const other = read(otherFile);
const maxAbsDiff = {};
for (const [name, table] of Object.entries(ref.metrics)) {
  const b = other.metrics[name];
  if (!b) continue;
  let worst = 0;
  table.forEach((row, l) => row.forEach((v, h) => {
    const w = b[l]?.[h];
    if (Number.isFinite(v) && Number.isFinite(w)) worst = Math.max(worst, Math.abs(v - w));
    else if (Number.isFinite(v) !== Number.isFinite(w)) worst = Infinity;
  }));
  maxAbsDiff[name] = worst;
}
const top = (a) => (a.topHeads?.retrieval ?? []).slice(0, k).map((t) => `${t.layer}.${t.head}`);
const accuracy = (a) => a.niah?.accuracy ?? null;
console.log(JSON.stringify({
  reference: { file: refFile, weights: ref.model?.weights, device: ref.settings?.device ?? null, accuracy: accuracy(ref) },
  other: { file: otherFile, weights: other.model?.weights, device: other.settings?.device ?? null, accuracy: accuracy(other) },
  k,
  topRetrieval: { reference: top(ref), other: top(other), sameOrder: top(ref).join() === top(other).join() },
  maxAbsDiff,
}, null, 1));
