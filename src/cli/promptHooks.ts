/**
 * The intervention flags (`interventionFlags.ts`) as a per-prompt hook binder for the commands that run
 * many prompts (`niah`, `atlas`): each needle prompt gets the spec bound to its own tokens (PASTA spans,
 * ACT masks), the way `generate` binds it to its one prompt.
 */
import type { CacheSetup } from '../runtime/generate.js';
import type { HookBinder } from '../runtime/hookSet.js';
import type { Model } from '../runtime/model.js';
import { bindFlagSpec, resolveInterventionFlags, type InterventionFlags } from './interventionFlags.js';

/** The intervention flags as a per-prompt hook binder, or null when none is given. */
export function interventionBinder(model: Model, flags: InterventionFlags): { describe: string[]; bind: (cache: CacheSetup) => HookBinder } | null {
  const flagSpec = resolveInterventionFlags(model, flags);
  if (!flagSpec) return null;
  return {
    describe: flagSpec.describe.split('\n').filter(Boolean),
    bind: (cache) => async (ids, prompt) => {
      const b = await bindFlagSpec(model, flagSpec, ids, { prompt, cache });
      return { hookOptions: b.hookOptions, hooks: b.hooks };
    },
  };
}

