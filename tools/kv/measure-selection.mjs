// `npm run build`, then `HEADWISE_CACHE=... node tools/kv/measure-selection.mjs` (N=prompts, RUNS=names, FROM/TO: run prompts [FROM, TO) of the N only, for a long run in pieces). Issue 16 measurement: ref-llama-30m, 96 needle prompts at 1024 tokens (seed 2024, 11 depths), as test/kvSelect30m.test.ts.
// `longheads` is LongHeads per step (every row held: kvRatio ≈ 1, kvAttendedRatio ≈ the budget); `longheads-static` picks once and frees the rest.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const D = path.join(ROOT, 'dist');
const { Model } = await import(`${D}/runtime/model.js`);
const { computeKvHeadScores } = await import(`${D}/atlas/kvScores.js`);
const { loadHaystack } = await import(`${D}/eval/haystack.js`);
const { niahSamples } = await import(`${D}/eval/niahSet.js`);
const { runNiah } = await import(`${D}/eval/niahRun.js`);
const { cacheSetup } = await import(`${D}/kv/policy.js`);
const { mixScores } = await import(`${D}/kv/selection.js`);
const SAMPLES = Number(process.env.N ?? 96);
const BUDGET = 0.295;
const model = await Model.load(process.env.MODEL ?? path.join(ROOT, '..', 'shared', 'models', 'ref-llama-30m'), { threads: 1 });
const all = niahSamples(model.tokenizer, loadHaystack(), { contextTokens: [1024], depths: Array.from({ length: 11 }, (_, i) => i / 10), samples: SAMPLES, seed: 2024 });
const items = all.slice(Number(process.env.FROM ?? 0), Number(process.env.TO ?? all.length));
const names = (process.env.RUNS ?? 'headkv mix,snapkv,longheads,longheads-static,duo 25%,headkv retrieval,headkv harm,headkv mix w32,headkv harm w32,snapkv w32').split(',');
// The head scores only where a run needs them (duo, headkv).
let harm = null;
let retrieval = null;
if (names.some((n) => n.startsWith('duo') || n.startsWith('headkv'))) {
  const t0 = Date.now();
  harm = await computeKvHeadScores(model, 'streamingHarm', { samples: 8, seed: 99 });
  retrieval = await computeKvHeadScores(model, 'retrieval', { samples: 8, seed: 99 });
  console.log(JSON.stringify({ scoresSeconds: (Date.now() - t0) / 1000, harm, retrieval }));
}
const runs = {
  'headkv mix': { policy: 'headkv', budget: BUDGET, kvHeadScores: harm && mixScores(retrieval, harm) },
  snapkv: { policy: 'snapkv', budget: BUDGET },
  longheads: { policy: 'longheads', budget: BUDGET },
  'longheads-static': { policy: 'longheads-static', budget: BUDGET },
  'duo 25%': { policy: 'duo', fullHeads: 0.25, kvHeadScores: harm },
  'headkv retrieval': { policy: 'headkv', budget: BUDGET, kvHeadScores: retrieval },
  'headkv harm': { policy: 'headkv', budget: BUDGET, kvHeadScores: harm },
  'headkv mix w32': { policy: 'headkv', budget: BUDGET, observe: 32, kvHeadScores: harm && mixScores(retrieval, harm) },
  'headkv harm w32': { policy: 'headkv', budget: BUDGET, observe: 32, kvHeadScores: harm },
  'snapkv w32': { policy: 'snapkv', budget: BUDGET, observe: 32 },
};
for (const name of names) {
  const t = Date.now();
  const r = await runNiah(model, items, { cache: cacheSetup(model.config, runs[name]) });
  console.log(JSON.stringify({ name, samples: r.samples, accuracy: r.accuracy, correct: Math.round(r.accuracy * r.samples), kvBytes: r.kvBytes, kvBytesFull: r.kvBytesFull, kvRatio: r.kvBytes / r.kvBytesFull, kvAttendedRatio: r.kvAttendedRatio ?? null, from: Number(process.env.FROM ?? 0), byDepth: r.grid.byDepth, correctIds: r.outcomes.flatMap((o, i) => (o.correct ? [i] : [])), seconds: (Date.now() - t) / 1000 }));
}
await model.dispose();
