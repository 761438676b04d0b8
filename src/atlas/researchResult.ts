/**
 * The file format of research results the web app draws — activation patching per head and per
 * head × position, direct logit attribution per head, and the logit lens per layer — so that whatever
 * computes them (the CLI's JSON output, a job) and the views agree on one typed shape. A file holds one
 * result or `{ "format": "headwise-results", "version": 1, "results": [ ... ] }`; each result is
 *
 * ```
 * { "kind": "patch-head",     "values": number[layer][head], ...common }
 * { "kind": "patch-head-pos", "values": number[layer][head][position], "tokens": string[position],
 *                             "positions": number[position] (optional: the prompt index of each column), ...common }
 * { "kind": "dla",            "values": number[layer][head], ...common }
 * { "kind": "head-importance", "values": number[layer][head], "ci": [lo, hi][layer][head] (null where none),
 *                             "scale": "diverging" | "log" (optional, default diverging), ...common }
 * { "kind": "logit-lens",     "tokens": string[position], "prob": number[layer][position],
 *                             "top": string[layer][position] (optional), ...common }
 * common: { "title"?: string, "metric"?: string, "unit"?: string, "model"?: { name, layers, heads },
 *           "prompts"?: { "clean": string, "corrupted"?: string }, "target"?: string, "n"?: number,
 *           "note"?: string }
 * ```
 *
 * `values` of patching are the effect of patching that head (e.g. the share of the clean−corrupted logit
 * difference restored; signed), of DLA the head's direct contribution to the target logit (signed,
 * logits); `prob` of the logit lens is the probability of `target` read off the residual stream after
 * each layer (row 0 = after layer 0), `top` the most likely token there; `values` of head importance
 * the mean change of a metric over prompts when the head is ablated, `ci` its 95% interval. Signed
 * values are drawn on a diverging scale around 0, probabilities on a fixed [0, 1] scale (`metricDisplay.ts`); null is a cell
 * not computed. Pure: parsing and checking only, with errors that name the field. The research CLI's
 * own JSON (`headwise patch|attribute|importance --json`) becomes these in `researchCliResults.ts`.
 */

export const RESULTS_FORMAT = 'headwise-results';
export const RESULTS_VERSION = 1;

export interface ResultCommon {
  title?: string;
  /** What a value is, in words (e.g. "logit difference restored"). */
  metric?: string;
  unit?: string;
  model?: { name?: string; layers: number; heads: number };
  prompts?: { clean: string; corrupted?: string };
  /** The token whose logit / probability is measured. */
  target?: string;
  /** Prompts averaged over. */
  n?: number;
  note?: string;
}

export interface PatchHeadResult extends ResultCommon {
  kind: 'patch-head';
  values: (number | null)[][];
}
export interface PatchHeadPosResult extends ResultCommon {
  kind: 'patch-head-pos';
  values: (number | null)[][][];
  tokens: string[];
  /** The prompt position of each column (default 0, 1, …). */
  positions?: number[];
}
export interface DlaResult extends ResultCommon {
  kind: 'dla';
  values: (number | null)[][];
}
export interface HeadImportanceResult extends ResultCommon {
  kind: 'head-importance';
  values: (number | null)[][];
  ci: ([number, number] | null)[][];
  /** How to colour: a signed change diverging around 0 (default), a KL on a log scale. */
  scale?: 'diverging' | 'log';
}
export interface LogitLensResult extends ResultCommon {
  kind: 'logit-lens';
  tokens: string[];
  prob: number[][];
  top?: string[][];
}

export type ResearchResult = PatchHeadResult | PatchHeadPosResult | DlaResult | HeadImportanceResult | LogitLensResult;
export const RESULT_KINDS = ['patch-head', 'patch-head-pos', 'dla', 'head-importance', 'logit-lens'] as const;

export class ResultFormatError extends Error {
  override readonly name = 'ResultFormatError';
}

const fail = (where: string, what: string): never => {
  throw new ResultFormatError(`${where}: ${what}`);
};

function numberTable(v: unknown, where: string, depth: number): void {
  if (!Array.isArray(v) || v.length === 0) fail(where, `must be a non-empty array${depth > 1 ? ' of arrays' : ' of numbers'}`);
  const arr = v as unknown[];
  arr.forEach((x, i) => {
    if (depth > 1) numberTable(x, `${where}[${i}]`, depth - 1);
    else if (x !== null && (typeof x !== 'number' || !Number.isFinite(x))) fail(`${where}[${i}]`, `must be a finite number or null (got ${JSON.stringify(x)})`);
  });
  if (depth > 1) {
    const w = (arr[0] as unknown[]).length;
    arr.forEach((x, i) => (x as unknown[]).length !== w && fail(`${where}[${i}]`, `has ${(x as unknown[]).length} entries, ${where}[0] has ${w}`));
  }
}

function stringList(v: unknown, where: string): void {
  if (!Array.isArray(v) || v.some((x) => typeof x !== 'string')) fail(where, 'must be an array of strings');
}

/** Checks one result; `where` prefixes error messages (e.g. "results[2]"). */
export function parseResult(v: unknown, where = 'result'): ResearchResult {
  if (!v || typeof v !== 'object' || Array.isArray(v)) return fail(where, 'must be an object');
  const r = v as Record<string, unknown>;
  if (!RESULT_KINDS.includes(r.kind as (typeof RESULT_KINDS)[number])) fail(`${where}.kind`, `must be one of ${RESULT_KINDS.join(', ')} (got ${JSON.stringify(r.kind)})`);
  for (const f of ['title', 'metric', 'unit', 'target', 'note'] as const) if (r[f] !== undefined && typeof r[f] !== 'string') fail(`${where}.${f}`, 'must be a string');
  if (r.n !== undefined && (typeof r.n !== 'number' || !Number.isInteger(r.n) || r.n < 1)) fail(`${where}.n`, 'must be a positive integer');
  switch (r.kind) {
    case 'patch-head':
    case 'dla':
      numberTable(r.values, `${where}.values`, 2);
      break;
    case 'patch-head-pos': {
      numberTable(r.values, `${where}.values`, 3);
      stringList(r.tokens, `${where}.tokens`);
      const positions = (r.values as number[][][])[0][0].length;
      if ((r.tokens as string[]).length !== positions) fail(`${where}.tokens`, `has ${(r.tokens as string[]).length} tokens, values has ${positions} positions`);
      if (r.positions !== undefined && (!Array.isArray(r.positions) || r.positions.length !== positions || r.positions.some((p) => !Number.isInteger(p) || p < 0))) {
        fail(`${where}.positions`, `must be ${positions} prompt positions (integers ≥ 0), one per column of values`);
      }
      break;
    }
    case 'head-importance': {
      numberTable(r.values, `${where}.values`, 2);
      const values = r.values as unknown[][];
      if (!Array.isArray(r.ci) || r.ci.length !== values.length) fail(`${where}.ci`, `must have one row per layer, like values (${values.length})`);
      (r.ci as unknown[]).forEach((row, l) => {
        if (!Array.isArray(row) || row.length !== values[l].length) fail(`${where}.ci[${l}]`, `must have one entry per head, like values[${l}] (${values[l].length})`);
        (row as unknown[]).forEach((ci, h) => {
          if (ci !== null && !(Array.isArray(ci) && ci.length === 2 && ci.every((x) => typeof x === 'number' && Number.isFinite(x)) && ci[0] <= ci[1])) {
            fail(`${where}.ci[${l}][${h}]`, `must be [lo, hi] with lo ≤ hi, or null (got ${JSON.stringify(ci)})`);
          }
        });
      });
      if (r.scale !== undefined && r.scale !== 'diverging' && r.scale !== 'log') fail(`${where}.scale`, `must be "diverging" or "log" (got ${JSON.stringify(r.scale)})`);
      break;
    }
    case 'logit-lens': {
      stringList(r.tokens, `${where}.tokens`);
      numberTable(r.prob, `${where}.prob`, 2);
      const positions = (r.prob as number[][])[0].length;
      if ((r.tokens as string[]).length !== positions) fail(`${where}.tokens`, `has ${(r.tokens as string[]).length} tokens, prob has ${positions} positions`);
      if (r.top !== undefined) {
        if (!Array.isArray(r.top) || r.top.length !== (r.prob as unknown[]).length) fail(`${where}.top`, 'must have one row per layer, like prob');
        (r.top as unknown[]).forEach((row, i) => stringList(row, `${where}.top[${i}]`));
      }
      break;
    }
  }
  return r as unknown as ResearchResult;
}

/** A results file's parsed JSON: one result, an array of them, or the `headwise-results` envelope. */
export function parseResults(v: unknown): ResearchResult[] {
  if (Array.isArray(v)) return v.map((x, i) => parseResult(x, `results[${i}]`));
  const o = v as Record<string, unknown> | null;
  if (o && typeof o === 'object' && o.format !== undefined) {
    if (o.format !== RESULTS_FORMAT) fail('format', `must be "${RESULTS_FORMAT}" (got ${JSON.stringify(o.format)})`);
    if (o.version !== RESULTS_VERSION) fail('version', `${JSON.stringify(o.version)} is not supported (expected ${RESULTS_VERSION})`);
    if (!Array.isArray(o.results)) fail('results', 'must be an array');
    return (o.results as unknown[]).map((x, i) => parseResult(x, `results[${i}]`));
  }
  return [parseResult(v)];
}

/** Layers × heads of a result, to check it against the model it is shown with; null for the logit lens's heads. */
export function resultShape(r: ResearchResult): { layers: number; heads: number | null } {
  switch (r.kind) {
    case 'logit-lens':
      return { layers: r.prob.length, heads: null };
    default:
      return { layers: r.values.length, heads: r.values[0].length };
  }
}
