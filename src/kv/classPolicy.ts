/**
 * The rules of the cache classes the KV policies use (`policy.ts`): what a head of the class keeps,
 * what a query sees, and how many rows a head holds. The host cache (`runtime/kvCache.ts`), the
 * device cache (`runtime/deviceKv.ts`) and the attention masks (`runtime/forward.ts`) all ask these
 * objects, through the `ClassPolicy` interface the runtime declares (the runtime sits below `kv/`, so
 * it names the contract). Full history (`FULL_HISTORY`) and the window rule (`WindowClass`) are the
 * runtime's own — it builds window classes itself for a model's sliding windows
 * (`runtime/modelWindow.ts`) — and are re-exported here; the selection rule is this file's.
 *
 * - `window` (StreamingLLM): the `sink` first tokens and the `window` most recent; with `compensate`
 *   (RazorAttention) one more row, the mean of what was evicted; with a `limit` (a model's sliding
 *   window) nothing `limit` or more positions back (`runtime/windowPolicy.ts`).
 * - `select` (SnapKV, HeadKV, LongHeads): keeps every token until a selection (`selection.ts`) picks
 *   each head's rows (`KvCache.keepRows`); a query sees every row held. Not combined with model
 *   windows: `policy.ts` refuses selection policies on models with window layers.
 *
 * Errors name the option (`sink`, `window`), not a CLI flag: the CLI maps them.
 */
import { FULL_HISTORY, type ClassPolicy } from '../runtime/kvCache.js';
import { WindowClass } from '../runtime/windowPolicy.js';

export { FULL_HISTORY, WindowClass };

export class SelectClass implements ClassPolicy {
  readonly kind = 'select' as const;
  readonly maxRows = Infinity;
  readonly compensate = false;
  readonly limit = Infinity;

  keeps(): boolean {
    return true;
  }

  sees(t: number, s: number): boolean {
    return s <= t;
  }
}

export function windowClass(sink: number, window: number, compensate = false): WindowClass {
  return new WindowClass(sink, window, compensate);
}
