/**
 * The web app's server: the model runs here (through `engine.ts`), the browser only renders. It
 * serves the built front-end (`src/web/app`, built by Vite) and the JSON API under `/api/` that
 * `API.md` documents. Every parameter is checked (`validate.ts`) and every failure is a 4xx with
 * `{"error": "..."}` naming the field; nothing a client sends can crash the process, and no file path
 * ever comes from a client — the atlas and the model are chosen when the server starts.
 */
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import fs from 'node:fs';
import path from 'node:path';
import { HeadwiseError } from '../errors.js';
import type { AtlasFile } from '../atlas/file.js';
import { generateNeedleSample } from '../eval/needle.js';
import { loadHaystack } from '../eval/haystack.js';
import { parseInterventionSpec, SpecError, type InterventionSpec } from '../interventions/index.js';
import type { Model } from '../runtime/model.js';
import type { ApiLimits, AtlasView, ExamplePrompt, GenerateRequest, JobKind, ModelInfo, NiahView, ServerStatus } from './api.js';
import { Engine, QueueFullError } from './engine.js';
import { discardBody, guardConnections, hostOfHeader, HttpError, isLoopbackHost, rawError, readJsonBody, sendError, sendJson, serveStatic } from './http.js';
import { JobRegistry, type ProgressReporter } from './jobs.js';
import { bad, boolField, intField, objectBody, stringField } from './validate.js';
import type { ResearchResult } from '../atlas/researchResult.js';
import { researchRoutes } from './researchRoutes.js';

export const DEFAULT_LIMITS: ApiLimits = {
  maxBodyBytes: 256 * 1024,
  maxPromptChars: 64 * 1024,
  maxPatternTokens: 256,
  maxNewTokens: 64,
  maxTopK: 20,
};

/** What a job runner is told: the model, small or full sample counts, and the atlas the server holds now. */
export interface JobContext {
  model: Model;
  quick: boolean;
  atlas: AtlasFile | null;
}
/** Computes an atlas for the server's model. */
export type AtlasRunner = (ctx: JobContext, report: ProgressReporter) => Promise<AtlasFile>;
/** Runs the needle grid and the KV sweep for the server's model. */
export type NiahRunner = (ctx: JobContext, report: ProgressReporter) => Promise<Omit<NiahView, 'source'>>;

/** How long the transport waits for a client (ms); see API.md, "Transport". */
export interface TransportTimeouts {
  /** From the connection (or the end of the previous answer) to the end of a request's headers. */
  headersMs: number;
  /** From the connection to the end of a request's body. */
  requestMs: number;
  /** An idle kept-alive connection is closed after this. */
  keepAliveMs: number;
}

export const DEFAULT_TIMEOUTS: TransportTimeouts = { headersMs: 10_000, requestMs: 30_000, keepAliveMs: 5_000 };

export interface ServerOptions {
  model: Model;
  /** 127.0.0.1 unless given; anything but a loopback address needs `allowRemote`. */
  host?: string;
  /** Bind a non-loopback `host` (the model and its API are then open to the network; no DNS-rebinding check). */
  allowRemote?: boolean;
  /** 0 picks a free port. */
  port?: number;
  /** An atlas read at startup (`readAtlas`), checked against the model. */
  atlas?: AtlasFile;
  /** Needle results read at startup. */
  niah?: Omit<NiahView, 'source'>;
  /** Research results (patching, attribution, logit lens) read at startup (`serve --results FILE`). */
  results?: ResearchResult[];
  /** Folder of the built front-end (index.html + assets); absent = API only. */
  appDir?: string;
  runners?: { atlas?: AtlasRunner; niah?: NiahRunner };
  limits?: Partial<ApiLimits>;
  timeouts?: Partial<TransportTimeouts>;
  /** Where failures that are bugs are logged (default console.error). */
  log?: (message: string, error?: unknown) => void;
}

export interface WebServer {
  url: string;
  server: http.Server;
  close(): Promise<void>;
}

interface Route {
  GET?: Handler;
  POST?: Handler;
}
type Handler = (req: http.IncomingMessage, params: string[]) => Promise<[number, unknown]>;

export async function startServer(opts: ServerOptions): Promise<WebServer> {
  const limits: ApiLimits = { ...DEFAULT_LIMITS, ...opts.limits };
  const timeouts: TransportTimeouts = { ...DEFAULT_TIMEOUTS, ...opts.timeouts };
  const host = opts.host ?? '127.0.0.1';
  // An empty host would make node listen on every interface.
  if (host.trim() === '') throw new HeadwiseError('host: empty (give an address, e.g. 127.0.0.1)');
  const loopback = isLoopbackHost(host);
  if (!loopback && !opts.allowRemote) throw new HeadwiseError(`host ${host} is not a loopback address; binding it exposes the model to the network (allowRemote to do so)`);
  const log = opts.log ?? ((m, e) => console.error(m, e ?? ''));
  const model = opts.model;
  const c = model.config;
  const engine = new Engine(model);
  const jobs = new JobRegistry();
  let atlas: AtlasView | null = opts.atlas ? atlasView(opts.atlas, model, 'file') : null;
  let atlasFile: AtlasFile | null = opts.atlas ?? null;
  let niah: NiahView | null = opts.niah ? { ...opts.niah, source: 'file' } : null;
  const appDir = opts.appDir && fs.existsSync(path.join(opts.appDir, 'index.html')) ? path.resolve(opts.appDir) : null;
  const shape = { numLayers: c.numLayers, numHeads: c.numHeads, headDim: c.headDim };

  const info: ModelInfo = {
    name: model.name,
    family: c.family,
    layers: c.numLayers,
    heads: c.numHeads,
    kvHeads: c.numKvHeads,
    headDim: c.headDim,
    vocab: c.vocabSize,
    contextTokens: c.maxPositions,
    limits,
    jobs: { atlas: !!opts.runners?.atlas, niah: !!opts.runners?.niah },
  };

  const promptIds = (prompt: string, maxTokens: number, why: string): number[] => {
    const ids = engine.tokenize(prompt);
    if (ids.length > maxTokens) throw bad('prompt', `is ${ids.length} tokens long, the limit is ${maxTokens} (${why})`);
    return ids;
  };

  const startJob = async <T>(
    kind: JobKind,
    req: http.IncomingMessage,
    runner: ((ctx: JobContext, report: ProgressReporter) => Promise<T>) | undefined,
    onDone: (result: T) => void,
  ): Promise<[number, unknown]> => {
    const body = objectBody(await readJsonBody(req, limits.maxBodyBytes), ['quick']);
    const quick = boolField(body, 'quick', true);
    if (!runner) throw new HttpError(404, `${kind} jobs are not available in this server`);
    const running = jobs.running(kind);
    if (running) throw new HttpError(409, `a ${kind} job is already running (id ${running.id}); poll GET /api/jobs/${running.id}`);
    return [202, jobs.start(kind, (report) => engine.queue.run(() => runner({ model, quick, atlas: atlasFile }, report)), onDone)];
  };

  const routes: Record<string, Route> = {
    '/api/model': { GET: async () => [200, info] },
    '/api/status': { GET: async () => [200, { atlas: !!atlas, niah: !!niah || !!atlasFile?.niah?.grid, results: opts.results?.length ?? 0 } satisfies ServerStatus] },
    ...researchRoutes(engine, limits, () => opts.results ?? []),
    '/api/atlas': {
      GET: async () => {
        if (!atlas) throw new HttpError(404, 'no atlas loaded: start the server with --atlas FILE, or compute one with POST /api/atlas/jobs');
        return [200, atlas];
      },
    },
    '/api/atlas/jobs': { POST: (req) => startJob('atlas', req, opts.runners?.atlas, (a) => {
        atlas = atlasView(a, model, 'job');
        atlasFile = a;
      }) },
    '/api/niah': {
      GET: async () => {
        if (niah) return [200, niah];
        const fromAtlas = atlasFile?.niah;
        if (fromAtlas?.grid) {
          const view: NiahView = {
            grid: { contextTokens: fromAtlas.contextTokens, depths: fromAtlas.depths, accuracy: fromAtlas.grid.map((row) => row.map((x) => (Number.isFinite(x) ? x : null))), samplesPerCell: fromAtlas.counts?.[0]?.[0] ?? 0, counts: fromAtlas.counts },
            kv: null,
            source: 'atlas',
            settings: { note: "the atlas's own needle prompts", samples: fromAtlas.samples, method: fromAtlas.method },
          };
          return [200, view];
        }
        throw new HttpError(404, 'no needle results yet: compute them with POST /api/niah/jobs');
      },
    },
    '/api/niah/jobs': { POST: (req) => startJob('niah', req, opts.runners?.niah, (n) => (niah = { ...n, source: 'job' })) },
    '/api/jobs/:id': {
      GET: async (_req, [id]) => {
        if (!/^[0-9a-f-]{36}$/.test(id)) throw bad('id', `${JSON.stringify(id.slice(0, 40))} is not a job id`);
        const job = jobs.get(id);
        if (!job) throw new HttpError(404, `no job with id ${id}`);
        return [200, job];
      },
    },
    '/api/examples': { GET: async () => [200, examples(engine, atlas)] },
    '/api/pattern': {
      POST: async (req) => {
        const body = objectBody(await readJsonBody(req, limits.maxBodyBytes), ['prompt', 'layer', 'head']);
        const prompt = stringField(body, 'prompt', { maxChars: limits.maxPromptChars });
        const layer = intField(body, 'layer', 0, c.numLayers - 1, undefined, `model has ${c.numLayers} layers, 0 to ${c.numLayers - 1}`);
        const head = intField(body, 'head', 0, c.numHeads - 1, undefined, `model has ${c.numHeads} heads per layer, 0 to ${c.numHeads - 1}`);
        const ids = promptIds(prompt, Math.min(limits.maxPatternTokens, c.maxPositions), 'attention patterns are shown for short prompts');
        return [200, await engine.pattern(ids, layer, head)];
      },
    },
    '/api/generate': {
      POST: async (req) => {
        const body = objectBody(await readJsonBody(req, limits.maxBodyBytes), ['prompt', 'maxNewTokens', 'topK', 'interventions'] satisfies (keyof GenerateRequest)[]);
        const prompt = stringField(body, 'prompt', { maxChars: limits.maxPromptChars });
        const maxNewTokens = intField(body, 'maxNewTokens', 1, limits.maxNewTokens, 16);
        const topK = intField(body, 'topK', 1, limits.maxTopK, 10);
        let spec: InterventionSpec | null = null;
        if (body.interventions !== undefined && body.interventions !== null) {
          try {
            spec = parseInterventionSpec(body.interventions, shape);
          } catch (e) {
            if (e instanceof SpecError) throw bad('interventions', e.message);
            throw e;
          }
        }
        const ids = promptIds(prompt, c.maxPositions - maxNewTokens, `the model's context is ${c.maxPositions} tokens and ${maxNewTokens} are asked for`);
        try {
          return [200, await engine.generate(prompt, ids, spec, maxNewTokens, topK)];
        } catch (e) {
          if (e instanceof SpecError) throw bad('interventions', e.message);
          throw e;
        }
      },
    },
  };

  const handleApi = async (req: http.IncomingMessage, res: http.ServerResponse, pathname: string): Promise<void> => {
    const [route, params] = matchRoute(routes, pathname);
    if (!route) throw new HttpError(404, `no API route ${pathname} (see API.md: /api/model, /api/atlas, /api/pattern, /api/generate, ...)`);
    const method = (req.method === 'HEAD' ? 'GET' : req.method) as keyof Route;
    const handler = route[method];
    const allow = Object.keys(route).join(', ');
    if (!handler) throw new HttpError(405, `${req.method} is not allowed on ${pathname} (allowed: ${allow})`, { allow });
    const [status, body] = await handler(req, params);
    sendJson(res, status, body);
  };

  const transport: http.ServerOptions = {
    headersTimeout: timeouts.headersMs,
    requestTimeout: timeouts.requestMs,
    keepAliveTimeout: timeouts.keepAliveMs,
    // How often node checks the two timeouts above (its default, 30 s, would let them run late).
    connectionsCheckingInterval: Math.min(1000, timeouts.headersMs),
    // Without Host the DNS-rebinding check below answers (with JSON); node's own 400 has no body.
    requireHostHeader: false,
  };
  const server = http.createServer(transport, (req, res) => {
    const fail = (e: unknown): void => {
      if (e instanceof HttpError) {
        // A refused body is read to its end (bounded) so the client sees the answer, not a reset.
        if (e.status === 413) discardBody(req);
        return sendError(res, e.status, e.message, e.headers);
      }
      if (e instanceof QueueFullError) return sendError(res, 503, e.message, { 'retry-after': '2' });
      if (e instanceof HeadwiseError) return sendError(res, 400, e.message);
      log(`headwise serve: internal error on ${req.method} ${req.url}`, e);
      sendError(res, 500, `internal error: ${(e as Error)?.message ?? String(e)}`);
    };
    try {
      const hostHeader = hostOfHeader(req.headers.host ?? '');
      // A page on another site must not reach a loopback server by rebinding its DNS name to 127.0.0.1.
      if (loopback && !isLoopbackHost(hostHeader)) throw new HttpError(403, `Host ${JSON.stringify(hostHeader.slice(0, 100))} is not this server (use http://127.0.0.1)`);
      const url = new URL(req.url ?? '/', 'http://localhost');
      if (url.pathname.startsWith('/api/') || url.pathname === '/api') {
        handleApi(req, res, url.pathname).catch(fail);
        return;
      }
      if (req.method !== 'GET' && req.method !== 'HEAD') throw new HttpError(405, `${req.method} is not allowed here (the app is served with GET)`, { allow: 'GET, HEAD' });
      if (!appDir) {
        if (url.pathname === '/') return sendHtml(res, 200, NOT_BUILT);
        throw new HttpError(404, `not found: ${url.pathname}`);
      }
      if (!serveStatic(req, res, appDir, url.pathname)) throw new HttpError(404, `not found: ${url.pathname}`);
    } catch (e) {
      fail(e);
    }
  });
  // Requests node's parser refuses never reach the handler above; they get a JSON answer on the socket.
  server.on('clientError', (err: NodeJS.ErrnoException & { reason?: string }, socket) => {
    if (!socket.writable || err.code === 'ECONNRESET') return void socket.destroy();
    const [status, message] = clientErrorAnswer(err);
    const answer = () => {
      if (!socket.writable) return void socket.destroy();
      socket.end(rawError(status, message));
      setTimeout(() => socket.destroy(), 2000).unref();
    };
    const pending = (socket as { _httpMessage?: http.ServerResponse })._httpMessage;
    if (pending && !pending.writableFinished && (pending.req?.complete || pending.headersSent)) {
      // An answer is under way: to an earlier request (the error is in one pipelined after it), then
      // this answer follows it; or to this very request (the error is in its body), then the
      // connection closes after it, since nothing can follow half a request.
      const after = pending.req?.complete ? answer : () => socket.end();
      pending.once('finish', after);
      setTimeout(() => socket.destroy(), 30_000).unref();
      return;
    }
    answer();
  });
  // An Expect other than 100-continue: node's own 417 would have no body.
  server.on('checkExpectation', (req: http.IncomingMessage, res: http.ServerResponse) => {
    sendError(res, 417, `Expect: ${String(req.headers.expect).slice(0, 60)} is not supported (only 100-continue)`);
  });
  // CONNECT (a proxy tunnel) is not a request this server serves; node would drop the socket unanswered.
  server.on('connect', (req: http.IncomingMessage, socket: Socket) => {
    socket.on('error', () => socket.destroy());
    socket.end(rawError(405, `${req.method} is not allowed (this is not a proxy)`, { Allow: 'GET, HEAD, POST' }));
    setTimeout(() => socket.destroy(), 2000).unref();
  });
  const guarded = guardConnections(server, timeouts.headersMs);

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, host, () => {
      server.off('error', reject);
      // Errors of the listening socket (e.g. out of file descriptors) are logged; the server keeps going.
      server.on('error', (e) => log('headwise serve: server error', e));
      resolve();
    });
  });
  const addr = server.address() as AddressInfo;
  const urlHost = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
  return {
    url: `http://${urlHost}:${addr.port}`,
    server,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
        for (const socket of guarded) socket.destroy();
      }),
  };
}

/** The status and message for a request node's parser refused (`clientError`). */
function clientErrorAnswer(err: NodeJS.ErrnoException & { reason?: string }): [number, string] {
  if (err.code === 'ERR_HTTP_REQUEST_TIMEOUT') return [408, 'the request took too long to arrive'];
  if (err.code === 'HPE_HEADER_OVERFLOW') return [431, 'request headers are too large'];
  const why = typeof err.reason === 'string' ? err.reason : err.code ?? 'unreadable';
  return [400, `malformed HTTP request (${why.slice(0, 100)})`];
}

/** Splits a path into a route key and its parameters (`/api/jobs/abc` → `/api/jobs/:id`, ["abc"]). */
function matchRoute(routes: Record<string, Route>, pathname: string): [Route | undefined, string[]] {
  const trimmed = pathname.length > 1 ? pathname.replace(/\/+$/, '') : pathname;
  if (routes[trimmed]) return [routes[trimmed], []];
  const parts = trimmed.split('/');
  for (const [key, route] of Object.entries(routes)) {
    const pattern = key.split('/');
    if (pattern.length !== parts.length) continue;
    const params: string[] = [];
    if (pattern.every((p, i) => (p.startsWith(':') ? (params.push(parts[i]), true) : p === parts[i]))) {
      return [route, params.map((p) => safeDecode(p))];
    }
  }
  return [undefined, []];
}

function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

/** The atlas as the app sees it; metrics whose shape does not fit the model are refused. */
export function atlasView(a: AtlasFile, model: Model, source: AtlasView['source']): AtlasView {
  const c = model.config;
  const metrics: Record<string, number[][]> = {};
  for (const [name, grid] of Object.entries(a.metrics)) {
    const per = a.metricInfo?.[name]?.per ?? (grid?.[0]?.length === c.numKvHeads && c.numKvHeads !== c.numHeads ? 'kvHead' : 'head');
    const width = per === 'kvHead' ? c.numKvHeads : c.numHeads;
    const ok =
      Array.isArray(grid) &&
      grid.length === c.numLayers &&
      grid.every((row) => Array.isArray(row) && row.length === width && row.every((x) => x === null || typeof x === 'number'));
    if (!ok) throw new HeadwiseError(`atlas metric "${name}" is not a ${c.numLayers} × ${width} grid of numbers`);
    metrics[name] = grid;
  }
  return {
    format: a.format,
    version: a.version,
    createdAt: a.createdAt,
    model: { name: a.model?.name ?? model.name, layers: c.numLayers, heads: c.numHeads, kvHeads: c.numKvHeads },
    settings: a.settings,
    metrics,
    metricInfo: a.metricInfo,
    source,
  };
}

let haystackCache: string | null = null;

/** Prompts the app offers: a pass-key needle (with its top retrieval heads to ablate) and a story opening. */
function examples(engine: Engine, atlas: AtlasView | null): ExamplePrompt[] {
  haystackCache ??= loadHaystack();
  const ctx = Math.min(200, engine.model.config.maxPositions - 16);
  const sample = generateNeedleSample(engine.model.tokenizer!, haystackCache, { variant: 'passKey', contextTokens: ctx, depth: 0.5, seed: 0 });
  const out: ExamplePrompt[] = [];
  const retrieval = atlas?.metrics.retrieval;
  const perHead = retrieval && (atlas?.metricInfo?.retrieval?.per ?? 'head') === 'head';
  const top = perHead
    ? retrieval
        .flatMap((row, layer) => row.map((score, head) => ({ layer, head, score })))
        .filter((h) => Number.isFinite(h.score))
        .sort((x, y) => y.score - x.score)
        .slice(0, 2)
    : [];
  out.push({
    name: 'pass key',
    prompt: sample.prompt,
    answer: sample.answer,
    interventions:
      top.length > 0
        ? { version: 1, note: 'ablate the top retrieval heads of the atlas', interventions: [{ op: 'ablate', heads: top.map((h) => `${h.layer}:${h.head}`) }] }
        : undefined,
  });
  out.push({ name: 'story', prompt: 'Once upon a time, there was a little girl named Lily. One day, she' });
  return out;
}

function sendHtml(res: http.ServerResponse, status: number, html: string): void {
  res.writeHead(status, { 'content-type': 'text/html; charset=utf-8', 'content-length': Buffer.byteLength(html) });
  res.end(html);
}

const NOT_BUILT = `<!doctype html><meta charset="utf-8"><title>headwise</title>
<p>The web app is not built. Run <code>npm run build</code>, then restart <code>headwise serve</code>. The JSON API under <code>/api/</code> works without it.</p>`;
