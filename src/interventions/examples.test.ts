/** Every example spec in `examples/` parses against the model it is written for. */
import fs from 'node:fs';
import { describe, expect, it } from 'vitest';
import { describe as describeSpec } from './compose.js';
import { parseInterventionSpec, type ModelShape } from './spec.js';

const REF_7M: ModelShape = { numLayers: 6, numHeads: 4, headDim: 64 };
const REF_30M: ModelShape = { numLayers: 8, numHeads: 8, headDim: 64 };
const dir = new URL('./examples/', import.meta.url);

describe('example specs', () => {
  const files = fs.readdirSync(dir).filter((f) => f.endsWith('.json'));
  it.each(files)('%s parses', (file) => {
    const spec = parseInterventionSpec(fs.readFileSync(new URL(file, dir), 'utf8'), file.includes('30m') ? REF_30M : REF_7M);
    expect(spec.interventions.length).toBeGreaterThan(0);
    expect(describeSpec(spec)).not.toContain('(no interventions)');
  });
});
