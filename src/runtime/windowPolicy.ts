/**
 * The window rule as a cache-class policy (`ClassPolicy`, `kvCache.ts`): a head keeps the `sink`
 * first tokens and the `window` most recent (StreamingLLM), with `compensate` one more row, the mean
 * of what it evicted (RazorAttention), and with a `limit` (a model's own sliding window,
 * `modelWindow.ts`) nothing `limit` or more positions back, sinks included. It lives in the runtime,
 * not in `kv/`, because the runtime builds window classes itself: a model's sliding window turns full
 * history into a window of sink 0 (`withinWindow`). `kv/classPolicy.ts` re-exports it.
 *
 * Errors name the option (`sink`, `window`), not a CLI flag: the CLI maps them.
 */
import { HeadwiseError } from '../errors.js';
import type { ClassPolicy } from './kvCache.js';

export class WindowClass implements ClassPolicy {
  readonly kind = 'window' as const;
  readonly compensate: boolean;
  /** Keys `limit` or more positions back are neither kept nor seen, sinks included (Infinity: no bound). */
  readonly limit: number;

  constructor(
    readonly sink: number,
    readonly window: number,
    compensate = false,
    limit = Infinity,
  ) {
    if (!Number.isInteger(sink) || sink < 0) throw new HeadwiseError(`sink must be a non-negative integer (got ${sink})`);
    if (!Number.isInteger(window) || window < 1) throw new HeadwiseError(`window must be a positive integer (got ${window})`);
    if (!(limit === Infinity || (Number.isInteger(limit) && limit >= 1))) throw new HeadwiseError(`limit must be a positive integer (got ${limit})`);
    this.compensate = compensate;
    // Without sinks the window itself is the farthest a query reaches.
    this.limit = sink === 0 ? Math.min(limit, window) : limit;
  }

  get maxRows(): number {
    return Math.min(this.sink + this.window, this.limit) + (this.compensate ? 1 : 0);
  }

  keeps(p: number, last: number): boolean {
    return last - p < this.limit && (p < this.sink || last - p < this.window);
  }

  sees(t: number, s: number): boolean {
    return s <= t && t - s < this.limit && (s < this.sink || t - s < this.window);
  }

  /**
   * This rule restricted to keys within `window` of the query (a model's sliding window): a plain
   * shorter window when the sinks add nothing (no sinks, or the recent window already covers the
   * model's), else the same rule with a `limit`.
   */
  within(window: number): WindowClass {
    if (this.sink === 0 || this.window >= window) return new WindowClass(0, Math.min(this.window, window), this.compensate);
    return new WindowClass(this.sink, this.window, this.compensate, Math.min(this.limit, window));
  }
}
