/** `headwise models`: the listing is built from the architecture files and names what each declares. */
import { describe, expect, it } from 'vitest';
import { FAMILIES } from '../hf/families.js';
import { modelTypes } from './models.js';

describe('headwise models', () => {
  it('lists every supported model type with what its architecture file declares', () => {
    const types = modelTypes();
    expect(types.map((t) => t.modelType)).toEqual([...FAMILIES]);
    expect(types.length).toBeGreaterThanOrEqual(18);
    const by = Object.fromEntries(types.map((t) => [t.modelType, t]));
    expect(by.gemma2.norms).toEqual(['attnNorm', 'postAttnNorm', 'mlpNorm', 'postMlpNorm']);
    expect(by.olmo2.norms).toEqual(['postAttnNorm', 'postMlpNorm']);
    expect(by.llama.norms).toEqual(['attnNorm', 'mlpNorm']);
    expect(by.phi.residual).toBe('parallel');
    expect(by.gpt2.positions).toBe('learned');
    expect(by.qwen3.qkNorm).toBe(true);
    expect(by.gemma2.reads).toContain('attn_logit_softcapping');
    for (const t of types) expect(t.summary.length).toBeGreaterThan(10);
  });
});
