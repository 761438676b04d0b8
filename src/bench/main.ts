/**
 * `npm run bench`: engine speed and memory per weight format (default f32, q8, q4) on ref-llama-30m
 * (or --model DIR): prefill tokens/s, decode tokens/s at a context, bytes read per decode token and
 * the share of this machine's read bandwidth that is (measured in the same run, `memBandwidth.ts`),
 * compile and load time and peak RSS — each format in its own processes (`formatRun.ts`), so that
 * peak RSS is that format's alone, compile and load measured apart. With `--peer DIR` (a folder where
 * `npm i -E node-llama-cpp@3.21.1` was run) llama.cpp runs the same model in the matching GGUF format
 * (`../shared/peer/`; f32, f16, Q8_0, Q4_0), interleaved with headwise run by run, and the ratios are
 * medians of the per-run ratios. The box is shared: every figure is a median of --reps runs.
 * A benchmark, not a test: it prints numbers and asserts nothing.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { Command } from 'commander';
import { DEFAULT_PREFILL_CHUNK } from '../runtime/generate.js';
import { Checkpoint } from '../hf/checkpoint.js';
import { PACKAGE_ROOT } from '../cli/common.js';
import { DEFAULT_BLOCK_SIZE, WEIGHT_FORMATS, weightKey, weightOptions, type WeightFormat } from '../graph/quant.js';
import { compileFormat, decodeBytesPerToken, runFormat, type CompileFigures, type RunFigures } from './formatRun.js';
import { combineRuns, readBandwidth, type Bandwidth } from './memBandwidth.js';

const GGUF_TYPE: Record<WeightFormat, string> = { f32: 'f32', f16: 'f16', q8: 'q8_0', q4: 'q4_0' };
const SHARED_PEER = path.resolve(PACKAGE_ROOT, '..', 'shared', 'peer');

interface Flags {
  model: string;
  formats: string;
  reps: number;
  threads: number;
  prefill: number;
  context: number;
  steps: number;
  chunk: number;
  block: number;
  accuracyLevel?: number;
  peer?: string;
  peerScript: string;
  ggufDir?: string;
  json?: boolean;
  child?: 'compile' | 'run';
  weights?: WeightFormat;
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[s.length >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

/** Runs this file again as a child process and parses the JSON line it prints. */
function child<T>(args: string[]): T {
  const out = execFileSync(process.execPath, [new URL(import.meta.url).pathname, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], maxBuffer: 1 << 24 });
  return JSON.parse(out.trim().split('\n').pop()!) as T;
}

interface LlamaFigures {
  prefill512: number;
  decode512: number;
  prefill2048: number;
  decode2048: number;
  loadMs: number;
  peakRssMB: number;
}

function llamaRun(f: Flags, gguf: string): LlamaFigures {
  const out = execFileSync(process.execPath, [f.peerScript, gguf], {
    encoding: 'utf8', cwd: f.peer, env: { ...process.env, THREADS: String(f.threads) }, stdio: ['ignore', 'pipe', 'inherit'],
  });
  return JSON.parse(out.trim().split('\n').pop()!) as LlamaFigures;
}

async function main(): Promise<void> {
  const program = new Command('bench')
    .description('engine benchmark per weight format: prefill/decode speed, bytes per token vs read bandwidth, compile/load time and peak RSS; llama.cpp side by side with --peer')
    .option('-m, --model <dir>', 'model folder', path.resolve(PACKAGE_ROOT, '..', 'shared', 'models', 'ref-llama-30m'))
    .option('--formats <list>', `weight formats, comma-separated (${WEIGHT_FORMATS.join(', ')})`, 'f32,q8,q4')
    .option('--reps <n>', 'interleaved runs of every format (medians are reported)', (v) => Number(v), 3)
    .option('--threads <n>', 'CPU threads (headwise and llama.cpp alike)', (v) => Number(v), 2)
    .option('--prefill <n>', 'prefill tokens', (v) => Number(v), 512)
    .option('--context <n>', 'decode context tokens', (v) => Number(v), 512)
    .option('--steps <n>', 'decode steps timed per run', (v) => Number(v), 32)
    .option('--chunk <n>', 'prefill chunk size', (v) => Number(v), DEFAULT_PREFILL_CHUNK)
    .option('--block <n>', 'q8/q4 block size', (v) => Number(v), DEFAULT_BLOCK_SIZE)
    .option('--accuracy-level <n>', 'q8/q4: MatMulNBits accuracy_level (default 4: int8 activations; 0: fp32 compute)', (v) => Number(v))
    .option('--peer <dir>', 'folder with node-llama-cpp 3.21.1 installed: also run llama.cpp')
    .option('--peer-script <file>', 'the llama.cpp bench script (prints prefill512, decode512, peakRssMB)', path.join(SHARED_PEER, 'llama_bench.mjs'))
    .option('--gguf-dir <dir>', 'where GGUF conversions are kept (default: <peer>/gguf)')
    .option('--json', 'print one JSON object')
    .option('--child <what>', '(internal) compile | run one format in this process')
    .option('--weights <format>', '(internal) the format of --child');
  program.parse(process.argv);
  const f = program.opts<Flags>();
  const formats = f.formats.split(',').map((s) => s.trim()) as WeightFormat[];
  for (const x of formats) if (!WEIGHT_FORMATS.includes(x)) throw new Error(`--formats: "${x}" is not one of ${WEIGHT_FORMATS.join(', ')}`);
  for (const [k, v] of Object.entries({ reps: f.reps, threads: f.threads, prefill: f.prefill, context: f.context, steps: f.steps })) {
    if (!Number.isInteger(v) || v < 1) throw new Error(`--${k} must be a positive integer, got ${v}`);
  }
  const dir = f.model;
  if (f.child) {
    const w = weightOptions(f.weights ?? 'f32', f.block);
    const r = f.child === 'compile' ? compileFormat(dir, w, f.accuracyLevel) : await runFormat(dir, w, f.threads, { prefill: f.prefill, context: f.context, steps: f.steps, chunk: f.chunk, accuracyLevel: f.accuracyLevel });
    console.log(JSON.stringify(r));
    return;
  }
  if (!fs.existsSync(path.join(dir, 'config.json'))) throw new Error(`${dir}: no config.json (give --model DIR)`);
  const ckpt = Checkpoint.open(dir);
  const bytes = Object.fromEntries(formats.map((x) => [x, decodeBytesPerToken(ckpt, weightOptions(x, f.block), f.context)]));
  ckpt.close();

  const common = ['--model', dir, '--threads', String(f.threads), '--prefill', String(f.prefill), '--context', String(f.context), '--steps', String(f.steps), '--chunk', String(f.chunk), '--block', String(f.block), ...(f.accuracyLevel === undefined ? [] : ['--accuracy-level', String(f.accuracyLevel)])];
  const compiled: Record<string, CompileFigures> = {};
  for (const x of formats) {
    compiled[x] = child<CompileFigures>([...common, '--child', 'compile', '--weights', x]);
    process.stderr.write(`bench: ${x} compile ${compiled[x].cached ? '(cached) ' : ''}${(compiled[x].compileMs / 1000).toFixed(1)} s, peak RSS ${compiled[x].compilePeakRssMB.toFixed(0)} MB\n`);
  }
  const ggufs: Record<string, string> = {};
  if (f.peer) {
    const gdir = f.ggufDir ?? path.join(f.peer, 'gguf');
    fs.mkdirSync(gdir, { recursive: true });
    for (const x of formats) {
      const file = path.join(gdir, `${path.basename(dir)}-${GGUF_TYPE[x]}.gguf`);
      if (!fs.existsSync(file)) execFileSync(process.execPath, [path.join(SHARED_PEER, 'to_gguf.mjs'), dir, file, GGUF_TYPE[x]], { stdio: ['ignore', 'ignore', 'inherit'] });
      ggufs[x] = file;
    }
  }
  const bw: Bandwidth[] = [await readBandwidth(f.threads)];
  const runs: Record<string, RunFigures[]> = Object.fromEntries(formats.map((x) => [x, []]));
  const peers: Record<string, LlamaFigures[]> = Object.fromEntries(formats.map((x) => [x, []]));
  for (let rep = 0; rep < f.reps; rep++) {
    for (const x of formats) {
      runs[x].push(child<RunFigures>([...common, '--child', 'run', '--weights', x]));
      if (f.peer) peers[x].push(llamaRun(f, ggufs[x]));
      const h = runs[x][rep];
      process.stderr.write(`bench: run ${rep + 1}/${f.reps} ${x}: prefill ${h.prefillTokensPerSecond.toFixed(1)} decode ${h.decodeTokensPerSecond.toFixed(2)} tok/s${f.peer ? ` | llama.cpp ${peers[x][rep].prefill512.toFixed(1)} / ${peers[x][rep].decode512.toFixed(2)}` : ''}\n`);
    }
    bw.push(await readBandwidth(f.threads));
  }
  const bandwidth = combineRuns(bw);
  const readGBps = bandwidth.gbps;
  const table = formats.map((x) => {
    const r = runs[x];
    const perToken = bytes[x].weightBytes + bytes[x].kvBytes;
    const decode = median(r.map((v) => v.decodeTokensPerSecond));
    const row: Record<string, number | string | boolean | null> = {
      format: x,
      weights: weightKey(weightOptions(x, f.block)),
      prefillTokensPerSecond: median(r.map((v) => v.prefillTokensPerSecond)),
      decodeTokensPerSecond: decode,
      decodeMin: Math.min(...r.map((v) => v.decodeTokensPerSecond)),
      decodeMax: Math.max(...r.map((v) => v.decodeTokensPerSecond)),
      bytesPerDecodeToken: perToken,
      weightBytesPerDecodeToken: bytes[x].weightBytes,
      decodeReadGBps: (perToken * decode) / 1e9,
      shareOfReadBandwidth: (perToken * decode) / 1e9 / readGBps,
      compileCached: compiled[x].cached,
      compileMs: compiled[x].compileMs,
      compilePeakRssMB: compiled[x].compilePeakRssMB,
      loadMs: median(r.map((v) => v.loadMs)),
      loadPeakRssMB: median(r.map((v) => v.loadPeakRssMB)),
      peakRssMB: median(r.map((v) => v.peakRssMB)),
    };
    if (f.peer) {
      const p = peers[x];
      Object.assign(row, {
        llamaType: GGUF_TYPE[x],
        llamaPrefill512: median(p.map((v) => v.prefill512)),
        llamaDecode512: median(p.map((v) => v.decode512)),
        llamaPeakRssMB: median(p.map((v) => v.peakRssMB)),
        // Paired: the ratio of each run to the llama.cpp run right after it, then the median.
        prefillRatio: median(r.map((v, i) => v.prefillTokensPerSecond / p[i].prefill512)),
        decodeRatio: median(r.map((v, i) => v.decodeTokensPerSecond / p[i].decode512)),
        peakRssRatio: median(r.map((v, i) => v.peakRssMB / p[i].peakRssMB)),
      });
    }
    return row;
  });
  const report = { model: path.basename(dir), threads: f.threads, accuracyLevel: f.accuracyLevel ?? 4, reps: f.reps, prefillTokens: f.prefill, contextTokens: f.context, blockSize: f.block, readBandwidthGBps: readGBps, readBandwidthReader: bandwidth.best, readBandwidthReaders: Object.fromEntries(bandwidth.readers.map((r) => [r.reader, r.gbps])), readBandwidthRuns: bw.map((b) => Object.fromEntries(b.readers.map((r) => [r.reader, r.gbps]))), formats: table };
  if (f.json) {
    console.log(JSON.stringify(report));
    return;
  }
  const n = (v: unknown, d = 1) => (typeof v === 'number' ? v.toFixed(d) : '—');
  console.log(`headwise bench — ${report.model}, ${f.threads} threads, medians of ${f.reps} interleaved runs; read bandwidth ${readGBps.toFixed(1)} GB/s (best reader, ${bandwidth.best}; medians of ${bw.length} measurements: ${bandwidth.readers.map((r) => `${r.reader} ${r.gbps.toFixed(1)}`).join(', ')})`);
  console.log(`| format | prefill ${f.prefill} tok/s | decode @${f.context} tok/s [range] | MB read / token | share of read bandwidth | compile s (peak MB) | load s (peak MB) | peak RSS MB |${f.peer ? ' llama.cpp type | prefill ratio | decode ratio | peak RSS ratio |' : ''}`);
  console.log(`| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |${f.peer ? ' --- | ---: | ---: | ---: |' : ''}`);
  for (const r of table) {
    const peer = f.peer ? ` ${r.llamaType} (${n(r.llamaPrefill512)} / ${n(r.llamaDecode512, 2)} tok/s, ${n(r.llamaPeakRssMB, 0)} MB) | ${n(r.prefillRatio, 2)}× | ${n(r.decodeRatio, 2)}× | ${n(r.peakRssRatio, 2)}× |` : '';
    console.log(`| ${r.weights} | ${n(r.prefillTokensPerSecond)} | ${n(r.decodeTokensPerSecond, 2)} [${n(r.decodeMin, 2)}–${n(r.decodeMax, 2)}] | ${n((r.bytesPerDecodeToken as number) / 1e6)} | ${n(100 * (r.shareOfReadBandwidth as number), 0)}% | ${n((r.compileMs as number) / 1000)}${r.compileCached ? ' (cached)' : ''} (${n(r.compilePeakRssMB, 0)}) | ${n((r.loadMs as number) / 1000)} (${n(r.loadPeakRssMB, 0)}) | ${n(r.peakRssMB, 0)} |${peer}`);
  }
}

main().catch((e) => {
  console.error(`bench: ${(e as Error).message.split('\n')[0]}`);
  process.exit(1);
});
