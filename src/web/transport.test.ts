/**
 * The server's transport on a real server (bundled ref-llama-7m, ephemeral 127.0.0.1 port): which
 * hosts it binds, and that every request gets an answer — the regressions of issue 11, items 2 and 8,
 * each under its own name. The fuzz suite (`fuzz.test.ts`) covers the same rules at random.
 */
import net from 'node:net';
import { CommanderError } from 'commander';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { serveCommand } from '../cli/serve.js';
import { DEFAULT_MODEL } from '../cli/common.js';
import { Model } from '../runtime/model.js';
import { hostOfHeader, isLoopbackHost, jsonDepth } from './http.js';
import { rawRequest, STACK_TRACE, type RawAnswer } from './rawClient.js';
import { startServer, type WebServer } from './server.js';

let model: Model;
let web: WebServer;
let port: number;

beforeAll(async () => {
  model = await Model.load(DEFAULT_MODEL, { threads: 1 });
  web = await startServer({ model, log: () => undefined, timeouts: { headersMs: 1000, requestMs: 2000, keepAliveMs: 1000 } });
  port = Number(new URL(web.url).port);
});

afterAll(async () => {
  await web?.close();
  await model?.dispose();
});

const HOST = 'Host: 127.0.0.1\r\n';

function expectJsonError(r: RawAnswer, status: number, message?: RegExp): void {
  expect(r.outcome, r.text).toBe('answer');
  expect(r.status, r.text).toBe(status);
  expect(r.headers['content-type']).toMatch(/^application\/json/);
  const body = JSON.parse(r.body);
  expect(typeof body.error).toBe('string');
  if (message) expect(body.error).toMatch(message);
  expect(r.body).not.toMatch(STACK_TRACE);
}

/** Runs `headwise serve` with `args` in-process up to its flag checks; returns the exit code and stderr. */
async function serveExit(args: string[]): Promise<{ code: number; stderr: string }> {
  let stderr = '';
  const cmd = serveCommand()
    .exitOverride()
    .configureOutput({ writeErr: (s) => (stderr += s), outputError: (s, write) => write(s) });
  try {
    await cmd.parseAsync(args, { from: 'user' });
  } catch (e) {
    if (e instanceof CommanderError) return { code: e.exitCode, stderr };
    throw e;
  }
  return { code: 0, stderr };
}

describe('issue 11 item 2: serve binds loopback only unless told otherwise', () => {
  it('serve --host "" is a usage error (exit 2), not a server on every interface', async () => {
    const r = await serveExit(['--host', '']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--host is empty/);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
  });

  it('a non-loopback --host without --allow-remote is a usage error (exit 2), before the model loads', async () => {
    for (const host of ['0.0.0.0', '::', '10.1.2.3', 'example.com']) {
      const r = await serveExit(['--host', host, '--model', '/nonexistent']);
      expect(r.code, host).toBe(2);
      expect(r.stderr).toMatch(/not a loopback address.*--allow-remote/);
    }
  });

  it('startServer refuses an empty or non-loopback host unless allowRemote', async () => {
    await expect(startServer({ model, host: '' })).rejects.toThrow(/host: empty/);
    await expect(startServer({ model, host: '  ' })).rejects.toThrow(/host: empty/);
    await expect(startServer({ model, host: '0.0.0.0' })).rejects.toThrow(/not a loopback address/);
    const open = await startServer({ model, host: '0.0.0.0', allowRemote: true, log: () => undefined });
    try {
      // Remote mode has no DNS-rebinding check: any Host is served.
      const r = await rawRequest(Number(new URL(open.url).port), `GET /api/model HTTP/1.1\r\nHost: example.com\r\n\r\n`);
      expect(r.status).toBe(200);
    } finally {
      await open.close();
    }
  });

  it('::ffff:127.0.0.1 is loopback: it binds, and its Host header passes the rebinding check', async () => {
    const mapped = await startServer({ model, host: '::ffff:127.0.0.1', log: () => undefined });
    try {
      expect(mapped.url).toMatch(/^http:\/\/\[::ffff:127\.0\.0\.1\]:\d+$/);
      const p = Number(new URL(mapped.url).port);
      expect((await rawRequest(p, `GET /api/model HTTP/1.1\r\nHost: [::ffff:127.0.0.1]:${p}\r\n\r\n`)).status).toBe(200);
      expect((await rawRequest(p, `GET /api/model HTTP/1.1\r\nHost: 127.0.0.1:${p}\r\n\r\n`)).status).toBe(200);
      expectJsonError(await rawRequest(p, `GET /api/model HTTP/1.1\r\nHost: evil.example:${p}\r\n\r\n`), 403, /is not this server/);
    } finally {
      await mapped.close();
    }
  });

  it('isLoopbackHost: every spelling of loopback, nothing else', () => {
    for (const h of ['127.0.0.1', '127.1.2.3', 'localhost', 'LOCALHOST', 'a.localhost', '::1', '[::1]', '0:0:0:0:0:0:0:1', '::ffff:127.0.0.1', '[::ffff:127.0.0.1]', '::ffff:7f00:1']) {
      expect(isLoopbackHost(h), h).toBe(true);
    }
    for (const h of ['', ' ', '0.0.0.0', '::', '[::]', '10.0.0.1', '::ffff:10.0.0.1', '::2', '128.0.0.1', 'localhost.evil.com', 'evil.example', '127.0.0.1.nip.io', '[::1']) {
      expect(isLoopbackHost(h), h).toBe(false);
    }
    expect(hostOfHeader('[::1]:8080')).toBe('[::1]');
    expect(hostOfHeader('127.0.0.1:80')).toBe('127.0.0.1');
    expect(hostOfHeader('localhost')).toBe('localhost');
  });
});

describe('issue 11 item 8: one request handling that always answers', () => {
  it('CONNECT gets 405 with a JSON message', async () => {
    expectJsonError(await rawRequest(port, `CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n`), 405, /not a proxy/);
  });

  it('a request of only \\r\\n\\r\\n\\r\\n gets 400 at once (no wait for a timeout)', async () => {
    const r = await rawRequest(port, '\r\n\r\n\r\n', { timeoutMs: 3000 });
    expectJsonError(r, 400, /empty lines/);
    expect(r.ms).toBeLessThan(900); // under the 1 s header timeout of this server: the guard answered, not the timeout
    // One leading empty line before a request is allowed (RFC 9112 §2.2).
    expect((await rawRequest(port, `\r\nGET /api/model HTTP/1.1\r\n${HOST}\r\n`)).status).toBe(200);
  });

  it('a connection that sends nothing, or headers too slowly, gets 408 within the header timeout', async () => {
    const idle = await rawRequest(port, '', { timeoutMs: 4000 });
    expectJsonError(idle, 408);
    const slow = await rawRequest(port, '', { pieces: ['GET /api/model HTTP/1.1\r\n', 'X-A: 1\r\n', 'X-B: 1\r\n', 'X-C: 1\r\n'], pieceDelayMs: 500, timeoutMs: 5000 });
    expectJsonError(slow, 408);
  });

  it('a 10 MB body gets a 413 status line that a client writing the whole body receives', async () => {
    const body = Buffer.alloc(10 * 1024 * 1024, 0x20);
    const declared = await rawRequest(
      port,
      Buffer.concat([Buffer.from(`POST /api/generate HTTP/1.1\r\n${HOST}Content-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n`), body]),
      { timeoutMs: 10_000, readAfterWrite: true },
    );
    expectJsonError(declared, 413, /over the limit/);
    // Chunked, no length to refuse up front: cut off while streaming.
    const chunks = [Buffer.from(`POST /api/generate HTTP/1.1\r\n${HOST}Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n`)];
    for (let i = 0; i < 10; i++) chunks.push(Buffer.from(`100000\r\n`), body.subarray(0, 0x100000), Buffer.from('\r\n'));
    chunks.push(Buffer.from('0\r\n\r\n'));
    expectJsonError(await rawRequest(port, Buffer.concat(chunks), { timeoutMs: 10_000, readAfterWrite: true }), 413, /over the limit/);
    // Same with fetch, which also writes it all before reading.
    const res = await fetch(`${web.url}/api/generate`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
    expect(res.status).toBe(413);
    expect((await res.json()).error).toMatch(/over the limit/);
  });

  it('HEAD answers with the headers of GET (content-length included) and no body', async () => {
    for (const route of ['/api/model', '/api/examples', '/', '/api/atlas', '/nope']) {
      const get = await rawRequest(port, `GET ${route} HTTP/1.1\r\n${HOST}\r\n`);
      const head = await rawRequest(port, `HEAD ${route} HTTP/1.1\r\n${HOST}Connection: close\r\n\r\n`, { head: true });
      expect(head.status, route).toBe(get.status);
      expect(head.headers['content-length'], route).toBe(get.headers['content-length']);
      expect(head.headers['content-type'], route).toBe(get.headers['content-type']);
      expect(Number(get.headers['content-length'])).toBeGreaterThan(0);
      // Nothing after the blank line, even though the connection stayed until closed.
      expect(head.text.slice(head.text.indexOf('\r\n\r\n') + 4), route).toBe('');
    }
  });

  it('what node would answer without a body (no Host, Expect, bad syntax, huge headers) gets JSON', async () => {
    expectJsonError(await rawRequest(port, `GET /api/model HTTP/1.1\r\n\r\n`), 403, /is not this server/);
    expectJsonError(await rawRequest(port, `POST /api/pattern HTTP/1.1\r\n${HOST}Expect: tea\r\nContent-Length: 2\r\n\r\n{}`), 417, /Expect/);
    expectJsonError(await rawRequest(port, `GET /api/model HTTP/1.1\r\n${HOST}Bad Header: x\r\n\r\n`), 400, /malformed HTTP request/);
    expectJsonError(await rawRequest(port, `GET /api/model HTTP/1.1\r\n${HOST}X-Big: ${'a'.repeat(20_000)}\r\n\r\n`), 431);
    expectJsonError(await rawRequest(port, `POST /api/pattern HTTP/1.1\r\n${HOST}Content-Length: 2\r\nContent-Length: 3\r\n\r\n{}`), 400);
    expectJsonError(await rawRequest(port, `POST /api/pattern HTTP/1.1\r\n${HOST}Content-Length: 7\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n`), 400);
  });

  it('a malformed request pipelined after a good one: the good one is answered first, then the 400', async () => {
    const r = await rawRequest(port, `GET /api/model HTTP/1.1\r\n${HOST}\r\n{"prompt":"\\`);
    expect(r.status, r.text).toBe(200);
    expect(JSON.parse(r.body).name).toBe('ref-llama-7m');
  });

  it('a GET whose chunked body is malformed: an answer under way is finished first; else the 400 is the answer', async () => {
    const bad = `Transfer-Encoding: chunked\r\n\r\n1\r\n{\r\nx\r\n\r\n`;
    // The page is written at once (before the body's error is parsed): it arrives whole.
    const page = await rawRequest(port, `GET / HTTP/1.1\r\n${HOST}${bad}`);
    expect(page.status, page.text).toBe(200);
    expect(page.body).toMatch(/not built/);
    // An API answer comes later than the error: the error is the answer.
    expectJsonError(await rawRequest(port, `GET /api/model HTTP/1.1\r\n${HOST}${bad}`), 400, /chunk size/);
  });

  it('a JSON body nested deeper than the limit is a 400, not a stack overflow', async () => {
    const deep = '['.repeat(20_000) + ']'.repeat(20_000);
    const body = `{"prompt":"hi","interventions":${deep}}`;
    expectJsonError(
      await rawRequest(port, `POST /api/generate HTTP/1.1\r\n${HOST}Content-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`),
      400,
      /nested 20001 levels deep/,
    );
    expect(jsonDepth('{"a":"[[[[{{{","b":[{"c":[]}]}')).toBe(4);
    expect(jsonDepth('"\\"[["')).toBe(0);
  });

  it('an idle kept-alive connection is closed after the keep-alive timeout', async () => {
    const t0 = performance.now();
    const closedAfter = await new Promise<number>((resolve) => {
      const socket = net.connect(port, '127.0.0.1', () => socket.write(`GET /api/model HTTP/1.1\r\n${HOST}\r\n`));
      socket.on('data', () => undefined);
      socket.on('close', () => resolve(performance.now() - t0));
      setTimeout(() => socket.destroy(), 8000).unref();
    });
    expect(closedAfter).toBeGreaterThan(900); // this server's keepAliveMs is 1000
    expect(closedAfter).toBeLessThan(6000);
  });

  it('overload is the one 5xx: past 32 waiting requests, 503 with Retry-After and a JSON message', async () => {
    // A job holds the engine (its runner waits for `release`), so requests pile up in the queue.
    let release = () => undefined as void;
    const released = new Promise<void>((r) => (release = r));
    const c = model.config;
    const grid = Array.from({ length: c.numLayers }, () => new Array<number>(c.numHeads).fill(0.5));
    const busyWeb = await startServer({
      model,
      log: () => undefined,
      runners: {
        atlas: async () => {
          await released;
          return { format: 'headwise-atlas', version: 1, createdAt: new Date(0).toISOString(), model: { name: 'x', family: 'llama', layers: c.numLayers, heads: c.numHeads, kvHeads: c.numKvHeads, headDim: c.headDim, vocab: c.vocabSize }, settings: {}, metrics: { retrieval: grid }, metricInfo: { retrieval: { per: 'head', samples: 1, description: 'test' } } };
        },
      },
    });
    try {
      const p = Number(new URL(busyWeb.url).port);
      const job = `POST /api/atlas/jobs HTTP/1.1\r\n${HOST}Content-Type: application/json\r\nContent-Length: 2\r\n\r\n{}`;
      expect((await rawRequest(p, job)).status).toBe(202);
      const body = JSON.stringify({ prompt: 'The cat sat on the mat.', layer: 0, head: 0 });
      const request = `POST /api/pattern HTTP/1.1\r\n${HOST}Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
      const pending = Array.from({ length: 40 }, () => rawRequest(p, request, { timeoutMs: 60_000 }));
      await new Promise((r) => setTimeout(r, 1500));
      release();
      const answers = await Promise.all(pending);
      const busy = answers.filter((a) => a.status === 503);
      // The job is one of the 32; 31 requests wait and are answered, the other 9 are refused at once.
      expect(busy.length).toBe(9);
      expect(answers.filter((a) => a.status === 200).length).toBe(31);
      for (const a of busy) {
        expect(a.headers['retry-after']).toBe('2');
        expect(JSON.parse(a.body).error).toMatch(/engine is busy/);
      }
    } finally {
      release();
      await busyWeb.close();
    }
  });

  it('the server still answers after all of the above', async () => {
    expect((await rawRequest(port, `GET /api/model HTTP/1.1\r\n${HOST}\r\n`)).status).toBe(200);
  });
});
