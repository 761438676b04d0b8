/**
 * A raw HTTP/1.1 client for the transport tests and the fuzz suite: writes exactly the bytes given
 * (malformed request lines, lying lengths, partial requests), then reads the first final answer
 * (skipping `100 Continue`) and parses its status, headers and body by Content-Length. It never
 * throws: a reset, a close without an answer, or no answer within `timeoutMs` are outcomes. The socket
 * is never half-closed, so a partial request stays pending as a slow client's would.
 */
import net from 'node:net';

export interface RawAnswer {
  /** `answer`: a whole response arrived; `closed`: the server closed without one; `timeout`: nothing whole in time. */
  outcome: 'answer' | 'closed' | 'timeout';
  status: number;
  headers: Record<string, string>;
  body: string;
  /** Milliseconds from connecting to the outcome. */
  ms: number;
  /** Everything received, for failure messages. */
  text: string;
}

export interface RawOptions {
  timeoutMs?: number;
  /** Write the request in pieces this many ms apart (slow clients). */
  pieces?: (string | Buffer)[];
  pieceDelayMs?: number;
  /** A request sent with HEAD: the answer has headers only. */
  head?: boolean;
  /** Read nothing until every byte is written, like a blocking client (`sendall`, then `recv`). */
  readAfterWrite?: boolean;
}

/** Parses the first final response in `data`, or null while it is incomplete. */
export function parseAnswer(data: Buffer, head = false): Omit<RawAnswer, 'outcome' | 'ms' | 'text'> | null {
  let start = 0;
  for (;;) {
    const end = data.indexOf('\r\n\r\n', start);
    if (end < 0) return null;
    const lines = data.subarray(start, end).toString('latin1').split('\r\n');
    const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(lines[0])?.[1] ?? NaN);
    const headers: Record<string, string> = {};
    for (const line of lines.slice(1)) {
      const i = line.indexOf(':');
      if (i > 0) headers[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim();
    }
    if (status >= 100 && status < 200) {
      start = end + 4;
      continue;
    }
    const length = Number(headers['content-length'] ?? 0);
    const bodyStart = end + 4;
    if (head || !Number.isFinite(length)) return { status, headers, body: '' };
    if (data.length < bodyStart + length) return null;
    return { status, headers, body: data.subarray(bodyStart, bodyStart + length).toString('utf8') };
  }
}

export function rawRequest(port: number, bytes: string | Buffer, opts: RawOptions = {}): Promise<RawAnswer> {
  const timeoutMs = opts.timeoutMs ?? 5000;
  const t0 = performance.now();
  return new Promise((resolve) => {
    let data = Buffer.alloc(0);
    let settled = false;
    const socket = net.connect(port, '127.0.0.1');
    const finish = (outcome: RawAnswer['outcome']) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      const parsed = parseAnswer(data, opts.head);
      const text = data.toString('latin1').slice(0, 2000);
      const ms = performance.now() - t0;
      if (parsed) resolve({ outcome: 'answer', ...parsed, ms, text });
      else resolve({ outcome, status: 0, headers: {}, body: '', ms, text });
    };
    const timer = setTimeout(() => finish('timeout'), timeoutMs);
    if (opts.readAfterWrite) socket.pause();
    socket.on('connect', async () => {
      const pieces = opts.pieces ?? [bytes];
      for (let i = 0; i < pieces.length && !settled; i++) {
        if (i > 0) await new Promise((r) => setTimeout(r, opts.pieceDelayMs ?? 0));
        if (!socket.writable) break;
        const last = i === pieces.length - 1;
        socket.write(pieces[i], (e) => last && !e && opts.readAfterWrite && socket.resume());
      }
    });
    socket.on('data', (chunk: Buffer) => {
      data = Buffer.concat([data, chunk]);
      if (parseAnswer(data, opts.head)) finish('answer');
    });
    socket.on('error', () => finish('closed'));
    socket.on('close', () => finish('closed'));
  });
}

/** Text that reads like a stack trace or a leaked internal path (never allowed in an answer). */
export const STACK_TRACE = /\n\s+at \S|node:internal|\.ts:\d+:\d+|\.js:\d+:\d+|\bat (?:async )?[\w.<>]+ \(/;
