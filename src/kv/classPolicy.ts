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
 * - `step` (LongHeads per step, `ChunkStepClass`): keeps every token; at each one-token step each KV
 *   head attends to whole chunks of `chunk` tokens — those holding the `sink` first tokens and the
 *   last `window`, then the chunks whose representative (mean key, computed once a chunk is complete,
 *   prompt or decoded) scores highest against the previous token's queries (`selection.ts`
 *   `repScores`), `budget` of the context in all (the step's own token included). The rows come back
 *   through `stepRows`; the gathering is the runtime's (`runtime/stepAttention.ts`). Prefill calls
 *   attend to every row. The row rule is `longheadsRows`, the one LongHeads keep rule
 *   (`longheads-static` applies it once at the end of the prompt).
 *
 * Errors name the option (`sink`, `window`), not a CLI flag: the CLI maps them.
 */
import { FULL_HISTORY, type ClassPolicy, type KvCache } from '../runtime/kvCache.js';
import { WindowClass } from '../runtime/windowPolicy.js';
import { chunkMeans, longheadsRows, repScores } from './selection.js';

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

/** A group's chunk representatives, per KV head [chunks, headDim], for the `done` complete chunks. */
interface ChunkReps {
  done: number;
  reps: Float32Array[];
}

export class ChunkStepClass implements ClassPolicy {
  readonly kind = 'step' as const;
  readonly maxRows = Infinity;
  readonly compensate = false;
  readonly limit = Infinity;

  constructor(readonly o: { sink: number; window: number; chunk: number; budget: number }) {}

  keeps(): boolean {
    return true;
  }

  sees(t: number, s: number): boolean {
    return s <= t;
  }

  /** Past rows a step attends to when `n` are held: the budget's share of n + 1, the step's own token counted. */
  attended(n: number): number {
    return Math.floor(this.o.budget * (n + 1)) - 1;
  }

  stepRows(cache: KvCache, l: number, g: number, query: Float32Array): number[][] | null {
    const buf = cache.buffers[l][g];
    const n = buf.length;
    const keep = this.attended(n);
    if (keep >= n) return null;
    const { chunk, sink, window } = this.o;
    const D = buf.headDim;
    const reps = this.representatives(cache, l, g);
    const rep = query.length / D / buf.heads;
    return Array.from({ length: buf.heads }, (_, j) => {
      const scores = repScores(query.subarray(j * rep * D, (j + 1) * rep * D), D, reps.reps[j], reps.done);
      // The incomplete last chunk has no representative yet: it is one of the always-kept last chunks.
      const all = new Float64Array(Math.ceil(n / chunk));
      all.set(scores);
      return longheadsRows(all, n, chunk, sink, window, keep);
    });
  }

  /** The group's representatives, brought up to the chunks completed since the last step. */
  private representatives(cache: KvCache, l: number, g: number): ChunkReps {
    const key = `${l}:${g}`;
    const buf = cache.buffers[l][g];
    const D = buf.headDim;
    const complete = Math.floor(buf.length / this.o.chunk);
    let state = cache.stepState.get(key) as ChunkReps | undefined;
    if (!state) {
      state = { done: 0, reps: Array.from({ length: buf.heads }, () => new Float32Array(0)) };
      cache.stepState.set(key, state);
    }
    if (complete > state.done) {
      for (let j = 0; j < buf.heads; j++) {
        if (state.reps[j].length < complete * D) {
          const grown = new Float32Array(Math.max(complete, Math.ceil(state.done * 1.5)) * D);
          grown.set(state.reps[j].subarray(0, state.done * D));
          state.reps[j] = grown;
        }
        chunkMeans(buf.headKeys(j), D, this.o.chunk, state.done, complete, state.reps[j]);
      }
      state.done = complete;
    }
    return state;
  }
}

export function windowClass(sink: number, window: number, compensate = false): WindowClass {
  return new WindowClass(sink, window, compensate);
}
