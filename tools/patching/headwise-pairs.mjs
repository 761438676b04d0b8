// Writes the token ids of the first N pass-key pairs (examples/passkey-pairs.jsonl) and headwise's
// activation-patching results on them (hook_z at the last position; 6:6+6:0 jointly, two random heads
// jointly, each alone) for the PyTorch reference (torch_patch_reference.py) to reproduce.
// node tools/patching/headwise-pairs.mjs MODEL_DIR N OUT.json   (after npm run build)
import fs from 'node:fs';
import { Model } from '../../dist/runtime/model.js';
import { activationPatching } from '../../dist/patching/patch.js';
import { promptTokens, answerTokens } from '../../dist/patching/answerTokens.js';

const [dir, n, out] = process.argv.slice(2);
const pairs = fs.readFileSync('examples/passkey-pairs.jsonl', 'utf8').trim().split('\n').map((l) => JSON.parse(l)).slice(0, Number(n));
const model = await Model.load(dir, { threads: 2 });
const sets = { top2: [[6, 6], [6, 0]], random2: [[3, 1], [1, 4]], 'L6H6': [[6, 6]], 'L6H0': [[6, 0]] };
const result = { model: dir, positions: 'last', metric: 'logit-diff (first answer token − first wrong token, last position)', pairs: [] };
for (const p of pairs) {
  const row = {
    clean: promptTokens(model, p.clean, 'clean'), corrupt: promptTokens(model, p.corrupt, 'corrupt'),
    answer: answerTokens(model, p.answer, 'answer')[0], wrong: answerTokens(model, p.wrong, 'wrong')[0], headwise: {},
  };
  for (const [name, heads] of Object.entries(sets)) {
    const r = await activationPatching(model, { ...p, mode: 'joint', positions: 'last', heads: heads.map(([layer, head]) => ({ layer, head })) });
    row.headwise[name] = { heads, restored: r.cells[0].restored, clean: r.cleanValue, corrupt: r.corruptValue };
  }
  result.pairs.push(row);
  console.error(`pair ${result.pairs.length}: top2 ${row.headwise.top2.restored.toFixed(4)} random2 ${row.headwise.random2.restored.toFixed(4)}`);
}
fs.writeFileSync(out, JSON.stringify(result));
await model.dispose();
