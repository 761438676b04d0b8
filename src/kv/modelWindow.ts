/**
 * Model sliding windows (Mistral-style `sliding_window`, per-layer windows) applied to a cache setup:
 * the one hook `cacheSetup` passes every setup through. This version is the identity — the
 * architecture refactor that reads the config field replaces it (same name and signature).
 */
import type { ModelConfig } from '../hf/config.js';
import type { CacheSetup } from '../runtime/generate.js';

export function applyModelWindows(setup: CacheSetup, _config: ModelConfig): CacheSetup {
  return setup;
}
