/**
 * Attention patterns of long prompts, aggregated into bins so that an 8K-token prompt is drawn as at
 * most bins × bins cells instead of 64M. A window of query rows × key columns (the whole prompt, or a
 * zoomed region) is cut into equal ranges of whole tokens; a cell holds the attention *share* the
 * queries of its row bin give to the keys of its column bin: the sum of their weights over the bin's
 * keys, averaged over the bin's queries. Rows of the binned matrix therefore still sum to 1 over the
 * full key range, the scale stays the probability's [0, 1], and where a window is no wider than the
 * bin count every cell is exactly one query × one key. Cells wholly after their queries (causal) are
 * null. Pure: captured rows in, numbers out (`patterns.ts` runs the model).
 */

/** Half-open token ranges [start, end) of the rows and columns shown. */
export interface PatternWindow {
  queryStart: number;
  queryEnd: number;
  keyStart: number;
  keyEnd: number;
}

/** `bins + 1` integer edges cutting [start, end) into `min(bins, end − start)` near-equal ranges. */
export function binEdges(start: number, end: number, bins: number): number[] {
  const n = Math.max(1, Math.min(bins, end - start));
  return Array.from({ length: n + 1 }, (_, i) => start + Math.round((i * (end - start)) / n));
}

/** Bin index of each position in [start, end) for the given edges. */
function binIndex(edges: number[]): Int32Array {
  const start = edges[0];
  const out = new Int32Array(edges[edges.length - 1] - start);
  for (let b = 0; b + 1 < edges.length; b++) out.fill(b, edges[b] - start, edges[b + 1] - start);
  return out;
}

/** Accumulates captured attention rows of one head into the cells of a window. */
export class PatternBinner {
  readonly queryEdges: number[];
  readonly keyEdges: number[];
  private readonly qBin: Int32Array;
  private readonly kBin: Int32Array;
  private readonly sums: Float64Array;
  /** Exact weights of one query row over every key, when asked for. */
  readonly row: Float64Array | null;

  constructor(
    readonly window: PatternWindow,
    bins: number,
    /** Position whose full attention row is kept (for the prompt panel), or -1. */
    readonly rowQuery = -1,
    promptTokens = window.keyEnd,
  ) {
    this.queryEdges = binEdges(window.queryStart, window.queryEnd, bins);
    this.keyEdges = binEdges(window.keyStart, window.keyEnd, bins);
    this.qBin = binIndex(this.queryEdges);
    this.kBin = binIndex(this.keyEdges);
    this.sums = new Float64Array((this.queryEdges.length - 1) * (this.keyEdges.length - 1));
    this.row = rowQuery >= 0 ? new Float64Array(promptTokens) : null;
  }

  /** Whether the captured rows must include absolute position `q`. */
  wants(q: number): boolean {
    return (q >= this.window.queryStart && q < this.window.queryEnd) || q === this.rowQuery;
  }

  /**
   * Adds rows of a capture laid out [heads, rows, keys]: `head` is the index along the first axis,
   * `queryPositions[r]` and `keyPositions[k]` the absolute positions of row r and column k.
   */
  add(data: Float32Array, head: number, queryPositions: ArrayLike<number>, keyPositions: ArrayLike<number>): void {
    const R = queryPositions.length;
    const K = keyPositions.length;
    const w = this.window;
    const kb = this.keyEdges.length - 1;
    for (let r = 0; r < R; r++) {
      const q = queryPositions[r];
      const base = (head * R + r) * K;
      if (q === this.rowQuery && this.row) for (let k = 0; k < K; k++) this.row[keyPositions[k]] = data[base + k];
      if (q < w.queryStart || q >= w.queryEnd) continue;
      const cellRow = this.qBin[q - w.queryStart] * kb;
      for (let k = 0; k < K; k++) {
        const p = keyPositions[k];
        if (p < w.keyStart || p >= w.keyEnd) continue;
        this.sums[cellRow + this.kBin[p - w.keyStart]] += data[base + k];
      }
    }
  }

  /** cells[queryBin][keyBin]: mean over the bin's queries of their summed weight on the bin's keys; null after every query of the bin. */
  cells(digits = 5): (number | null)[][] {
    const kb = this.keyEdges.length - 1;
    const scale = 10 ** digits;
    return Array.from({ length: this.queryEdges.length - 1 }, (_, i) => {
      const rows = this.queryEdges[i + 1] - this.queryEdges[i];
      const lastQuery = this.queryEdges[i + 1] - 1;
      return Array.from({ length: kb }, (_, j) => (this.keyEdges[j] > lastQuery ? null : Math.round((this.sums[i * kb + j] / rows) * scale) / scale));
    });
  }
}
