/**
 * The research CLI's JSON as results the web app draws: `headwise patch --json` (`headwise.patching/1`)
 * in `--mode head` becomes a patch-head grid and in `--mode head-pos` a patch-head-pos grid (the share
 * of the clean − corrupt gap each patch restores); `headwise attribute --json` (`headwise.attribution/1`)
 * becomes a DLA grid and a one-position logit lens; `headwise importance --json`
 * (`headwise.importance/1`) a head-importance grid with its 95% intervals. The other patching modes
 * (whole layers, residual stream) have no view here and are refused by name. Grids take the shape of the
 * model they are shown with; heads a run left out (`--heads`) are null cells. `readResultsFile` is the
 * one entry point for `serve --results` and the app's file opener: it takes either format (or an
 * array / envelope mixing them) and checks each result against the model's shape. Pure; errors are
 * `ResultFormatError`s naming the field.
 */
import type { AttributionResult, ImportanceResult, PatchingResult, TokenText } from '../patching/format.js';
import { parseResult, parseResults, resultShape, ResultFormatError, RESULTS_FORMAT, type ResearchResult } from './researchResult.js';

export interface ModelShape {
  name?: string;
  layers: number;
  heads: number;
}

export const CLI_FORMATS = ['headwise.patching/1', 'headwise.attribution/1', 'headwise.importance/1'] as const;

const fail = (where: string, what: string): never => {
  throw new ResultFormatError(`${where}: ${what}`);
};

function record(v: unknown, where: string): Record<string, unknown> {
  if (!v || typeof v !== 'object' || Array.isArray(v)) fail(where, 'must be an object');
  return v as Record<string, unknown>;
}

function array(v: unknown, where: string): unknown[] {
  if (!Array.isArray(v)) fail(where, 'must be an array');
  return v as unknown[];
}

/** A finite number; null (how JSON writes NaN) when `nullable`. */
function num(o: Record<string, unknown>, field: string, where: string, nullable = false): number | null {
  const v = o[field];
  if (v === null && nullable) return null;
  if (typeof v !== 'number' || !Number.isFinite(v)) fail(`${where}.${field}`, `must be a finite number${nullable ? ' or null' : ''} (got ${JSON.stringify(v)})`);
  return v as number;
}

function index(o: Record<string, unknown>, field: string, where: string, below: number, what: string): number {
  const v = o[field];
  if (!Number.isInteger(v) || (v as number) < 0 || (v as number) >= below) fail(`${where}.${field}`, `must be an integer from 0 to ${below - 1} (${what}; got ${JSON.stringify(v)})`);
  return v as number;
}

function token(v: unknown, where: string): TokenText {
  const t = record(v, where);
  if (typeof t.text !== 'string') fail(`${where}.text`, 'must be a string');
  return t as unknown as TokenText;
}

function tokens(o: Record<string, unknown>, field: string): TokenText[] {
  return array(o[field], field).map((t, i) => token(t, `${field}[${i}]`));
}

const grid = <T>(shape: ModelShape, fill: () => T): T[][] => Array.from({ length: shape.layers }, () => Array.from({ length: shape.heads }, fill));

/** Places one head's value in a layers × heads grid, refusing heads outside the model and heads given twice. */
function place<T>(g: (T | null)[][], v: Record<string, unknown>, where: string, shape: ModelShape, value: T): void {
  const layer = index(v, 'layer', where, shape.layers, `the model has ${shape.layers} layers`);
  const head = index(v, 'head', where, shape.heads, `the model has ${shape.heads} heads per layer`);
  if (g[layer][head] !== null) fail(where, `head ${layer}:${head} appears twice`);
  g[layer][head] = value;
}

/** "; 16 heads not in this run are blank" when a run covered only some heads (`--heads`). */
function blanks(values: readonly (readonly unknown[])[], what: string): string {
  const n = values.flat().filter((v) => v === null).length;
  return n === 0 ? '' : `; ${n} head${n === 1 ? '' : 's'} not ${what} ${n === 1 ? 'is' : 'are'} blank`;
}

const joinText = (ts: readonly TokenText[]) => ts.map((t) => t.text).join('');
const fmt = (x: number) => (Math.abs(x) >= 100 ? x.toFixed(0) : x.toPrecision(3));

/** The quantity a patching or importance metric measures, in words. */
function metricWords(metric: string, answer: string | null, wrong: string | null): string {
  if (metric === 'logit-diff') return answer && wrong ? `logit(${JSON.stringify(answer)}) − logit(${JSON.stringify(wrong)})` : 'the logit difference answer − wrong';
  if (metric === 'logprob') return answer ? `log p(${JSON.stringify(answer)})` : 'the answer log-probability';
  if (metric === 'kl') return 'KL from the clean output';
  return fail('metric', `must be logit-diff, logprob or kl (got ${JSON.stringify(metric)})`);
}

/** `headwise.patching/1` in `head` or `head-pos` mode. */
export function fromPatching(json: unknown, shape: ModelShape): ResearchResult {
  const r = record(json, 'result') as unknown as PatchingResult & Record<string, unknown>;
  const clean = tokens(r, 'clean');
  const corrupt = tokens(r, 'corrupt');
  const answer = token(r.answer, 'answer');
  const wrong = r.wrong === null || r.wrong === undefined ? null : token(r.wrong, 'wrong');
  const positions = array(r.positions, 'positions').map((p, i) => {
    if (!Number.isInteger(p) || (p as number) < 0 || (p as number) >= clean.length) fail(`positions[${i}]`, `must be a position of the ${clean.length}-token prompt (got ${JSON.stringify(p)})`);
    return p as number;
  });
  const cells = array(r.cells, 'cells').map((c, i) => record(c, `cells[${i}]`));
  const words = metricWords(r.metric, answer.text, wrong?.text ?? null);
  const at = (ps: readonly number[]) => ps.map((p) => `${p} ${JSON.stringify(clean[p].text)}`).join(', ');
  const common = {
    metric: `share of the gap in ${words} restored`,
    unit: '1 = clean, 0 = corrupt',
    model: { name: typeof r.model === 'string' ? r.model : undefined, layers: shape.layers, heads: shape.heads },
    prompts: { clean: joinText(clean), corrupted: joinText(corrupt) },
    target: answer.text,
    note: `${r.hook}: clean ${fmt(num(r, 'cleanValue', 'result')!)}, corrupt ${fmt(num(r, 'corruptValue', 'result')!)}; ${cells.length} patched runs on ${r.model}`,
  };
  if (r.mode === 'head') {
    const values = grid<number | null>(shape, () => null);
    cells.forEach((c, i) => {
      if (c.position !== null) fail(`cells[${i}].position`, 'must be null in mode head (every position at once)');
      place(values, c, `cells[${i}]`, shape, num(c, 'restored', `cells[${i}]`, true));
    });
    return parseResult({ kind: 'patch-head', ...common, values, note: `${common.note}, patching position${positions.length > 1 ? 's' : ''} ${at(positions)} at once${blanks(values, 'patched')}` });
  }
  if (r.mode === 'head-pos') {
    const column = new Map(positions.map((p, k) => [p, k]));
    const values = grid<(number | null)[] | null>(shape, () => null);
    const seen = new Set<string>();
    cells.forEach((c, i) => {
      const where = `cells[${i}]`;
      const layer = index(c, 'layer', where, shape.layers, `the model has ${shape.layers} layers`);
      const head = index(c, 'head', where, shape.heads, `the model has ${shape.heads} heads per layer`);
      const k = column.get(c.position as number);
      if (k === undefined) fail(`${where}.position`, `must be one of positions (${positions.join(', ')}; got ${JSON.stringify(c.position)})`);
      const key = `${layer}:${head}@${c.position}`;
      if (seen.has(key)) fail(where, `head ${layer}:${head} at position ${c.position} appears twice`);
      seen.add(key);
      (values[layer][head] ??= positions.map(() => null))[k!] = num(c, 'restored', where, true);
    });
    const full = values.map((row) => row.map((byPos) => byPos ?? positions.map(() => null)));
    return parseResult({ kind: 'patch-head-pos', ...common, values: full, tokens: positions.map((p) => clean[p].text), positions, note: `${common.note}${blanks(values, 'patched')}` });
  }
  return fail('mode', `${JSON.stringify(r.mode)} has no view in the web app (it draws --mode head and head-pos); \`headwise patch --report FILE.html\` draws it`);
}

/** `headwise.attribution/1`: the DLA grid and the logit lens at the attributed position. */
export function fromAttribution(json: unknown, shape: ModelShape): ResearchResult[] {
  const r = record(json, 'result') as unknown as AttributionResult & Record<string, unknown>;
  const answer = token(r.answer, 'answer');
  const wrong = r.wrong === null || r.wrong === undefined ? null : token(r.wrong, 'wrong');
  const position = index(r, 'position', 'result', Number.MAX_SAFE_INTEGER, 'a prompt position');
  const values = grid<number | null>(shape, () => null);
  array(r.heads, 'heads').forEach((h, i) => place(values, record(h, `heads[${i}]`), `heads[${i}]`, shape, num(record(h, `heads[${i}]`), 'attribution', `heads[${i}]`)));
  const missing = values.flatMap((row, l) => row.flatMap((v, h) => (v === null ? [`${l}:${h}`] : [])));
  if (missing.length > 0) fail('heads', `attribution covers every head, but ${missing.slice(0, 4).join(', ')}${missing.length > 4 ? ', …' : ''} ${missing.length === 1 ? 'is' : 'are'} missing (a result of another model?)`);
  const sum = (xs: unknown, field: string) =>
    array(xs, field).reduce<number>((a, x, i) => (typeof x === 'number' && Number.isFinite(x) ? a + x : fail(`${field}[${i}]`, `must be a finite number (got ${JSON.stringify(x)})`)), 0);
  const headSum = values.flat().reduce<number>((a, v) => a + v!, 0);
  const target = wrong ? `logit(${JSON.stringify(answer.text)}) − logit(${JSON.stringify(wrong.text)})` : `logit(${JSON.stringify(answer.text)})`;
  const model = { name: typeof r.model === 'string' ? r.model : undefined, layers: shape.layers, heads: shape.heads };
  const dla: ResearchResult = parseResult({
    kind: 'dla',
    metric: `direct contribution to ${target}`,
    unit: 'logits',
    model,
    target: answer.text,
    note: `At position ${position} of ${r.model}. ${target} = ${fmt(num(r, 'logitDiff', 'result')!)} = heads ${fmt(headSum)} + embeddings ${fmt(num(r, 'embed', 'result')!)} + MLPs ${fmt(sum(r.mlp, 'mlp'))} + attention biases ${fmt(sum(r.attnBias, 'attnBias'))}${r.normBias === undefined ? '' : ` + final norm bias ${fmt(num(r, 'normBias', 'result')!)}`} + LM head bias ${fmt(num(r, 'lmHeadBias', 'result')!)}; ${r.norm}.`,
    values,
  });
  const prob: (number | null)[][] = Array.from({ length: shape.layers }, () => [null]);
  const diffs: string[] = [];
  array(r.logitLens, 'logitLens').forEach((e, i) => {
    const where = `logitLens[${i}]`;
    const o = record(e, where);
    const layer = index(o, 'layer', where, shape.layers, `the model has ${shape.layers} layers`);
    if (prob[layer][0] !== null) fail(where, `layer ${layer} appears twice`);
    prob[layer][0] = Math.exp(num(o, 'answerLogProb', where)!);
    if (wrong) diffs.push(`L${layer} ${fmt(num(o, 'logitDiff', where)!)}`);
  });
  const absent = prob.flatMap((p, l) => (p[0] === null ? [l] : []));
  if (absent.length > 0) fail('logitLens', `has no entry for layer ${absent.join(', ')} (one per layer of the ${shape.layers}-layer model)`);
  const lens = parseResult({
    kind: 'logit-lens',
    metric: `probability of ${JSON.stringify(answer.text)}`,
    model,
    target: answer.text,
    tokens: [`position ${position}`],
    prob,
    note: `Each block's output at position ${position} through the real final norm and LM head.${wrong ? ` ${target} after each layer: ${diffs.join(', ')}.` : ''}`,
  });
  return [dla, lens];
}

/** `headwise.importance/1`: each head's mean effect of ablation with its 95% interval. */
export function fromImportance(json: unknown, shape: ModelShape): ResearchResult {
  const r = record(json, 'result') as unknown as ImportanceResult & Record<string, unknown>;
  const values = grid<number | null>(shape, () => null);
  const ci = grid<[number, number] | null>(shape, () => null);
  array(r.heads, 'heads').forEach((h, i) => {
    const where = `heads[${i}]`;
    const o = record(h, where);
    place(values, o, where, shape, num(o, 'effect', where));
    const c = o.ci;
    if (!(Array.isArray(c) && c.length === 2 && c.every((x) => typeof x === 'number' && Number.isFinite(x)))) fail(`${where}.ci`, `must be [lo, hi] (got ${JSON.stringify(c)})`);
    ci[o.layer as number][o.head as number] = c as [number, number];
  });
  const kl = r.metric === 'kl';
  const words = kl ? 'KL of the output' : `drop of ${metricWords(r.metric, null, null)}`;
  return parseResult({
    kind: 'head-importance',
    title: `Head importance (${r.ablation} ablation)`,
    metric: `${words} when the head is ablated`,
    unit: kl ? 'nats' : r.metric === 'logprob' ? 'nats' : 'logits',
    scale: kl ? 'log' : 'diverging',
    model: { name: typeof r.model === 'string' ? r.model : undefined, layers: shape.layers, heads: shape.heads },
    n: r.prompts,
    note: `Mean over ${r.prompts} prompts with 95% t intervals (on hover); ${r.ablation} ablation at ${r.scope === 'all' ? 'every position' : 'the answer rows'}; baseline ${fmt(num(r, 'baseline', 'result')!)}; ${r.model}${blanks(values, 'ranked')}.`,
    values,
    ci,
  });
}

/** One result file's entry: a research CLI output or a result of `researchResult.ts`. */
function convertOne(v: unknown, shape: ModelShape, where: string): ResearchResult[] {
  const format = v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>).format : undefined;
  const prefix = (f: () => ResearchResult[]) => {
    try {
      return f();
    } catch (e) {
      if (e instanceof ResultFormatError && where) throw new ResultFormatError(`${where}: ${e.message}`);
      throw e;
    }
  };
  const model = (v as Record<string, unknown> | null)?.model;
  if (format !== undefined && typeof model === 'string' && shape.name !== undefined && model !== shape.name) {
    fail(`${where || ''}${where ? '.' : ''}model`, `${JSON.stringify(model)}: computed on another model than the one shown (${JSON.stringify(shape.name)})`);
  }
  switch (format) {
    case 'headwise.patching/1':
      return prefix(() => [fromPatching(v, shape)]);
    case 'headwise.attribution/1':
      return prefix(() => fromAttribution(v, shape));
    case 'headwise.importance/1':
      return prefix(() => [fromImportance(v, shape)]);
    case undefined:
      return [parseResult(v, where || 'result')];
    default:
      if (typeof format === 'string' && format.startsWith('headwise.')) fail(`${where || ''}${where ? '.' : ''}format`, `${JSON.stringify(format)} is not one the web app reads (${CLI_FORMATS.join(', ')}, ${RESULTS_FORMAT})`);
      return [parseResult(v, where || 'result')];
  }
}

/**
 * A results file's parsed JSON for a model of `shape`: research CLI outputs are converted, the
 * `researchResult.ts` format is parsed, and every result must fit the model.
 */
export function readResultsFile(json: unknown, shape: ModelShape): ResearchResult[] {
  const o = json && typeof json === 'object' && !Array.isArray(json) ? (json as Record<string, unknown>) : null;
  const results = Array.isArray(json)
    ? json.flatMap((x, i) => convertOne(x, shape, `results[${i}]`))
    : o?.format === RESULTS_FORMAT
      ? parseResults(json)
      : convertOne(json, shape, '');
  results.forEach((r, i) => {
    const s = resultShape(r);
    if (s.layers !== shape.layers || (s.heads !== null && s.heads !== shape.heads)) {
      fail(`result ${i} (${r.kind})`, `is for ${s.layers} layers${s.heads === null ? '' : ` × ${s.heads} heads`}, the model has ${shape.layers} × ${shape.heads}`);
    }
  });
  return results;
}
