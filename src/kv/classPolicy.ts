/**
 * The rules of the cache classes, in one place: what a head of the class keeps, what a query sees,
 * and how many rows a head holds. The host cache (`runtime/kvCache.ts`), the device cache
 * (`runtime/deviceKv.ts`) and the attention masks (`runtime/forward.ts`) all ask these objects, through
 * the `ClassPolicy` interface the runtime declares (the runtime sits below `kv/`, so it names the
 * contract and this file fills it in). Full history is the runtime's own `FULL_HISTORY`.
 *
 * - `window` (StreamingLLM): the `sink` first tokens and the `window` most recent; with `compensate`
 *   (RazorAttention) one more row, the mean of what was evicted.
 * - `select` (SnapKV, HeadKV, LongHeads): keeps every token until a selection (`selection.ts`) picks
 *   each head's rows (`KvCache.keepRows`); a query sees every row held.
 *
 * Errors name the option (`sink`, `window`), not a CLI flag: the CLI maps them.
 */
import { HeadwiseError } from '../errors.js';
import { FULL_HISTORY, type ClassPolicy } from '../runtime/kvCache.js';

export { FULL_HISTORY };

export class WindowClass implements ClassPolicy {
  readonly kind = 'window' as const;
  readonly compensate: boolean;

  constructor(
    readonly sink: number,
    readonly window: number,
    compensate = false,
  ) {
    if (!Number.isInteger(sink) || sink < 0) throw new HeadwiseError(`sink must be a non-negative integer (got ${sink})`);
    if (!Number.isInteger(window) || window < 1) throw new HeadwiseError(`window must be a positive integer (got ${window})`);
    this.compensate = compensate;
  }

  get maxRows(): number {
    return this.sink + this.window + (this.compensate ? 1 : 0);
  }

  keeps(p: number, last: number): boolean {
    return p < this.sink || last - p < this.window;
  }

  sees(t: number, s: number): boolean {
    return s <= t && (s < this.sink || t - s < this.window);
  }
}

export class SelectClass implements ClassPolicy {
  readonly kind = 'select' as const;
  readonly maxRows = Infinity;
  readonly compensate = false;

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
