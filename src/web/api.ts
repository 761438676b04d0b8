/**
 * The JSON shapes of the web API (`API.md` documents the routes), shared by the server and the
 * browser app so the two cannot drift apart. Types and limits only: nothing here touches Node or the
 * DOM, so both sides import it.
 */

/** Limits the server enforces; the app reads them from `GET /api/model` to size its inputs. */
export interface ApiLimits {
  /** Largest request body, bytes (more → 413). */
  maxBodyBytes: number;
  /** Longest prompt, characters (checked before tokenizing). */
  maxPromptChars: number;
  /** Longest prompt for `/api/pattern`, tokens (the matrix is tokens² numbers). */
  maxPatternTokens: number;
  /** Most new tokens one `/api/generate` call may ask for. */
  maxNewTokens: number;
  /** Most next-token candidates `/api/generate` reports. */
  maxTopK: number;
}

export interface ModelInfo {
  name: string;
  family: string;
  layers: number;
  heads: number;
  kvHeads: number;
  headDim: number;
  vocab: number;
  /** Longest context, tokens. */
  contextTokens: number;
  limits: ApiLimits;
  /** Long jobs this server can run (`POST /api/atlas/jobs`, `POST /api/niah/jobs`). */
  jobs: { atlas: boolean; niah: boolean };
}

/** Error body of every 4xx/5xx answer; `error` names the offending field where there is one. */
export interface ApiError {
  error: string;
}

/** `GET /api/atlas`: the atlas JSON (see `src/atlas/file.ts`) as the server holds it. */
export interface AtlasView {
  format: string;
  version: number;
  createdAt?: string;
  model: { name: string; layers: number; heads: number; kvHeads: number };
  settings?: Record<string, unknown>;
  metrics: Record<string, number[][]>;
  metricInfo?: Record<string, { per?: 'head' | 'kvHead'; samples?: number; description?: string }>;
  /** Where the atlas came from: a file given at startup, or a job run in this server. */
  source: 'file' | 'job';
}

export interface PatternRequest {
  prompt: string;
  layer: number;
  head: number;
}

export interface PatternResponse {
  layer: number;
  head: number;
  /** Token surface strings, BOS included, one per position. */
  tokens: string[];
  /** Token ids, one per position. */
  ids: number[];
  /** attention[query][key], post-softmax, causal (zeros above the diagonal), rounded to 1e-5. */
  attention: number[][];
}

export interface GenerateRequest {
  prompt: string;
  /** 1..limits.maxNewTokens, default 16. */
  maxNewTokens?: number;
  /** How many next-token candidates to report, 1..limits.maxTopK, default 10. */
  topK?: number;
  /** An intervention spec (`src/interventions/spec.ts`), or null / absent for none. */
  interventions?: unknown;
}

export interface TokenProb {
  id: number;
  token: string;
  prob: number;
}

export interface GenerateRun {
  text: string;
  tokens: number[];
  /** Probabilities of the most likely next tokens right after the prompt. */
  topK: TokenProb[];
  stoppedBy: 'eos' | 'length' | 'context';
}

/** A next-token candidate with its probability in both runs (after = null when there are no interventions). */
export interface NextTokenChange {
  id: number;
  token: string;
  before: number;
  after: number | null;
}

export interface GenerateResponse {
  promptTokens: number;
  /** The last few prompt tokens as text, to show what the answers continue. */
  promptTail: string;
  /** The union of both runs' top-k candidates, with each one's probability in both runs, most likely first. */
  nextTokens: NextTokenChange[];
  /** The run without interventions. */
  baseline: GenerateRun;
  /** The run with the interventions; null when none were given. */
  intervened: GenerateRun | null;
  /** One line per intervention, as `describe` writes it; empty when none. */
  interventions: string[];
}

export interface ExamplePrompt {
  name: string;
  prompt: string;
  /** What a model that gets it right says next, when known. */
  answer?: string;
  /** A suggested intervention spec for this prompt (e.g. ablate the top retrieval heads). */
  interventions?: unknown;
}

export type JobKind = 'atlas' | 'niah';
export type JobState = 'queued' | 'running' | 'done' | 'failed';

export interface JobStatus {
  id: string;
  kind: JobKind;
  state: JobState;
  /** 0..1 */
  progress: number;
  /** What the job is doing now, one line. */
  message: string;
  startedAt: string;
  finishedAt?: string;
  error?: string;
}

/** Needle-in-a-haystack results: the accuracy grid and the accuracy-vs-KV-bytes curves. */
export interface NiahView {
  /** Accuracy per (context length, depth) with full attention. */
  grid: {
    contextTokens: number[];
    depths: number[];
    /** accuracy[i][j] for contextTokens[i], depths[j], 0..1; null for an empty cell. */
    accuracy: (number | null)[][];
    samplesPerCell: number;
    /** Prompts behind each cell, where they differ from cell to cell (the atlas's own grid). */
    counts?: number[][];
  } | null;
  /** One point per (policy, setting): mean accuracy against the KV bytes it kept. */
  kv: {
    policy: string;
    /** e.g. "window 32" or "25% full heads". */
    setting: string;
    kvBytes: number;
    kvBytesFull: number;
    accuracy: number;
    contextTokens: number;
    /** Prompts behind `accuracy` (absent in results from before it was recorded). */
    samples?: number;
  }[] | null;
  /** `job`: the sweep run in this server; `atlas`: the grid of the atlas's own needle prompts (no KV curve). */
  source: 'file' | 'job' | 'atlas';
  settings?: Record<string, unknown>;
}

export interface JobRequest {
  /** Quick (small sample counts, seconds on the bundled model) or full. Default true. */
  quick?: boolean;
}

/** `GET /api/status`: what the server holds now, so the app asks only for what exists (no 404s). */
export interface ServerStatus {
  atlas: boolean;
  /** Needle results (a sweep, a file, or the atlas's own grid). */
  niah: boolean;
  /** Research results loaded with `serve --results FILE`. */
  results: number;
}

/** Half-open token ranges of a binned pattern request: `[start, end)`. */
export type TokenRange = [number, number];

/** `POST /api/pattern/bins`: one head over the prompt, binned; any length up to the model's context. */
export interface BinnedPatternRequest {
  prompt: string;
  layer: number;
  head: number;
  /** Most bins per axis, 1..512 (default 128). Never more than the window's tokens. */
  bins?: number;
  /** Query rows shown (default: the whole prompt). */
  queries?: TokenRange;
  /** Key columns shown (default: the whole prompt). */
  keys?: TokenRange;
  /** A position whose exact attention row over every key is returned (default: the last). */
  query?: number;
  /** An intervention spec run on the same pass (the "with" side of a comparison), or null. */
  interventions?: unknown;
}

export interface BinnedPattern {
  layer: number;
  head: number;
  /** Token surface strings of the whole prompt, BOS included. */
  tokens: string[];
  /** `queryEdges.length − 1` row bins; bin i holds queries [queryEdges[i], queryEdges[i+1]). */
  queryEdges: number[];
  keyEdges: number[];
  /**
   * cells[rowBin][columnBin]: the attention share the bin's queries give the bin's keys (their weights
   * summed over the keys, averaged over the queries), 0..1; null where every key is after every query.
   */
  cells: (number | null)[][];
  /** The exact attention row of `query` over all keys (zeros after it). */
  query: number;
  row: number[];
  /** Descriptions of the interventions applied, empty when none. */
  interventions: string[];
}

/** `POST /api/patterns`: every head of every layer, binned small, for the model view. */
export interface ModelPatternsRequest {
  prompt: string;
  /** Bins per axis, 1..64 (default 24). */
  bins?: number;
}

export interface ModelPatterns {
  tokens: string[];
  edges: number[];
  /** cells[layer][head][rowBin][columnBin], as in `BinnedPattern.cells`. */
  cells: (number | null)[][][][];
}
