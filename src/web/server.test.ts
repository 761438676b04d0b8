/**
 * The web API against a real server on an ephemeral 127.0.0.1 port with the bundled ref-llama-7m:
 * what each route answers, and that every malformed request gets the right 4xx with a message naming
 * the field — and that the server still answers afterwards.
 */
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AtlasFile } from '../atlas/file.js';
import { DEFAULT_MODEL } from '../cli/common.js';
import { Model } from '../runtime/model.js';
import type { GenerateResponse, JobStatus, ModelInfo, PatternResponse } from './api.js';
import { TaskQueue } from './engine.js';
import { startServer, type WebServer } from './server.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'headwise-api-'));
const PASS_KEY = 'Some filler text. The pass key is 2671627. Remember it. 2671627 is the pass key. More filler follows here. What is the pass key? The pass key is';

let model: Model;
let web: WebServer;
let url: string;
let atlasRuns = 0;

function atlasOf(layers: number, heads: number): AtlasFile {
  const grid = () => Array.from({ length: layers }, (_, l) => Array.from({ length: heads }, (_, h) => l * 0.1 + h * 0.01));
  return {
    format: 'headwise-atlas',
    version: 1,
    createdAt: new Date(0).toISOString(),
    model: { name: 'test', family: 'llama', layers, heads, kvHeads: heads, headDim: 64, vocab: 8192 },
    settings: {},
    metrics: { retrieval: grid() },
    metricInfo: { retrieval: { per: 'head', samples: 1, description: 'test' } },
  };
}

beforeAll(async () => {
  model = await Model.load(DEFAULT_MODEL);
  const appDir = path.join(tmp, 'app');
  fs.mkdirSync(path.join(appDir, 'assets'), { recursive: true });
  fs.writeFileSync(path.join(appDir, 'index.html'), '<!doctype html><title>app</title>');
  fs.writeFileSync(path.join(appDir, 'assets', 'a.js'), 'export {}');
  fs.writeFileSync(path.join(tmp, 'secret.txt'), 'TOP-SECRET-CONTENT');
  web = await startServer({
    model,
    appDir,
    log: () => undefined,
    runners: {
      atlas: async (ctx, report) => {
        atlasRuns++;
        for (let i = 0; i < 4; i++) {
          report(i / 4, `step ${i + 1} of 4`);
          await new Promise((r) => setTimeout(r, 30));
        }
        // The second run returns an atlas of the wrong shape: the job must fail, not the server.
        return atlasOf(ctx.model.config.numLayers, ctx.model.config.numHeads + (atlasRuns === 2 ? 1 : 0));
      },
    },
  });
  url = web.url;
});

afterAll(async () => {
  await web?.close();
  await model?.dispose();
});

async function request(method: string, route: string, body?: unknown, headers: Record<string, string> = {}): Promise<{ status: number; json: any; headers: Headers }> {
  const init: RequestInit = { method, headers: { ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...headers } };
  if (body !== undefined) init.body = typeof body === 'string' ? body : JSON.stringify(body);
  const res = await fetch(url + route, init);
  const text = await res.text();
  let json: any = null;
  try {
    json = JSON.parse(text);
  } catch {
    json = text;
  }
  return { status: res.status, json, headers: res.headers };
}

/** Sends raw bytes and returns the raw answer (for what fetch will not send). */
function raw(bytes: string | Buffer, waitMs = 3000): Promise<string> {
  const { port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = net.connect(Number(port), '127.0.0.1', () => socket.write(bytes));
    let out = '';
    socket.on('data', (d) => (out += d.toString()));
    socket.on('end', () => resolve(out));
    socket.on('error', (e) => (out ? resolve(out) : reject(e)));
    setTimeout(() => {
      socket.destroy();
      resolve(out);
    }, waitMs);
  });
}

async function expectError(p: Promise<{ status: number; json: any }>, status: number, message: RegExp): Promise<void> {
  const r = await p;
  expect(r.status, JSON.stringify(r.json)).toBe(status);
  expect(typeof r.json?.error).toBe('string');
  expect(r.json.error).toMatch(message);
}

describe('web API: what valid requests get', () => {
  it('GET /api/model gives the shape and limits', async () => {
    const r = await request('GET', '/api/model');
    expect(r.status).toBe(200);
    const m = r.json as ModelInfo;
    expect(m).toMatchObject({ name: 'ref-llama-7m', layers: 6, heads: 4, kvHeads: 4, headDim: 64, contextTokens: 2048, jobs: { atlas: true, niah: false } });
    expect(m.limits.maxBodyBytes).toBe(256 * 1024);
    expect(r.headers.get('content-type')).toMatch(/application\/json/);
  });

  it('POST /api/pattern gives a causal attention matrix whose rows sum to 1', async () => {
    const r = await request('POST', '/api/pattern', { prompt: 'The cat sat on the mat. The cat', layer: 2, head: 1 });
    expect(r.status).toBe(200);
    const p = r.json as PatternResponse;
    expect(p.tokens.length).toBe(p.ids.length);
    expect(p.tokens[0]).toBe('<|endoftext|>');
    expect(p.attention.length).toBe(p.tokens.length);
    p.attention.forEach((row, q) => {
      expect(row.length).toBe(p.tokens.length);
      expect(row.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 3);
      row.forEach((w, k) => k > q && expect(w).toBe(0));
    });
  });

  it('POST /api/generate ablating the top retrieval heads changes the pass-key answer', async () => {
    const r = await request('POST', '/api/generate', {
      prompt: PASS_KEY,
      maxNewTokens: 6,
      topK: 5,
      interventions: { version: 1, interventions: [{ op: 'ablate', heads: ['5:3', '5:1'] }] },
    });
    expect(r.status, JSON.stringify(r.json)).toBe(200);
    const g = r.json as GenerateResponse;
    expect(g.baseline.text).toContain('2671627');
    expect(g.intervened!.text).not.toContain('2671627');
    expect(g.baseline.topK).toHaveLength(5);
    expect(g.interventions[0]).toMatch(/ablate/);
    expect(g.promptTail).toMatch(/pass key is$/);
    // The union of both top-5 lists, each with its probability in both runs.
    expect(g.nextTokens.length).toBeGreaterThanOrEqual(5);
    for (const t of g.nextTokens) {
      expect(t.before).toBeGreaterThanOrEqual(0);
      expect(t.after).toBeGreaterThanOrEqual(0);
    }
    expect(g.nextTokens[0].before).toBeGreaterThan(0.5);
  });

  it('POST /api/generate without interventions runs once; PASTA on a text span and a bare list of interventions work', async () => {
    const plain = await request('POST', '/api/generate', { prompt: 'Once upon a time', maxNewTokens: 3 });
    expect(plain.status).toBe(200);
    expect(plain.json.intervened).toBeNull();
    expect(plain.json.nextTokens.every((t: { after: unknown }) => t.after === null)).toBe(true);
    const pasta = await request('POST', '/api/generate', {
      prompt: PASS_KEY,
      maxNewTokens: 3,
      interventions: [{ op: 'pasta', heads: '5:*', params: { alpha: 0.01, spans: [{ text: 'The pass key is 2671627.' }] } }],
    });
    expect(pasta.status, JSON.stringify(pasta.json)).toBe(200);
    expect(pasta.json.intervened.tokens).toHaveLength(3);
  });

  it('GET /api/examples offers a pass-key prompt with its top retrieval heads once an atlas exists', async () => {
    const r = await request('GET', '/api/examples');
    expect(r.status).toBe(200);
    expect(r.json[0].name).toBe('pass key');
    expect(r.json[0].prompt).toMatch(/pass key is$/);
  });

  it('an atlas job reports progress, then the atlas is served', async () => {
    await expectError(request('GET', '/api/atlas'), 404, /no atlas loaded/);
    const start = await request('POST', '/api/atlas/jobs', { quick: true });
    expect(start.status).toBe(202);
    const job = start.json as JobStatus;
    expect(job).toMatchObject({ kind: 'atlas', state: 'queued' });
    // A second job of the same kind while one runs is a conflict.
    await expectError(request('POST', '/api/atlas/jobs', {}), 409, /already running/);
    const seen = new Set<string>();
    let s = job;
    for (let i = 0; i < 100 && s.state !== 'done' && s.state !== 'failed'; i++) {
      await new Promise((r) => setTimeout(r, 20));
      s = (await request('GET', `/api/jobs/${job.id}`)).json;
      seen.add(s.message);
    }
    expect(s.state).toBe('done');
    expect(s.progress).toBe(1);
    expect([...seen].some((m) => /step \d of 4/.test(m))).toBe(true);
    const atlas = await request('GET', '/api/atlas');
    expect(atlas.status).toBe(200);
    expect(atlas.json).toMatchObject({ source: 'job', model: { layers: 6, heads: 4 } });
    expect(atlas.json.metrics.retrieval[5][3]).toBeCloseTo(0.53);
    const ex = await request('GET', '/api/examples');
    expect(ex.json[0].interventions.interventions[0].heads).toEqual(['5:3', '5:2']);
    expect(atlasRuns).toBe(1);

    // A runner whose result the server refuses: the job fails with the reason, the old atlas stays.
    const again = (await request('POST', '/api/atlas/jobs', {})).json as JobStatus;
    let t = again;
    for (let i = 0; i < 100 && t.state !== 'done' && t.state !== 'failed'; i++) {
      await new Promise((r) => setTimeout(r, 20));
      t = (await request('GET', `/api/jobs/${again.id}`)).json;
    }
    expect(t.state).toBe('failed');
    expect(t.error).toMatch(/atlas metric "retrieval" is not a 6 × 4 grid/);
    expect((await request('GET', '/api/atlas')).json.metrics.retrieval[5][3]).toBeCloseTo(0.53);
  });

  it('serves the app and its assets, and nothing outside its folder', async () => {
    const index = await fetch(url + '/');
    expect(index.status).toBe(200);
    expect(await index.text()).toContain('<title>app</title>');
    expect((await fetch(url + '/assets/a.js')).headers.get('content-type')).toMatch(/javascript/);
    for (const p of ['/../secret.txt', '/%2e%2e/secret.txt', '/assets/..%2f..%2fsecret.txt', '/..%5csecret.txt', '/nope.html', '/assets', '/%00']) {
      const r = await fetch(url + p);
      expect(r.status, p).toBe(404);
      expect(await r.text()).not.toContain('TOP-SECRET-CONTENT');
    }
    await expectError(request('POST', '/', {}), 405, /not allowed/);
  });

  it('runs concurrent requests one at a time, all answered', async () => {
    const rs = await Promise.all([0, 1, 2, 3].map((h) => request('POST', '/api/pattern', { prompt: 'one two three four', layer: 0, head: h })));
    expect(rs.map((r) => r.status)).toEqual([200, 200, 200, 200]);
    expect(rs.map((r) => r.json.head)).toEqual([0, 1, 2, 3]);
  });
});

describe('web API: malformed requests get a 4xx naming the problem', () => {
  const good = { prompt: 'hello there', layer: 0, head: 0 };

  it('routes and methods', async () => {
    await expectError(request('GET', '/api/nope'), 404, /no API route \/api\/nope/);
    await expectError(request('GET', '/api'), 404, /no API route/);
    const r = await request('GET', '/api/pattern');
    expect(r.status).toBe(405);
    expect(r.json.error).toMatch(/GET is not allowed on \/api\/pattern \(allowed: POST\)/);
    expect(r.headers.get('allow')).toBe('POST');
    await expectError(request('DELETE', '/api/model'), 405, /DELETE is not allowed/);
    await expectError(request('PUT', '/api/generate', good), 405, /PUT/);
  });

  it('bodies: not JSON, empty, wrong type, wrong content type, too large', async () => {
    await expectError(request('POST', '/api/pattern', '{"prompt": '), 400, /body is not valid JSON/);
    await expectError(request('POST', '/api/pattern', ''), 400, /body is empty/);
    await expectError(request('POST', '/api/pattern', '[1, 2]'), 400, /body must be a JSON object \(got an array\)/);
    await expectError(request('POST', '/api/pattern', 'null'), 400, /body must be a JSON object \(got null\)/);
    await expectError(request('POST', '/api/pattern', '"text"'), 400, /body must be a JSON object/);
    await expectError(request('POST', '/api/pattern', JSON.stringify(good), { 'content-type': 'text/plain' }), 415, /Content-Type: application\/json, got text\/plain/);
    await expectError(request('POST', '/api/pattern', { ...good, prompt: 'x'.repeat(300 * 1024) }), 413, /over the limit of 262144 bytes/);
  });

  it('a body larger than the limit without a Content-Length is cut off with 413', async () => {
    const chunk = 'x'.repeat(64 * 1024);
    const body = `{"prompt": "${chunk.repeat(5)}"}`;
    const lines = ['POST /api/pattern HTTP/1.1', 'Host: 127.0.0.1', 'Content-Type: application/json', 'Transfer-Encoding: chunked', 'Connection: close', '', ''];
    const answer = await raw(lines.join('\r\n') + `${body.length.toString(16)}\r\n${body}\r\n0\r\n\r\n`);
    expect(answer).toMatch(/^HTTP\/1.1 413/);
    expect(answer).toContain('over the limit');
  });

  it('pattern fields: missing, wrong type, out of range, unknown', async () => {
    await expectError(request('POST', '/api/pattern', { layer: 0, head: 0 }), 400, /^prompt: missing/);
    await expectError(request('POST', '/api/pattern', { ...good, prompt: 42 }), 400, /^prompt: must be a string \(got 42\)/);
    await expectError(request('POST', '/api/pattern', { ...good, prompt: '   ' }), 400, /^prompt: is empty/);
    await expectError(request('POST', '/api/pattern', { ...good, layer: 6 }), 400, /^layer: 6 is out of range \(model has 6 layers, 0 to 5\)/);
    await expectError(request('POST', '/api/pattern', { ...good, layer: -1 }), 400, /^layer: -1 is out of range/);
    await expectError(request('POST', '/api/pattern', { ...good, layer: 1.5 }), 400, /^layer: must be an integer \(got 1.5\)/);
    await expectError(request('POST', '/api/pattern', { ...good, layer: '1' }), 400, /^layer: must be an integer \(got "1"\)/);
    await expectError(request('POST', '/api/pattern', { ...good, layer: null }), 400, /^layer: must be an integer \(got null\)/);
    await expectError(request('POST', '/api/pattern', { ...good, head: 4 }), 400, /^head: 4 is out of range \(model has 4 heads per layer, 0 to 3\)/);
    await expectError(request('POST', '/api/pattern', { prompt: 'x', layer: 0 }), 400, /^head: missing/);
    await expectError(request('POST', '/api/pattern', { ...good, path: '/etc/passwd' }), 400, /^path: unknown field \(expected prompt, layer, head\)/);
    await expectError(request('POST', '/api/pattern', { ...good, prompt: 'word '.repeat(300) }), 400, /^prompt: is \d+ tokens long, the limit is 256/);
    await expectError(request('POST', '/api/pattern', { ...good, prompt: 'x'.repeat(70_000) }), 400, /^prompt: is 70000 characters long, the limit is 65536/);
  });

  it('generate fields: token counts, top-k, interventions', async () => {
    const p = { prompt: 'Once upon a time' };
    await expectError(request('POST', '/api/generate', { ...p, maxNewTokens: 0 }), 400, /^maxNewTokens: 0 is out of range \(expected 1 to 64\)/);
    await expectError(request('POST', '/api/generate', { ...p, maxNewTokens: 65 }), 400, /^maxNewTokens: 65 is out of range/);
    await expectError(request('POST', '/api/generate', { ...p, maxNewTokens: 'many' }), 400, /^maxNewTokens: must be an integer/);
    await expectError(request('POST', '/api/generate', { ...p, topK: 21 }), 400, /^topK: 21 is out of range \(expected 1 to 20\)/);
    await expectError(request('POST', '/api/generate', { ...p, temperature: 1 }), 400, /^temperature: unknown field/);
    await expectError(request('POST', '/api/generate', { prompt: 'word '.repeat(2100) }), 400, /^prompt: is \d+ tokens long, the limit is 2032 \(the model's context is 2048 tokens/);
    await expectError(request('POST', '/api/generate', { ...p, interventions: 'ablate everything' }), 400, /^interventions: spec: not valid JSON/);
    await expectError(request('POST', '/api/generate', { ...p, interventions: 7 }), 400, /^interventions: spec: must be/);
    await expectError(request('POST', '/api/generate', { ...p, interventions: [{ op: 'explode', heads: ['1:1'] }] }), 400, /^interventions: interventions\[0\]\.op/);
    await expectError(request('POST', '/api/generate', { ...p, interventions: [{ op: 'ablate', heads: ['9:0'] }] }), 400, /^interventions: interventions\[0\]\.heads.*out of range/);
    await expectError(request('POST', '/api/generate', { ...p, interventions: [{ op: 'ablate', heads: [] }] }), 400, /^interventions: interventions\[0\]\.heads/);
    await expectError(request('POST', '/api/generate', { ...p, interventions: [{ op: 'steer', heads: ['1:1'], params: { alpha: 1, vector: [1, 2] } }] }), 400, /^interventions: interventions\[0\]\.params\.vector/);
    await expectError(request('POST', '/api/generate', { ...p, interventions: { version: 2, interventions: [] } }), 400, /^interventions: version/);
    // Only the prompt can show this one: the span text does not occur in it.
    await expectError(
      request('POST', '/api/generate', { ...p, interventions: [{ op: 'pasta', heads: ['1:1'], params: { spans: [{ text: 'not in the prompt' }] } }] }),
      400,
      /^interventions: interventions\[0\]\.params\.spans\[0\]\.text: "not in the prompt" does not occur in the prompt/,
    );
  });

  it('jobs: bad ids, unknown ids, bad options, kinds this server cannot run', async () => {
    // fetch resolves the dots, so this asks for /etc/passwd: not a file of the app.
    await expectError(request('GET', '/api/jobs/../../etc/passwd'), 404, /not found/);
    await expectError(request('GET', '/api/jobs/not-a-job%20id'), 400, /^id: "not-a-job id" is not a job id/);
    await expectError(request('GET', '/api/jobs/00000000-0000-0000-0000-000000000000'), 404, /no job with id/);
    await expectError(request('POST', '/api/atlas/jobs', { quick: 'yes' }), 400, /^quick: must be true or false/);
    await expectError(request('POST', '/api/atlas/jobs', { file: '/tmp/atlas.json' }), 400, /^file: unknown field \(expected quick\)/);
    await expectError(request('POST', '/api/niah/jobs', {}), 404, /niah jobs are not available/);
    await expectError(request('GET', '/api/niah'), 404, /no needle results/);
  });

  it('a page on another host name is refused (DNS rebinding)', async () => {
    const answer = await raw('GET /api/model HTTP/1.1\r\nHost: evil.example:80\r\nConnection: close\r\n\r\n');
    expect(answer).toMatch(/^HTTP\/1.1 403/);
    expect(answer).toContain('is not this server');
  });

  it('malformed HTTP gets 400 and does not take the server down', async () => {
    const answer = await raw('THIS IS NOT HTTP\r\n\r\n');
    expect(answer).toMatch(/^HTTP\/1.1 400/);
    const half = await raw('POST /api/pattern HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 50\r\n\r\n{"prompt":', 300);
    expect(typeof half).toBe('string');
  });

  it('random bodies (fuzzing) get 200 or a 4xx with a message, never a 5xx', async () => {
    // A seeded generator so a failure can be replayed.
    let seed = 12345;
    const rand = () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32);
    const pick = <T,>(xs: T[]): T => xs[Math.floor(rand() * xs.length)];
    const values: unknown[] = [null, true, false, 0, 1, 2, -1, 1.5, 5, 2 ** 53, -0, '', ' ', 'hi', '5:3', '9:9', '\u0000', 'é🙂', [], [1], {}, { op: 'ablate' }, [{ op: 'ablate', heads: ['5:3'] }], [{ op: 'scale', heads: '*:*', params: { factor: 1e308 } }], { version: 1, interventions: [] }];
    const keys = ['prompt', 'layer', 'head', 'maxNewTokens', 'topK', 'interventions', 'quick', 'constructor', '__proto__', 'x'];
    const fields: Record<string, string[]> = { '/api/pattern': ['prompt', 'layer', 'head'], '/api/generate': ['prompt', 'maxNewTokens', 'topK', 'interventions'] };
    const body = (route: string): string => {
      const r = rand();
      if (r < 0.1) return pick(['', '{', '[]', 'null', '"s"', '{"prompt":}', '{"a":1,}', '\\u0000']);
      const o: Record<string, unknown> = {};
      // Mostly the route's own fields, so bodies get past the unknown-field check and reach the model.
      const pool = rand() < 0.8 ? fields[route] : keys;
      for (const k of pool) {
        if (rand() > (k === 'prompt' ? 0.9 : 0.5)) continue;
        if (k === 'prompt') o[k] = rand() < 0.7 ? 'hi there' : pick(values);
        else if (k === 'maxNewTokens') o[k] = rand() < 0.5 ? pick([1, 2]) : pick(values);
        else if (k === 'layer' || k === 'head') o[k] = rand() < 0.5 ? pick([0, 1, 3]) : pick(values);
        else o[k] = pick(values);
      }
      return JSON.stringify(o);
    };
    const seen = new Map<number, number>();
    for (let i = 0; i < 120; i++) {
      const route = pick(Object.keys(fields));
      const text = body(route);
      const r = await request('POST', route, text);
      seen.set(r.status, (seen.get(r.status) ?? 0) + 1);
      expect([200, 400], `${route} ${text} → ${r.status} ${JSON.stringify(r.json)}`).toContain(r.status);
      if (r.status !== 200) expect(r.json.error, text).toMatch(/\w/);
    }
    expect(seen.get(400)).toBeGreaterThan(40);
    expect(seen.get(200)).toBeGreaterThan(3);
  });

  it('the server still answers after all of the above', async () => {
    const r = await request('GET', '/api/model');
    expect(r.status).toBe(200);
    const p = await request('POST', '/api/pattern', good);
    expect(p.status).toBe(200);
  });
});

describe('TaskQueue', () => {
  it('runs tasks in order, one at a time, and refuses work past maxPending', async () => {
    const q = new TaskQueue(2);
    const order: string[] = [];
    let running = 0;
    const task = (name: string) => async () => {
      running++;
      expect(running).toBe(1);
      await new Promise((r) => setTimeout(r, 10));
      order.push(name);
      running--;
      return name;
    };
    const a = q.run(task('a'));
    const b = q.run(task('b'));
    await expect(q.run(task('c'))).rejects.toThrow(/busy/);
    expect(await Promise.all([a, b])).toEqual(['a', 'b']);
    expect(order).toEqual(['a', 'b']);
    // A failing task does not block the next.
    await expect(q.run(async () => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
    expect(await q.run(async () => 'after')).toBe('after');
  });
});
