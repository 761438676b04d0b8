// Writes examples/passkey-pairs.jsonl: 32 clean/corrupt pass-key pairs (256 tokens, depths 0..1) for
// `headwise importance` and `headwise patch`, from the repo's needle generator (src/eval/passKeyPair.ts)
// and the bundled tokenizer. Run `npm run examples` (builds first); the output is deterministic.
import fs from 'node:fs';
import { HfTokenizer } from '../dist/hf/tokenizer.js';
import { loadHaystack } from '../dist/eval/haystack.js';
import { passKeyPair } from '../dist/eval/passKeyPair.js';

const tokenizer = HfTokenizer.load(new URL('../models/ref-llama-7m', import.meta.url).pathname);
const haystack = loadHaystack();
const lines = Array.from({ length: 32 }, (_, i) => JSON.stringify(passKeyPair(tokenizer, haystack, { contextTokens: 256, depth: (i % 8) / 7, seed: 1000 + i })));
const out = new URL('./passkey-pairs.jsonl', import.meta.url).pathname;
fs.writeFileSync(out + '.tmp', lines.join('\n') + '\n');
fs.renameSync(out + '.tmp', out);
console.log(`${out}: ${lines.length} pairs`);
