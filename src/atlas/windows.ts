/**
 * The atlas on models with sliding-window layers. A window layer's cache holds only its window, so
 * its captured patterns cover those keys; `densePatterns` spreads them over positions 0..K−1 (the
 * evicted keys get probability 0, which is what the model gives them), so every metric reads one
 * layout. `windowCaveats` says in `metricInfo` which metrics a window shorter than the prompt makes
 * ill-defined on which layers, instead of letting a 0 read as "this head does not retrieve".
 */
import type { ModelConfig } from '../hf/config.js';
import type { GroupPattern } from '../runtime/forward.js';
import type { MetricInfo } from './file.js';

/** Patterns whose keys are ascending positions but not 0..K−1, widened to dense keys 0..last. */
export function densePatterns(patterns: GroupPattern[]): GroupPattern[] {
  return patterns.map((p) => {
    const k = p.keyPositions;
    if (!k.length || (k[0] === 0 && k[k.length - 1] === k.length - 1)) return p;
    const K = k[k.length - 1] + 1;
    const R = p.queryPositions.length;
    const from = k.length;
    const data = new Float32Array(p.heads.length * R * K);
    for (let row = 0; row < p.heads.length * R; row++) {
      for (let j = 0; j < from; j++) if (k[j] >= 0) data[row * K + k[j]] = p.data[row * from + j];
    }
    return { ...p, keyPositions: Int32Array.from({ length: K }, (_, i) => i), data };
  });
}

/** Adds a caveat to the metrics that layers with a window shorter than `contextTokens` cannot measure fully. */
export function windowCaveats(metricInfo: Record<string, MetricInfo>, config: ModelConfig, contextTokens: number): void {
  const short = config.layerWindows.flatMap((w, l) => (w !== null && w < contextTokens ? [`${l}`] : []));
  if (!short.length) return;
  const windows = [...new Set(config.layerWindows.filter((w): w is number => w !== null && w < contextTokens))].join(' / ');
  const layers = `layer${short.length > 1 ? 's' : ''} ${short.join(', ')} (sliding window ${windows} tokens, prompts ${contextTokens})`;
  const caveats: Record<string, string> = {
    retrieval: `${layers} cannot attend to a needle further back than the window: their scores count only needles within it, so a low score there is not evidence that a head does not retrieve`,
    reach: `${layers}: reach is bounded by the window`,
    streamingHarm: `${layers} already attend within their window; restricting them further measures only the sink + window inside it`,
  };
  for (const [name, caveat] of Object.entries(caveats)) if (metricInfo[name]) metricInfo[name] = { ...metricInfo[name], caveat };
}
