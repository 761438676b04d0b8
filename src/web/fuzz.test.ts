/**
 * A seeded fuzz suite for the server's HTTP surface, on one real server (bundled ref-llama-7m,
 * ephemeral 127.0.0.1 port, short transport timeouts). Two halves:
 * - raw sockets: mutated request lines, headers, lengths and chunked bodies, oversize and partial
 *   (slow) requests — what a browser would never send;
 * - fetch: JSON bodies for every route with fields deleted, retyped, huge, deeply nested, unicode,
 *   and intervention specs with random ops, heads and parameters.
 * Every case asserts: a whole answer arrives within a bound, its status is 2xx or 4xx (503 only as
 * documented: the engine's queue is full, with Retry-After), a 4xx body is JSON `{error}` with a
 * message, no answer contains a stack trace, and the server still answers afterwards.
 * `HEADWISE_FUZZ_SEED` replays another campaign; a failure message carries the case's bytes.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_MODEL } from '../cli/common.js';
import { DEFAULT_SESSION_LIMITS, Model } from '../runtime/model.js';
import { rawRequest, STACK_TRACE, type RawAnswer } from './rawClient.js';
import { startServer, type TransportTimeouts, type WebServer } from './server.js';
import { mulberry32 } from '../eval/random.js';

const SEED = Number(process.env.HEADWISE_FUZZ_SEED ?? 20261202);
const RAW_CASES = 1800;
const JSON_CASES = 1300;
const TIMEOUTS: TransportTimeouts = { headersMs: 1000, requestMs: 2000, keepAliveMs: 1000 };
/** Longest any raw answer may take: the request timeout, one check interval, and slack for a busy machine. */
const RAW_BOUND_MS = TIMEOUTS.requestMs + 1000 + 3000;
const FETCH_BOUND_MS = 30_000;

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'headwise-fuzz-'));
let model: Model;
let web: WebServer;
let port: number;
const statuses = new Map<string, number>();

beforeAll(async () => {
  model = await Model.load(DEFAULT_MODEL, { threads: 1 });
  const appDir = path.join(tmp, 'app');
  fs.mkdirSync(path.join(appDir, 'assets'), { recursive: true });
  fs.writeFileSync(path.join(appDir, 'index.html'), '<!doctype html><title>app</title>');
  fs.writeFileSync(path.join(appDir, 'assets', 'a.js'), 'export {}');
  web = await startServer({ model, appDir, timeouts: TIMEOUTS, log: () => undefined });
  port = Number(new URL(web.url).port);
});

afterAll(async () => {
  await web?.close();
  await model?.dispose();
  fs.rmSync(tmp, { recursive: true, force: true });
  const counts = [...statuses].sort().map(([k, n]) => `${k}: ${n}`).join(', ');
  console.log(`http fuzz (seed ${SEED}): ${RAW_CASES} raw + ${JSON_CASES} fetch cases; ${counts}`);
});

/** Runs `cases` with at most `width` in flight. */
async function pool<T>(cases: T[], width: number, run: (c: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: width }, async () => {
      while (next < cases.length) await run(cases[next++]);
    }),
  );
}

/** The rules every answer follows, whatever was asked; counts statuses into `seen`. */
function checkAnswer(seen: Map<number, number>, what: string, status: number, contentType: string, body: string, retryAfter: string | undefined, head: boolean): void {
  statuses.set(String(status), (statuses.get(String(status)) ?? 0) + 1);
  seen.set(status, (seen.get(status) ?? 0) + 1);
  const ok = (status >= 200 && status < 300) || (status >= 400 && status < 500) || (status === 503 && retryAfter !== undefined);
  expect(ok, `${what} → ${status} ${body.slice(0, 300)}`).toBe(true);
  expect(body, what).not.toMatch(STACK_TRACE);
  if (status >= 400 && !head) {
    expect(contentType, `${what} → ${status}`).toMatch(/^application\/json/);
    let error: unknown;
    try {
      error = JSON.parse(body).error;
    } catch {
      error = undefined;
    }
    expect(typeof error === 'string' && /\w/.test(error), `${what} → ${status} ${body.slice(0, 300)}`).toBe(true);
    if (status === 503) expect(error).toMatch(/busy/);
  }
}

async function stillUp(): Promise<void> {
  const res = await fetch(`${web.url}/api/model`);
  expect(res.status).toBe(200);
  await res.arrayBuffer();
}

// ---------------------------------------------------------------- raw sockets

interface RawCase {
  bytes: Buffer;
  pieces?: Buffer[];
  head: boolean;
  readAfterWrite?: boolean;
}

function rawCases(next: () => number): RawCase[] {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(next() * xs.length)];
  const chance = (p: number) => next() < p;
  const methods = ['GET', 'GET', 'POST', 'POST', 'HEAD', 'PUT', 'DELETE', 'OPTIONS', 'PATCH', 'TRACE', 'CONNECT', 'get', 'G ET', '', 'X'.repeat(300), 'ÄÖ', 'GET\0', 'PRI', 'M-SEARCH', 'PROPFIND'];
  const targets = [
    '/', '/api/model', '/api/model', '/api/generate', '/api/pattern', '/api/atlas', '/api/niah', '/api/examples', '/api/atlas/jobs',
    '/api/jobs/0c8f7d3e-1111-4222-8333-444455556666', '/api/jobs/%', '/api/jobs/../../x', '/api/%', '/api/%zz', '/api', '/api/',
    '/../../etc/passwd', '/%2e%2e/%2e%2e/secret', '/assets/a.js', '/assets/../index.html', '/index.html%00', '*',
    'http://127.0.0.1/api/model', 'http://evil.example/api/model', '//api/model', '/api/model?x=' + 'q'.repeat(3000),
    '/' + 'a'.repeat(9000), '/é', '/\x7f', '/api/model#frag', '', ' /', '/a b', '/api/model?%', '/\u0000',
  ];
  const versions = ['HTTP/1.1', 'HTTP/1.1', 'HTTP/1.1', 'HTTP/1.0', 'HTTP/2.0', 'HTTP/1.2', 'HTTP/9.9', 'http/1.1', 'HTTP/1', '', 'HTTP/1.1 extra', 'HTTP/1.1\0'];
  const hosts = ['Host: 127.0.0.1', 'Host: 127.0.0.1', 'Host: 127.0.0.1', 'Host: localhost:1', 'Host: [::1]', 'Host: evil.example', 'Host:', 'Host: 127.0.0.1\r\nHost: evil.example', ''];
  const jsonBodies = ['{"prompt":"hi","layer":0,"head":0}', '{"prompt":"hi","maxNewTokens":1}', '{}', '{', '[]', 'null', '{"prompt":"\\ud800"}', '\ufeff{}', '{"a":' + '['.repeat(500) + ']'.repeat(500) + '}', ''];
  const extraHeaders = [
    'Content-Type: application/json', 'Content-Type: text/plain', 'Content-Type: application/json; charset=utf-16', 'Content-Type: APPLICATION/JSON',
    'Connection: close', 'Connection: keep-alive', 'Connection: upgrade\r\nUpgrade: websocket', 'Upgrade: h2c\r\nConnection: Upgrade, HTTP2-Settings',
    'Expect: 100-continue', 'Expect: tea', 'Transfer-Encoding: gzip', 'Transfer-Encoding: chunked, chunked', 'Content-Length: -1', 'Content-Length: 1e3',
    'Content-Length: 99999999999999999999', 'Content-Length: 5\r\nContent-Length: 6', 'Content-Length:  3 ', 'Bad Header: x', 'X-A : b', ': nameless',
    'X-Fold: a\r\n  folded', 'X-Nul: a\0b', `X-Big: ${'b'.repeat(20_000)}`, Array.from({ length: 150 }, (_, i) => `X-H${i}: ${i}`).join('\r\n'),
    'Cookie: ' + 'c=1; '.repeat(200), 'Accept: */*', 'Range: bytes=0-1', 'If-None-Match: *', 'X-Ünï: çödé', 'Authorization: Basic Og==',
  ];
  const cases: RawCase[] = [];
  for (let i = 0; i < RAW_CASES; i++) {
    if (chance(0.03)) {
      // A well-formed request whose body is over the limit (300 KB to 3 MB), told by length or chunked.
      const big = Buffer.alloc(300_000 + Math.floor(next() * 3_000_000), 0x20);
      const head = `POST ${pick(['/api/generate', '/api/pattern'])} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n`;
      const bytes = chance(0.5)
        ? Buffer.concat([Buffer.from(`${head}Content-Length: ${big.length}\r\n\r\n`), big])
        : Buffer.concat([Buffer.from(`${head}Transfer-Encoding: chunked\r\n\r\n${big.length.toString(16)}\r\n`), big, Buffer.from('\r\n0\r\n\r\n')]);
      cases.push({ bytes, head: false, readAfterWrite: chance(0.5) });
      continue;
    }
    const method = pick(methods);
    const eol = chance(0.05) ? '\n' : '\r\n';
    const lines = [`${method} ${pick(targets)} ${pick(versions)}`];
    if (chance(0.03)) lines[0] = pick(['', '\r\n\r\n', '\r\n\r\n\r\n\r\n', 'GET', '\u0016\u0003\u0001\u0000', 'SSH-2.0-x', '{"prompt":"hi"}']);
    const host = pick(hosts);
    if (host) lines.push(host);
    for (let k = Math.floor(next() * 3); k > 0; k--) lines.push(pick(extraHeaders));
    // The body, and how its length is told (or lied about).
    let body = chance(0.5) ? pick(jsonBodies) : '';
    if (chance(0.04)) {
      body = '{"prompt":"' + 'x'.repeat(300_000) + '"}';
      lines.push('Content-Type: application/json');
    }
    const framing = next();
    if (framing < 0.5) {
      if (body) lines.push(`Content-Length: ${Buffer.byteLength(body) + (chance(0.15) ? pick([-3, -1, 1, 50]) : 0)}`);
    } else if (framing < 0.75 && body) {
      lines.push('Transfer-Encoding: chunked');
      const size = chance(0.85) ? Buffer.byteLength(body).toString(16) : pick(['zz', '-1', 'ffffffffffffffffff', '1;ext=' + 'e'.repeat(20_000), '']);
      body = `${size}\r\n${body}\r\n` + pick(['0\r\n\r\n', '0\r\n\r\n', '0\r\nX-Trailer: 1\r\n\r\n', '', '0\r\n', 'x\r\n\r\n']);
    } else if (framing < 0.85 && body) {
      lines.push(`Content-Length: ${Buffer.byteLength(body)}`, 'Transfer-Encoding: chunked');
    }
    const text = lines.join(eol) + eol + eol + body;
    let bytes = Buffer.from(text, 'latin1');
    if (chance(0.03)) bytes = Buffer.from(Array.from({ length: 1 + Math.floor(next() * 200) }, () => Math.floor(next() * 256)));
    // Some stop half-way and wait (the server's timeouts must answer), some arrive slowly in pieces.
    if (chance(0.04)) bytes = bytes.subarray(0, Math.floor(next() * bytes.length));
    let pieces: Buffer[] | undefined;
    if (chance(0.04)) {
      const cuts = [0, ...Array.from({ length: 3 }, () => Math.floor(next() * bytes.length)).sort((a, b) => a - b), bytes.length];
      pieces = cuts.slice(1).map((end, j) => bytes.subarray(cuts[j], end));
    }
    cases.push({ bytes, pieces, head: method === 'HEAD' });
  }
  return cases;
}

function checkRaw(seen: Map<number, number>, c: RawCase, r: RawAnswer): void {
  const what = JSON.stringify(c.bytes.toString('latin1').slice(0, 400));
  expect(r.outcome, `${what}: ${r.outcome} after ${Math.round(r.ms)} ms, got ${JSON.stringify(r.text.slice(0, 200))}`).toBe('answer');
  expect(r.ms, what).toBeLessThan(RAW_BOUND_MS);
  checkAnswer(seen, what, r.status, r.headers['content-type'] ?? '', r.body, r.headers['retry-after'], c.head);
}

// ---------------------------------------------------------------- JSON bodies over fetch

interface JsonCase {
  route: string;
  method: string;
  body: string | undefined;
  contentType: string | undefined;
}

function jsonCases(next: () => number, shape: { layers: number; heads: number; headDim: number }): JsonCase[] {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(next() * xs.length)];
  const chance = (p: number) => next() < p;
  const int = (n: number) => Math.floor(next() * n);
  const deep = (n: number): unknown => {
    let v: unknown = pick([1, 'x', null, []]);
    for (let i = 0; i < n; i++) v = chance(0.5) ? [v] : { a: v };
    return v;
  };
  const weird = (): unknown =>
    pick([
      null, true, false, 0, -0, 1, -1, 1.5, 7, 63, 64, 65, 2 ** 31, 2 ** 53, 2 ** 53 + 2, -(2 ** 53), 1e308, -1e308, 5e-324, 1e21,
      '', ' ', '0', '1', 'NaN', 'Infinity', '1e3', '5:3', '*:*', '9:9', '-1:0', '0:-1', ':', '\u0000', 'é🙂', '\ud800', '\udfff\ud800', '\u202e', 'a'.repeat(70_000),
      [], [1], [null], {}, { __proto__: 1 }, { constructor: 1 }, Array.from({ length: 2000 }, (_, i) => i), deep(1 + int(40)), deep(65 + int(200)),
    ]);
  const heads = (): unknown =>
    chance(0.7)
      ? Array.from({ length: 1 + int(3) }, () => (chance(0.15) ? `${int(shape.layers)}:*` : chance(0.1) ? { layer: int(shape.layers), head: int(shape.heads) } : `${int(shape.layers)}:${int(shape.heads)}`))
      : pick(['*:*', '0:0,1:1', `${shape.layers}:0`, '0:0,', '', 'x', weird()]);
  const params = (op: string): unknown => {
    const p: Record<string, unknown> = {};
    if (op === 'ablate' && chance(0.5)) p.mode = pick(['zero', 'mean', 'other', weird()]);
    if (op === 'scale') p.factor = chance(0.7) ? Math.round(next() * 300) / 100 : weird();
    if (op === 'pasta') {
      p.alpha = chance(0.7) ? 0.01 + Math.round(next() * 90) / 100 : weird();
      p.spans = chance(0.7) ? [pick([{ tokens: [0, 2] }, { text: 'Lily' }, { chars: [0, 4] }, { text: 'absent' }, { tokens: [5, 1] }, { tokens: [0, 1e9] }])] : weird();
    }
    if (op === 'act') Object.assign(p, chance(0.6) ? { tau: 0.1, beta: 0.4 } : { tau: weird(), minQueries: weird() });
    if (op === 'steer') Object.assign(p, { alpha: chance(0.8) ? 0.5 : weird(), vector: chance(0.7) ? Array.from({ length: shape.headDim }, () => next() - 0.5) : weird() });
    if (chance(0.05)) p[pick(['unknown', '__proto__', 'constructor'])] = 1;
    return p;
  };
  const intervention = (): unknown => {
    const op = chance(0.92) ? pick(['ablate', 'scale', 'pasta', 'act', 'steer']) : pick(['ABLATE', 'noop', '', weird()]);
    const out: Record<string, unknown> = { op, heads: heads(), params: params(String(op)) };
    if (chance(0.1)) delete out[pick(['op', 'heads', 'params'])];
    if (chance(0.05)) out.note = weird();
    return out;
  };
  const interventions = (): unknown => {
    const list = Array.from({ length: int(3) }, intervention);
    if (chance(0.5)) return list;
    const spec: Record<string, unknown> = { version: chance(0.9) ? 1 : weird(), interventions: list };
    if (chance(0.1)) spec.note = weird();
    return spec;
  };
  const prompt = () => (chance(0.8) ? pick(['Once upon a time, Lily', 'hi', 'The cat sat on the mat.', 'é🙂 ünïcode ✓', '\u0000\u0001 control']) : weird());
  const valid: Record<string, () => Record<string, unknown>> = {
    '/api/pattern': () => ({ prompt: prompt(), layer: int(shape.layers), head: int(shape.heads) }),
    '/api/generate': () => ({ prompt: prompt(), maxNewTokens: 1 + int(3), topK: 1 + int(5), ...(chance(0.7) ? { interventions: interventions() } : {}) }),
    '/api/atlas/jobs': () => ({ quick: chance(0.5) }),
    '/api/niah/jobs': () => ({}),
  };
  const cases: JsonCase[] = [];
  for (let i = 0; i < JSON_CASES; i++) {
    const r = next();
    if (r < 0.06) {
      // GET routes, ids and methods.
      const route = pick(['/api/model', '/api/atlas', '/api/niah', '/api/examples', `/api/jobs/${pick(['x', '0c8f7d3e-1111-4222-8333-444455556666', '%E2%9C%93', 'a'.repeat(500)])}`, '/api/pattern']);
      cases.push({ route, method: pick(['GET', 'GET', 'DELETE', 'PUT', 'POST']), body: undefined, contentType: undefined });
      continue;
    }
    const route = pick(['/api/pattern', '/api/generate', '/api/generate', '/api/generate', '/api/atlas/jobs', '/api/niah/jobs']);
    const body = valid[route]();
    // Mutate: delete, retype, add an unknown field, replace the whole body.
    for (let k = int(3); k > 0; k--) {
      const keys = Object.keys(body);
      const m = next();
      if (m < 0.25 && keys.length) delete body[pick(keys)];
      else if (m < 0.8 && keys.length) body[pick(keys)] = weird();
      else body[pick(['x', 'Prompt', '__proto__', 'constructor', 'toString', ''])] = weird();
    }
    let text: string = JSON.stringify(chance(0.04) ? weird() : body);
    if (chance(0.05)) text = pick([text.slice(0, Math.floor(next() * text.length)), text + '}', text + ' trailing', '\ufeff' + text, text.replace(/"/, "'"), '']);
    const contentType = chance(0.06) ? pick([undefined, 'text/plain', 'application/json; charset=utf-16', 'APPLICATION/JSON', 'application/x-www-form-urlencoded', 'multipart/form-data']) : 'application/json';
    cases.push({ route, method: 'POST', body: text, contentType });
  }
  return cases;
}

describe('HTTP fuzz (seeded)', () => {
  it(`${RAW_CASES} raw requests: malformed lines, headers, lengths, chunks, oversize and partial requests all get a JSON answer in time`, async () => {
    const cases = rawCases(mulberry32(SEED));
    const seen = new Map<number, number>();
    for (let start = 0; start < cases.length; start += 300) {
      await pool(cases.slice(start, start + 300), 24, async (c) => checkRaw(seen, c, await rawRequest(port, c.bytes, { pieces: c.pieces, pieceDelayMs: 300, timeoutMs: RAW_BOUND_MS, head: c.head, readAfterWrite: c.readAfterWrite })));
      await stillUp();
    }
    // The campaign reaches every layer: served requests, refused bodies, timeouts, parser errors.
    for (const status of [200, 400, 404, 405, 408, 413, 431]) expect(seen.get(status) ?? 0, `answers with ${status}`).toBeGreaterThan(0);
  }, 120_000);

  it(`${JSON_CASES} JSON requests with mutated fields, types, nesting and intervention specs get 2xx or a 4xx with a message`, async () => {
    const info = (await (await fetch(`${web.url}/api/model`)).json()) as { layers: number; heads: number; headDim: number };
    const cases = jsonCases(mulberry32(SEED + 1), info);
    const seen = new Map<number, number>();
    for (let start = 0; start < cases.length; start += 200) {
      await pool(cases.slice(start, start + 200), 4, async (c) => {
        const what = `${c.method} ${c.route} ${c.contentType ?? '(no type)'} ${JSON.stringify((c.body ?? '').slice(0, 400))}`;
        const res = await fetch(web.url + c.route, {
          method: c.method,
          headers: c.contentType ? { 'content-type': c.contentType } : {},
          body: c.body,
          signal: AbortSignal.timeout(FETCH_BOUND_MS),
        });
        checkAnswer(seen, what, res.status, res.headers.get('content-type') ?? '', await res.text(), res.headers.get('retry-after') ?? undefined, false);
      });
      await stillUp();
    }
    // Enough valid bodies reach the model (generations under interventions included), not only the checks.
    expect(seen.get(200) ?? 0).toBeGreaterThan(100);
    expect(seen.get(400) ?? 0).toBeGreaterThan(300);
    // Many hook sets went through the engine; the session LRU kept its bound (issue 11 item 9).
    const sessions = model.sessionStats();
    expect(sessions.evictions).toBeGreaterThan(0);
    expect(sessions.entries).toBeLessThanOrEqual(DEFAULT_SESSION_LIMITS.maxEntries);
    expect(sessions.pinned).toBe(0);
  }, 180_000);
});
