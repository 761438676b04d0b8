/**
 * The routes behind the researcher views, kept out of `server.ts` so the transport stays small:
 * binned patterns of one head at any prompt length (head view, zoom, compare), every head's pattern
 * thumbnail (model view), and the research results loaded at startup (patching, attribution, logit
 * lens; format in `atlas/researchResult.ts`). Request checking follows `validate.ts`: every failure a
 * 400 naming the field.
 */
import type http from 'node:http';
import type { ResearchResult } from '../atlas/researchResult.js';
import { describe } from '../interventions/compose.js';
import { parseInterventionSpec, SpecError, type InterventionSpec } from '../interventions/index.js';
import type { ApiLimits, BinnedPattern, BinnedPatternRequest, ModelPatterns, ModelPatternsRequest, TokenRange } from './api.js';
import type { Engine } from './engine.js';
import { readJsonBody } from './http.js';
import { binEdges } from './patternBins.js';
import { binnedPatterns } from './patterns.js';
import { bad, intField, objectBody, stringField, type Body } from './validate.js';

type Handler = (req: http.IncomingMessage, params: string[]) => Promise<[number, unknown]>;
export type ResearchRoutes = Record<string, { GET?: Handler; POST?: Handler }>;

export const MAX_BINS = 512;
export const MAX_THUMB_BINS = 64;

function rangeField(body: Body, field: string, n: number): TokenRange {
  const v = body[field];
  if (v === undefined) return [0, n];
  if (!Array.isArray(v) || v.length !== 2 || !v.every((x) => Number.isInteger(x))) throw bad(field, 'must be [start, end], two integers');
  const [a, b] = v as number[];
  if (a < 0 || b > n || a >= b) throw bad(field, `[${a}, ${b}] is not a range inside the prompt's ${n} tokens (0 ≤ start < end ≤ ${n})`);
  return [a, b];
}

export function researchRoutes(engine: Engine, limits: ApiLimits, results: () => ResearchResult[]): ResearchRoutes {
  const c = engine.model.config;
  const shape = { numLayers: c.numLayers, numHeads: c.numHeads, headDim: c.headDim };
  const promptIds = (prompt: string): number[] => {
    const ids = engine.tokenize(prompt);
    if (ids.length > c.maxPositions) throw bad('prompt', `is ${ids.length} tokens long, the model's context is ${c.maxPositions}`);
    return ids;
  };
  const specField = (body: Body): InterventionSpec | null => {
    if (body.interventions === undefined || body.interventions === null) return null;
    try {
      return parseInterventionSpec(body.interventions, shape);
    } catch (e) {
      if (e instanceof SpecError) throw bad('interventions', e.message);
      throw e;
    }
  };
  return {
    '/api/pattern/bins': {
      POST: async (req) => {
        const fields = ['prompt', 'layer', 'head', 'bins', 'queries', 'keys', 'query', 'interventions'] satisfies (keyof BinnedPatternRequest)[];
        const body = objectBody(await readJsonBody(req, limits.maxBodyBytes), fields);
        const prompt = stringField(body, 'prompt', { maxChars: limits.maxPromptChars });
        const layer = intField(body, 'layer', 0, c.numLayers - 1, undefined, `model has ${c.numLayers} layers, 0 to ${c.numLayers - 1}`);
        const head = intField(body, 'head', 0, c.numHeads - 1, undefined, `model has ${c.numHeads} heads per layer, 0 to ${c.numHeads - 1}`);
        const bins = intField(body, 'bins', 1, MAX_BINS, 128);
        const spec = specField(body);
        const ids = promptIds(prompt);
        const n = ids.length;
        const [queryStart, queryEnd] = rangeField(body, 'queries', n);
        const [keyStart, keyEnd] = rangeField(body, 'keys', n);
        const query = intField(body, 'query', 0, n - 1, n - 1, `the prompt has ${n} tokens, 0 to ${n - 1}`);
        const run = async (): Promise<BinnedPattern> => {
          const [b] = await binnedPatterns(engine.model, ids, [{ layer, head, bins, query, window: { queryStart, queryEnd, keyStart, keyEnd } }], { spec, prompt });
          return {
            layer,
            head,
            tokens: engine.tokenStrings(ids),
            queryEdges: b.queryEdges,
            keyEdges: b.keyEdges,
            cells: b.cells(),
            query,
            row: Array.from(b.row!, (x) => Math.round(x * 1e5) / 1e5),
            interventions: spec ? describe(spec).split('\n').filter(Boolean) : [],
          };
        };
        try {
          return [200, await engine.queue.run(run)];
        } catch (e) {
          if (e instanceof SpecError) throw bad('interventions', e.message);
          throw e;
        }
      },
    },
    '/api/patterns': {
      POST: async (req) => {
        const body = objectBody(await readJsonBody(req, limits.maxBodyBytes), ['prompt', 'bins'] satisfies (keyof ModelPatternsRequest)[]);
        const prompt = stringField(body, 'prompt', { maxChars: limits.maxPromptChars });
        const bins = intField(body, 'bins', 1, MAX_THUMB_BINS, 24);
        const ids = promptIds(prompt);
        const window = { queryStart: 0, queryEnd: ids.length, keyStart: 0, keyEnd: ids.length };
        const requests = Array.from({ length: c.numLayers * c.numHeads }, (_, i) => ({ layer: Math.floor(i / c.numHeads), head: i % c.numHeads, bins, query: -1, window }));
        const binners = await engine.queue.run(() => binnedPatterns(engine.model, ids, requests));
        const out: ModelPatterns = {
          tokens: engine.tokenStrings(ids),
          edges: binEdges(0, ids.length, bins),
          cells: Array.from({ length: c.numLayers }, (_, l) => Array.from({ length: c.numHeads }, (_, h) => binners[l * c.numHeads + h].cells(4))),
        };
        return [200, out];
      },
    },
    '/api/results': { GET: async () => [200, { results: results() }] },
  };
}
