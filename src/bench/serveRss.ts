/**
 * `node dist/bench/serveRss.js`: the web server's memory under varied interventions. Starts a real
 * `headwise serve` (a child process, default model, one thread), sends seeded requests that mix
 * attention patterns with generations under every intervention op on random head sets — each new
 * set of hooked layers is a new graph session — and reads the server's resident set size from
 * /proc after a warm-up and at the end. The model's session LRU (`runtime/sessionCache.ts`) is what
 * keeps the ratio near 1; without it every hook set stays resident.
 *
 * Prints one JSON line: RSS after warm-up and after all requests (MB), their ratio, requests per
 * second, and the status counts. A benchmark, not a test: it asserts nothing.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { Command } from 'commander';
import { PACKAGE_ROOT } from '../cli/common.js';
import { mulberry32 } from '../eval/random.js';

interface Shape {
  layers: number;
  heads: number;
  headDim: number;
}

const PROMPTS = [
  'Once upon a time, there was a little girl named Lily. She',
  'Tom had a red ball. He liked to play with it in the park. One day',
  'The cat sat on the mat and looked at the bird. The bird',
];

/** One seeded request: a pattern, or a generation with 0–2 interventions on random heads. */
function variedRequest(next: () => number, shape: Shape): { route: string; body: unknown } {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(next() * xs.length)];
  const int = (n: number) => Math.floor(next() * n);
  const prompt = pick(PROMPTS);
  if (next() < 0.15) return { route: '/api/pattern', body: { prompt, layer: int(shape.layers), head: int(shape.heads) } };
  const heads = () => Array.from({ length: 1 + int(3) }, () => (next() < 0.2 ? `${int(shape.layers)}:*` : `${int(shape.layers)}:${int(shape.heads)}`));
  const op = () => {
    switch (pick(['ablate', 'scale', 'pasta', 'act', 'steer'] as const)) {
      case 'ablate':
        return { op: 'ablate', heads: heads() };
      case 'scale':
        return { op: 'scale', heads: heads(), params: { factor: Math.round(next() * 300) / 100 } };
      case 'pasta':
        return { op: 'pasta', heads: heads(), params: { alpha: 0.01 + Math.round(next() * 50) / 100, spans: [{ tokens: [0, 3] }] } };
      case 'act':
        return { op: 'act', heads: heads(), params: { tau: 0.1, beta: 0.4 } };
      case 'steer':
        return { op: 'steer', heads: heads(), params: { alpha: 0.5, vector: Array.from({ length: shape.headDim }, () => Math.round((next() - 0.5) * 100) / 100) } };
    }
  };
  const interventions = Array.from({ length: int(3) }, op);
  return { route: '/api/generate', body: { prompt, maxNewTokens: 1 + int(2), topK: 3, ...(interventions.length ? { interventions } : {}) } };
}

function rssMb(pid: number): number {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1]);
  return Math.round(kb / 102.4) / 10;
}

async function main(): Promise<void> {
  const flags = new Command('serve-rss')
    .option('--requests <n>', 'requests after the warm-up', (v) => Number(v), 2000)
    .option('--warmup <n>', 'requests before the first reading', (v) => Number(v), 200)
    .option('--seed <n>', 'request generator seed', (v) => Number(v), 1)
    .option('--model <dir>', 'model folder (default: the bundled ref-llama-7m)')
    .option('--cli <file>', "the headwise CLI to start (another checkout's dist/cli/main.js, for a before/after)", path.join(PACKAGE_ROOT, 'dist', 'cli', 'main.js'))
    .parse()
    .opts<{ requests: number; warmup: number; seed: number; model?: string; cli: string }>();
  const args = [flags.cli, 'serve', '--port', '0', '--threads', '1', ...(flags.model ? ['--model', flags.model] : [])];
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'] });
  try {
    const url = await new Promise<string>((resolve, reject) => {
      let out = '';
      child.stdout.on('data', (d: Buffer) => {
        out += d.toString();
        const m = /at (http:\/\/\S+?)\/? /.exec(out);
        if (m) resolve(m[1]);
      });
      child.once('exit', (code) => reject(new Error(`serve exited with ${code} before listening`)));
    });
    const info = (await (await fetch(`${url}/api/model`)).json()) as Shape;
    const next = mulberry32(flags.seed);
    const statuses: Record<number, number> = {};
    const send = async (n: number) => {
      for (let i = 0; i < n; i++) {
        const { route, body } = variedRequest(next, info);
        const res = await fetch(url + route, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
        await res.arrayBuffer();
        statuses[res.status] = (statuses[res.status] ?? 0) + 1;
      }
    };
    await send(flags.warmup);
    const warm = rssMb(child.pid!);
    const t0 = performance.now();
    const readings: number[] = [];
    for (let done = 0; done < flags.requests; done += 250) {
      await send(Math.min(250, flags.requests - done));
      readings.push(rssMb(child.pid!));
    }
    const seconds = (performance.now() - t0) / 1000;
    const after = readings[readings.length - 1];
    const result = {
      model: flags.model ?? 'ref-llama-7m',
      warmupRequests: flags.warmup,
      requests: flags.requests,
      rssAfterWarmupMb: warm,
      rssAfterRequestsMb: after,
      ratio: Math.round((after / warm) * 1000) / 1000,
      rssEvery250Mb: readings,
      requestsPerSecond: Math.round((flags.requests / seconds) * 10) / 10,
      statuses,
    };
    process.stdout.write(JSON.stringify(result) + '\n');
  } finally {
    child.kill('SIGTERM');
  }
}

main().catch((e) => {
  process.stderr.write(`serve-rss: ${(e as Error).message}\n`);
  process.exit(1);
});
