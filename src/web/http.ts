/**
 * The HTTP plumbing the server needs and nothing more: an error type that carries a status code, a
 * JSON body reader with size and nesting limits, JSON answers (also written raw on a socket, for
 * requests node's parser refuses before there is a response object), the loopback rule for hosts,
 * the connection guard that answers what the parser would leave hanging, and static files from one
 * folder. Routing and what the API means live in `server.ts`.
 */
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { STATUS_CODES, type IncomingMessage, type Server, type ServerResponse } from 'node:http';

/** A 4xx/5xx answer: `message` goes to the client as `{"error": message}`. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
    this.name = 'HttpError';
  }
}

export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  if (res.headersSent) return;
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
    'cache-control': 'no-store',
    'x-content-type-options': 'nosniff',
    ...headers,
  });
  res.end(text);
}

export function sendError(res: ServerResponse, status: number, message: string, headers: Record<string, string> = {}): void {
  sendJson(res, status, { error: message }, headers);
}

/**
 * Reads a JSON request body of at most `limit` bytes. Oversized bodies are refused by their
 * Content-Length before reading, or as soon as the stream passes the limit (413); anything but
 * `application/json` is 415; text that does not parse is 400.
 */
export async function readJsonBody(req: IncomingMessage, limit: number): Promise<unknown> {
  const type = (req.headers['content-type'] ?? '').split(';')[0].trim().toLowerCase();
  if (type !== 'application/json') {
    throw new HttpError(415, `body must be JSON (Content-Type: application/json${type ? `, got ${type}` : ''})`);
  }
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > limit) throw new HttpError(413, `body of ${declared} bytes is over the limit of ${limit} bytes`);
  const chunks: Buffer[] = [];
  let size = 0;
  await new Promise<void>((resolve, reject) => {
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        // No `Connection: close`: node would close the socket as soon as the answer is out, with the
        // client still writing; the caller drains the rest instead (`discardBody`).
        req.off('data', onData);
        req.pause();
        reject(new HttpError(413, `body is over the limit of ${limit} bytes`));
        return;
      }
      chunks.push(chunk);
    };
    req.on('data', onData);
    req.on('end', () => resolve());
    req.on('error', (e) => reject(new HttpError(400, `could not read the body (${e.message})`)));
    // A client that goes away mid-body: nothing to answer, but the request must not wait forever.
    req.on('close', () => !req.complete && reject(new HttpError(400, 'the client closed the connection before the body was complete')));
  });
  const text = Buffer.concat(chunks).toString('utf8');
  if (text.trim() === '') throw new HttpError(400, 'body is empty (expected a JSON object)');
  const depth = jsonDepth(text);
  if (depth > MAX_JSON_DEPTH) throw new HttpError(400, `body is nested ${depth} levels deep, the limit is ${MAX_JSON_DEPTH}`);
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new HttpError(400, `body is not valid JSON (${(e as Error).message})`);
  }
}

/** Deepest nesting of arrays and objects a body may have: the API's deepest is 5; the code that walks bodies recurses. */
export const MAX_JSON_DEPTH = 64;

/** How deep `[`/`{` nest in JSON text (brackets inside strings do not count); a scan, no parse. */
export function jsonDepth(text: string): number {
  let depth = 0;
  let max = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text.charCodeAt(i);
    if (inString) {
      if (ch === 0x5c) i++; // backslash: skip the escaped character
      else if (ch === 0x22) inString = false;
    } else if (ch === 0x22) inString = true;
    else if (ch === 0x5b || ch === 0x7b) max = Math.max(max, ++depth);
    else if (ch === 0x5d || ch === 0x7d) depth--;
  }
  return max;
}

/**
 * After a body was refused (413): reads and drops the rest, so a client still writing it does not have
 * the connection reset under it before it reads the answer; past `maxBytes` more or `ms`, the
 * connection is closed. The answer itself keeps the connection open, so node does not close the socket
 * (and reset it, with the unread body in its buffer) the moment the answer is out.
 */
export function discardBody(req: IncomingMessage, maxBytes = 64 * 1024 * 1024, ms = 10_000): void {
  if (req.complete) return;
  let dropped = 0;
  const timer = setTimeout(() => req.socket.destroy(), ms);
  timer.unref();
  req.on('data', (chunk: Buffer) => {
    dropped += chunk.length;
    if (dropped > maxBytes) {
      clearTimeout(timer);
      req.socket.destroy();
    }
  });
  req.once('end', () => clearTimeout(timer));
  req.once('close', () => clearTimeout(timer));
  req.resume();
}

/** A whole JSON error answer as bytes for a bare socket (no response object exists yet); the connection closes after it. */
export function rawError(status: number, message: string, headers: Record<string, string> = {}): string {
  const body = JSON.stringify({ error: message });
  const lines = [
    `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Error'}`,
    'Content-Type: application/json; charset=utf-8',
    `Content-Length: ${Buffer.byteLength(body)}`,
    'Cache-Control: no-store',
    'X-Content-Type-Options: nosniff',
    'Connection: close',
    ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`),
  ];
  return `${lines.join('\r\n')}\r\n\r\n${body}`;
}

/**
 * Whether `host` names this machine's loopback interface: `localhost`, 127.0.0.0/8, `::1`, or an
 * IPv4-mapped 127.x address (`::ffff:127.0.0.1`), with or without IPv6 brackets, in any spelling.
 */
export function isLoopbackHost(host: string): boolean {
  const h = host.trim().toLowerCase().replace(/^\[(.*)\]$/, '$1');
  if (h === 'localhost' || h.endsWith('.localhost')) return true;
  if (net.isIPv4(h)) return h.startsWith('127.');
  if (!net.isIPv6(h)) return false;
  // The URL parser writes every IPv6 address in its one short form: [::1], [::ffff:7f00:1].
  const canonical = new URL(`http://[${h}]/`).hostname;
  return canonical === '[::1]' || /^\[::ffff:7f[0-9a-f]{2}:[0-9a-f]{1,4}\]$/.test(canonical);
}

/** The host part of a Host header (`[::1]:8080` → `[::1]`, `a.b:80` → `a.b`). */
export function hostOfHeader(header: string): string {
  const bracketed = /^(\[[^\]]*\])(?::\d*)?$/.exec(header);
  if (bracketed) return bracketed[1];
  return header.replace(/:\d*$/, '');
}

/**
 * Empty lines a connection may send before its first request line (RFC 9112 §2.2: a server should
 * skip at least one). Node's parser skips any number and waits for more, so a client that sends only
 * `\r\n\r\n\r\n` would hold the socket until a timeout; past this many the guard answers 400.
 */
export const MAX_LEADING_EMPTY_LINES = 2;

/**
 * Puts a guard in front of `server`'s connection handling: the first bytes of each connection are
 * looked at before node's parser gets them, and a connection that opens with more than
 * `MAX_LEADING_EMPTY_LINES` empty lines, or sends nothing for `idleMs`, gets a JSON error and is
 * closed. Anything else is handed to the parser unchanged. Returns the sockets still being looked at
 * (the server's close ends them).
 */
export function guardConnections(server: Server, idleMs: number): Set<net.Socket> {
  // Node's HTTP server parses in its own 'connection' listener; the guard takes it and calls it itself.
  const parse = server.listeners('connection') as ((socket: net.Socket) => void)[];
  if (parse.length === 0) throw new Error('guardConnections: the server has no connection listener to guard');
  server.removeAllListeners('connection');
  const pending = new Set<net.Socket>();
  server.on('connection', (socket: net.Socket) => {
    pending.add(socket);
    const seen: Buffer[] = [];
    let newlines = 0;
    const refuse = (status: number, message: string) => {
      done();
      socket.end(rawError(status, message));
      // A client that neither reads nor closes does not keep the socket.
      setTimeout(() => socket.destroy(), 2000).unref();
    };
    const onData = (chunk: Buffer) => {
      seen.push(chunk);
      for (const byte of chunk) {
        if (byte === 0x0a) newlines++;
        else if (byte !== 0x0d) return handOver();
      }
      if (newlines > MAX_LEADING_EMPTY_LINES) refuse(400, `malformed HTTP request: ${newlines} empty lines and no request line`);
    };
    const onIdle = () => refuse(408, `no request within ${idleMs} ms`);
    const onError = () => socket.destroy();
    const done = () => {
      pending.delete(socket);
      socket.off('data', onData);
      socket.off('timeout', onIdle);
      socket.off('error', onError);
      socket.off('close', done);
      socket.setTimeout(0);
    };
    const handOver = () => {
      done();
      // Synchronously, so no bytes arrive in between: node's parser takes the socket, then gets what was read.
      for (const listener of parse) listener.call(server, socket);
      socket.emit('data', Buffer.concat(seen));
    };
    socket.on('data', onData);
    socket.on('error', onError);
    socket.on('close', done);
    socket.setTimeout(idleMs, onIdle);
  });
  return pending;
}

const MIME: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.map': 'application/json; charset=utf-8',
  '.woff2': 'font/woff2',
};

/**
 * Serves `urlPath` from `root` (`/` → index.html). The path is decoded and normalised, and anything
 * that would leave `root` is a 404, as is anything missing. Returns false when no file was found so
 * the caller can answer.
 */
export function serveStatic(req: IncomingMessage, res: ServerResponse, root: string, urlPath: string): boolean {
  let rel: string;
  try {
    rel = decodeURIComponent(urlPath);
  } catch {
    return false;
  }
  if (rel.includes('\0')) return false;
  if (rel === '/' || rel === '') rel = '/index.html';
  const file = path.resolve(root, '.' + path.posix.normalize(rel));
  if (file !== root && !file.startsWith(root + path.sep)) return false;
  let stat: fs.Stats;
  try {
    stat = fs.statSync(file);
  } catch {
    return false;
  }
  if (!stat.isFile()) return false;
  const hashed = /\/assets\//.test(rel);
  res.writeHead(200, {
    'content-type': MIME[path.extname(file)] ?? 'application/octet-stream',
    'content-length': stat.size,
    'cache-control': hashed ? 'public, max-age=31536000, immutable' : 'no-cache',
    'x-content-type-options': 'nosniff',
  });
  if (req.method === 'HEAD') res.end();
  else fs.createReadStream(file).pipe(res);
  return true;
}
