/** A small hand-made atlas (2 layers × 4 heads over 2 KV heads) for the atlas/ unit tests. */
import type { AtlasFile } from './file.js';

export function testAtlas(): AtlasFile {
  return {
    format: 'headwise-atlas',
    version: 1,
    createdAt: '2026-01-01T00:00:00.000Z',
    model: { name: 'tiny', family: 'llama', layers: 2, heads: 4, kvHeads: 2, headDim: 8, vocab: 32 },
    settings: { contextTokens: 64, samples: 3, seed: 1, depths: [0, 1] },
    metrics: {
      retrieval: [
        [0.0, 0.05, 0.0, 0.2],
        [0.9, 0.1, NaN, 0.0],
      ],
      sink: [
        [0.3, 0.2, 0.1, 0.0],
        [0.5, 0.4, 0.6, 0.7],
      ],
      streamingHarm: [
        [0.02, 0.5],
        [2.0, 0.0],
      ],
    },
    metricInfo: {
      retrieval: { per: 'head', samples: 12, description: 'copy rate' },
      sink: { per: 'head', samples: 3, description: 'attention on BOS' },
      streamingHarm: { per: 'kvHead', samples: 3, description: 'KL when streaming' },
    },
    niah: { accuracy: 0.5, samples: 4, contextTokens: [64], depths: [0, 1], grid: [[1, 0]], counts: [[2, 2]] },
  };
}
