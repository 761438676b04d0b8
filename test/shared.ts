/**
 * Where the shared reference material lives (../shared beside the repo: ref-llama-30m, the reference
 * head analysis). Tests that need it skip with a visible message when it is absent.
 */
import fs from 'node:fs';
import path from 'node:path';

export const SHARED = path.resolve(process.env.HEADWISE_SHARED ?? path.join(process.cwd(), '..', 'shared'));
export const MODEL_30M = path.join(SHARED, 'models', 'ref-llama-30m');
export const REFERENCE_30M_1024 = path.join(SHARED, 'reference', 'ref-llama-30m.heads-ctx1024.json');
export const HAVE_30M = fs.existsSync(path.join(MODEL_30M, 'model.safetensors'));

if (!HAVE_30M) {
  console.warn(`[headwise tests] SKIPPING ref-llama-30m tests: ${MODEL_30M} not found (needs ../shared beside the repo)`);
}
