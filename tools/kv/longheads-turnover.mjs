// `npm run build`, then `HEADWISE_CACHE=... node tools/kv/longheads-turnover.mjs` (TOKENS=prompt length, default 1900):
// LongHeads per step on ref-llama-30m over the haystack text, 32 decode steps — the share of each KV head's attended rows
// that were not attended at the step before (what `runtime/stepAttention.ts` copies per step). README's 26%.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const D = path.join(ROOT, 'dist');
const { Model } = await import(`${D}/runtime/model.js`);
const { ChunkStepClass } = await import(`${D}/kv/classPolicy.js`);
const { uniformLayout } = await import(`${D}/graph/layout.js`);
const { generate } = await import(`${D}/runtime/generate.js`);
const { loadHaystack } = await import(`${D}/eval/haystack.js`);
const model = await Model.load(process.env.MODEL ?? path.join(ROOT, '..', 'shared', 'models', 'ref-llama-30m'), { threads: 1 });
const ids = model.tokenizer.encode(loadHaystack()).slice(0, Number(process.env.TOKENS ?? 1900));
/** The chunk rule, recording each call's rows. */
class Recording extends ChunkStepClass {
  picks = [];
  stepRows(cache, l, g, query) {
    const rows = super.stepRows(cache, l, g, query);
    this.picks.push({ l, rows });
    return rows;
  }
}
const policy = new Recording({ sink: 4, window: 64, chunk: 16, budget: 0.3 });
const setup = { layout: uniformLayout(model.config.numLayers, model.config.numKvHeads, 'chunks'), policies: new Map([['chunks', policy]]) };
const g = await generate(model, ids, { cache: setup, maxNewTokens: 33, stopAtEos: false });
let changed = 0;
let total = 0;
for (let l = 0; l < model.config.numLayers; l++) {
  const steps = policy.picks.filter((p) => p.l === l && p.rows);
  for (let s = 1; s < steps.length; s++) for (let j = 0; j < model.config.numKvHeads; j++) {
    const before = new Set(steps[s - 1].rows[j]);
    total += steps[s].rows[j].length;
    changed += steps[s].rows[j].filter((r) => !before.has(r)).length;
  }
}
console.log(JSON.stringify({ promptTokens: ids.length, steps: g.tokens.length, rowsAttendedPerHead: policy.picks.find((p) => p.rows).rows[0].length, changedShare: changed / total }));
await model.dispose();
