#!/usr/bin/env node
// WebGPU execution-provider probe for onnxruntime-node (plain ESM, no build step).
//
// Builds small ONNX models in-process (hand-written protobuf), runs them on the
// WebGPU EP and on the CPU EP, compares outputs, times them, and checks
// GPU-resident outputs (preferredOutputLocation: 'gpu-buffer') fed back as inputs.
// Prints ONE JSON line on stdout; progress goes to stderr.
//
// Env knobs:
//   HW_PROBE_N=2048          size of the square MatMul (CPU vs WebGPU comparison)
//   HW_PROBE_CHAIN_N=2048,4096  sizes for the GPU-resident chained timing
//   HW_PROBE_REPS=5          timed repetitions per host-I/O measurement
//   HW_PROBE_CHAIN_K=200     chained GPU-resident steps per size (timed as T(K1+K)-T(K1))
//   HW_PROBE_QUICK=1         tiny sizes (N=256, chain 256, few reps): smoke test / lavapipe
//   HW_ORT_LOG=verbose|info|warning|error   ORT default logger level (set before 1st session)
//   HW_WEBGPU_OPTS='{"validationMode":"disabled"}'  extra WebGPU EP options (JSON)

import * as ortNs from 'onnxruntime-node';
const ort = ortNs.default ?? ortNs;

const quick = process.env.HW_PROBE_QUICK === '1';
const N = Number(process.env.HW_PROBE_N ?? (quick ? 256 : 2048));
const CHAIN_N = (process.env.HW_PROBE_CHAIN_N ?? (quick ? '256' : '2048,4096')).split(',').filter(Boolean).map(Number);
const REPS = Number(process.env.HW_PROBE_REPS ?? (quick ? 2 : 5));
const CHAIN_K = Number(process.env.HW_PROBE_CHAIN_K ?? (quick ? 5 : 200));
const WEBGPU_OPTS = JSON.parse(process.env.HW_WEBGPU_OPTS ?? '{}');
if (process.env.HW_ORT_LOG) ort.env.logLevel = process.env.HW_ORT_LOG;

const log = (...a) => process.stderr.write(`[probe] ${a.join(' ')}\n`);
const out = {
  probe: 'headwise-webgpu-probe/1',
  node: process.version,
  platform: `${process.platform}-${process.arch}`,
  ort: ort.env?.versions ?? null,
  vkDriverFiles: process.env.VK_DRIVER_FILES ?? null,
  config: { N, CHAIN_N, REPS, CHAIN_K, quick, webgpuOpts: WEBGPU_OPTS },
};
try { out.backends = ortNs.listSupportedBackends?.() ?? null; } catch (e) { out.backends = `err: ${e.message}`; }

// Tensor.getData() on a 'gpu-buffer' output: onnxruntime-node 1.30's download callback throws a bare
// C++ `const char*` ("not implemented"), which node-addon-api cannot turn into a JS error, so the whole
// process aborts (SIGABRT). Test it in a child process so the probe survives.
async function getDataInChild() {
  const { spawnSync } = await import('node:child_process');
  const r = spawnSync(process.execPath, [new URL(import.meta.url).pathname, '--getdata-child'],
    { env: { ...process.env, HW_PROBE_QUICK: '1' }, encoding: 'utf8', timeout: 120000 });
  const msg = (r.stdout + r.stderr).split('\n').filter((l) => /getData|terminate|not implemented/.test(l)).join(' | ').slice(0, 300);
  return { exitCode: r.status, signal: r.signal, output: msg };
}
const isGetDataChild = process.argv.includes('--getdata-child');

// ---------------------------------------------------------------- protobuf writer
const te = new TextEncoder();
function vi(n) {
  let x = BigInt(n);
  if (x < 0n) x += 1n << 64n;
  const b = [];
  do { let byte = Number(x & 0x7fn); x >>= 7n; if (x) byte |= 0x80; b.push(byte); } while (x);
  return Uint8Array.from(b);
}
function cat(parts) {
  const flat = parts.flat(Infinity);
  const len = flat.reduce((s, p) => s + p.length, 0);
  const r = new Uint8Array(len);
  let o = 0;
  for (const p of flat) { r.set(p, o); o += p.length; }
  return r;
}
const fLen = (no, bytes) => cat([vi((no << 3) | 2), vi(bytes.length), bytes]);
const fInt = (no, v) => cat([vi(no << 3), vi(v)]);
const fStr = (no, s) => fLen(no, te.encode(s));

// ONNX field numbers (onnx.proto3)
const FLOAT = 1, FLOAT16 = 10;
const typeProto = (elem, dims) =>
  fLen(1, cat([fInt(1, elem), fLen(2, cat(dims.map((d) => fLen(1, fInt(1, d)))))]));
const valueInfo = (name, elem, dims) => cat([fStr(1, name), fLen(2, typeProto(elem, dims))]);
const attrInt = (name, v) => cat([fStr(1, name), fInt(20, 2 /* INT */), fInt(3, v)]);
const node = (op, ins, outs, attrs = []) =>
  cat([ins.map((i) => fStr(1, i)), outs.map((o) => fStr(2, o)), fStr(3, `${op}_${outs[0]}`), fStr(4, op), attrs.map((a) => fLen(5, a))]);
const tensorProto = (name, elem, dims, raw) => cat([dims.map((d) => fInt(1, d)), fInt(2, elem), fStr(8, name), fLen(9, raw)]);
function model({ nodes, inits = [], inputs, outputs }) {
  const graph = cat([nodes.map((n) => fLen(1, n)), fStr(2, 'probe'), inits.map((t) => fLen(5, t)),
    inputs.map((v) => fLen(11, v)), outputs.map((v) => fLen(12, v))]);
  return cat([fInt(1, 8 /* ir_version */), fStr(2, 'headwise-probe'), fLen(7, graph), fLen(8, cat([fStr(1, ''), fInt(2, 17)]))]);
}

// Y = A @ B ; S = Softmax(Y, axis=-1)   (two runtime inputs)
const mm2Model = (n) => model({
  nodes: [node('MatMul', ['A', 'B'], ['Y']), node('Softmax', ['Y'], ['S'], [attrInt('axis', -1)])],
  inputs: [valueInfo('A', FLOAT, [n, n]), valueInfo('B', FLOAT, [n, n])],
  outputs: [valueInfo('Y', FLOAT, [n, n]), valueInfo('S', FLOAT, [n, n])],
});
// Y = X @ W (W initializer) ; S = Softmax(Y)   — the "weights resident, activations fed back" shape
const chainModel = (n, elem, wRaw) => model({
  nodes: [node('MatMul', ['X', 'W'], ['Y']), node('Softmax', ['Y'], ['S'], [attrInt('axis', -1)])],
  inits: [tensorProto('W', elem, [n, n], wRaw)],
  inputs: [valueInfo('X', elem, [n, n])],
  outputs: [valueInfo('Y', elem, [n, n]), valueInfo('S', elem, [n, n])],
});

// ---------------------------------------------------------------- helpers
function rng(seed) { // mulberry32
  return () => { seed |= 0; seed = (seed + 0x6d2b79f5) | 0; let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t; return ((t ^ (t >>> 14)) >>> 0) / 4294967296; };
}
function randF32(len, scale, seed) { const r = rng(seed); const a = new Float32Array(len); for (let i = 0; i < len; i++) a[i] = (r() * 2 - 1) * scale; return a; }
const f32b = new Float32Array(1), u32b = new Uint32Array(f32b.buffer);
function toHalf(v) {
  f32b[0] = v; const x = u32b[0]; const sign = (x >>> 16) & 0x8000; const e = ((x >>> 23) & 0xff) - 112; let m = x & 0x7fffff;
  if (e >= 31) return sign | 0x7c00;
  if (e <= 0) { if (e < -10) return sign; m = (m | 0x800000) >> (1 - e); return sign | ((m + 0x1000) >> 13); }
  return sign | ((e << 10) + ((m + 0x1000) >> 13));
}
function fromHalf(h) {
  const s = h & 0x8000 ? -1 : 1, e = (h >> 10) & 0x1f, m = h & 0x3ff;
  if (e === 0) return s * m * 2 ** -24; if (e === 31) return m ? NaN : s * Infinity; return s * (1 + m / 1024) * 2 ** (e - 15);
}
const f32ToF16 = (a) => { const r = new Uint16Array(a.length); for (let i = 0; i < a.length; i++) r[i] = toHalf(a[i]); return r; };
const f16ToF32 = (a) => { const r = new Float32Array(a.length); for (let i = 0; i < a.length; i++) r[i] = fromHalf(a[i]); return r; };
function cmp(ref, got) {
  let maxAbs = 0, maxRef = 0, nonFinite = 0, sumSq = 0, sumRefSq = 0;
  for (let i = 0; i < ref.length; i++) {
    const g = got[i], r = ref[i];
    if (!Number.isFinite(g)) { nonFinite++; continue; }
    const d = Math.abs(g - r); if (d > maxAbs) maxAbs = d; if (Math.abs(r) > maxRef) maxRef = Math.abs(r);
    sumSq += d * d; sumRefSq += r * r;
  }
  return { maxAbsDiff: +maxAbs.toExponential(3), maxAbsRef: +maxRef.toExponential(3),
    relL2: +(Math.sqrt(sumSq / Math.max(sumRefSq, 1e-30))).toExponential(3), nonFinite };
}
const now = () => performance.now();
const ms = (x) => +x.toFixed(3);
const gflops = (n, t) => +((2 * n ** 3) / (t / 1e3) / 1e9).toFixed(1);
const median = (a) => { const s = [...a].sort((x, y) => x - y); return s[Math.floor(s.length / 2)]; };
const errStr = (e) => String(e?.message ?? e).split('\n').slice(0, 4).join(' | ').slice(0, 600);
// W scaled so that its spectral radius is about 1 (entries var = 1/(4n)), so chains stay finite.
const wScale = (n) => Math.sqrt(3 / (4 * n));
const webgpuEP = () => [{ name: 'webgpu', ...WEBGPU_OPTS }];
async function section(name, fn) {
  log(`${name} ...`); const t0 = now();
  try { out[name] = await fn(); } catch (e) { out[name] = { error: errStr(e) }; log(`${name} FAILED: ${errStr(e)}`); }
  log(`${name} done in ${ms(now() - t0)} ms`);
}
async function timeRuns(sess, feeds, reps) {
  const t = [];
  for (let i = 0; i < reps; i++) { const t0 = now(); const r = await sess.run(feeds); t.push(now() - t0); for (const v of Object.values(r)) v.dispose?.(); }
  return t;
}

if (isGetDataChild) {
  const n = 64;
  const m = chainModel(n, FLOAT, new Uint8Array(randF32(n * n, wScale(n), 3).buffer));
  const s = await ort.InferenceSession.create(m, { executionProviders: webgpuEP(), preferredOutputLocation: 'gpu-buffer' });
  const r = await s.run({ X: new ort.Tensor('float32', randF32(n * n, 1, 4), [n, n]) });
  try { const d = await r.Y.getData(); console.log(`getData ok: ${d.constructor.name}[${d.length}]`); }
  catch (e) { console.log(`getData threw a JS error: ${errStr(e)}`); }
  process.exit(0);
}

// ---------------------------------------------------------------- 1. CPU vs WebGPU, host I/O
const A = randF32(N * N, 1, 1), B = randF32(N * N, 1, 2);
const mm2 = mm2Model(N);
let cpuMm2, gpuMm2;

await section('cpu', async () => {
  const t0 = now(); cpuMm2 = await ort.InferenceSession.create(mm2, { executionProviders: ['cpu'] });
  const createMs = now() - t0;
  const feeds = { A: new ort.Tensor('float32', A, [N, N]), B: new ort.Tensor('float32', B, [N, N]) };
  const t1 = now(); const r = await cpuMm2.run(feeds); const firstMs = now() - t1;
  out._cpuRef = r;
  const t = await timeRuns(cpuMm2, feeds, REPS);
  return { createMs: ms(createMs), firstRunMs: ms(firstMs), runMs: t.map(ms), medianMs: ms(median(t)), gflops: gflops(N, median(t)) };
});

await section('webgpu', async () => {
  const t0 = now();
  gpuMm2 = await ort.InferenceSession.create(mm2, { executionProviders: webgpuEP(),
    logSeverityLevel: process.env.HW_ORT_LOG === 'verbose' ? 0 : 2 });
  const createMs = now() - t0;
  const feeds = { A: new ort.Tensor('float32', A, [N, N]), B: new ort.Tensor('float32', B, [N, N]) };
  const t1 = now(); const r = await gpuMm2.run(feeds); const firstMs = now() - t1;
  const ref = out._cpuRef;
  const diff = ref ? { Y: cmp(ref.Y.data, r.Y.data), S: cmp(ref.S.data, r.S.data) } : 'no cpu reference';
  const t = await timeRuns(gpuMm2, feeds, REPS * 2);
  return { createMs: ms(createMs), firstRunMs: ms(firstMs), outputLocation: r.Y.location, diffVsCpu: diff,
    runMs: t.map(ms), medianMs: ms(median(t)), gflopsIncludingHostIO: gflops(N, median(t)),
    note: 'host I/O each run: 2 x N*N f32 uploads + 2 x N*N f32 downloads (Y and S)' };
});
delete out._cpuRef;

// ---------------------------------------------------------------- 2. GPU-resident outputs fed back

await section('gpuBuffer', async () => {
  if (!gpuMm2) throw new Error('webgpu session failed; skipped');
  const n = N;
  const W = randF32(n * n, wScale(n), 3), X0 = randF32(n * n, 1, 4);
  const m = chainModel(n, FLOAT, new Uint8Array(W.buffer));
  const res = {};
  const sessG = await ort.InferenceSession.create(m, { executionProviders: webgpuEP(), preferredOutputLocation: 'gpu-buffer' });
  const sessGc = await ort.InferenceSession.create(m, { executionProviders: webgpuEP() }); // cpu outputs
  const sessCpu = await ort.InferenceSession.create(m, { executionProviders: ['cpu'] });
  // reference: 3 steps on CPU
  let x = new ort.Tensor('float32', X0, [n, n]); const refs = [];
  for (let k = 0; k < 3; k++) { const r = await sessCpu.run({ X: x }); refs.push(r); x = r.Y; }

  const r1 = await sessG.run({ X: new ort.Tensor('float32', X0, [n, n]) });
  res.location = { Y: r1.Y.location, S: r1.S.location };
  res.gpuBufferKind = typeof r1.Y.gpuBuffer === 'object' ? Object.prototype.toString.call(r1.Y.gpuBuffer) : typeof r1.Y.gpuBuffer;
  try { void r1.Y.data; res.dataAccess = 'ok (unexpected)'; } catch (e) { res.dataAccess = `throws: ${errStr(e)}`; }
  res.getData = await getDataInChild();
  // same-session feed back (GPU -> GPU), then cross-session into a cpu-output webgpu session
  try {
    const r2 = await sessG.run({ X: r1.Y });
    res.feedBackSameSession = { ok: true, location: r2.Y.location };
    const r3 = await sessGc.run({ X: r2.Y });
    res.feedBackCrossSession = { ok: true, location: r3.Y.location, diffVsCpu3Steps: { Y: cmp(refs[2].Y.data, r3.Y.data), S: cmp(refs[2].S.data, r3.S.data) } };
    for (const t of [r1.Y, r1.S, r2.Y, r2.S]) t.dispose();
    res.disposeOk = true;
  } catch (e) { res.feedBackError = errStr(e); }
  // per-output location: Y on GPU, S on CPU
  try {
    const sessMixed = await ort.InferenceSession.create(m, { executionProviders: webgpuEP(), preferredOutputLocation: { Y: 'gpu-buffer', S: 'cpu' } });
    const r = await sessMixed.run({ X: new ort.Tensor('float32', X0, [n, n]) });
    res.perOutputLocation = { Y: r.Y.location, S: r.S.location, S_diffVsCpu: cmp(refs[0].S.data, r.S.data) };
    r.Y.dispose(); await sessMixed.release();
  } catch (e) { res.perOutputLocation = { error: errStr(e) }; }
  // feeding a gpu tensor into a CPU-EP session
  try {
    const rg = await sessG.run({ X: new ort.Tensor('float32', X0, [n, n]) }); // rg.Y == step 1 (on GPU)
    try { const rc = await sessCpu.run({ X: rg.Y }); res.gpuTensorIntoCpuSession = { ok: true, Y_diffVsCpu2Steps: cmp(refs[1].Y.data, rc.Y.data) }; }
    catch (e) { res.gpuTensorIntoCpuSession = `throws: ${errStr(e)}`; }
    rg.Y.dispose(); rg.S.dispose();
  } catch (e) { res.gpuTensorIntoCpuSession = `setup failed: ${errStr(e)}`; }
  await sessG.release(); await sessGc.release(); await sessCpu.release();
  return res;
});

// ---------------------------------------------------------------- 3. chained GPU-resident timing (f32, f16)
async function chainTiming(n, half) {
  const Wf = randF32(n * n, wScale(n), 5 + n), Xf = randF32(n * n, 1, 6 + n);
  const elem = half ? FLOAT16 : FLOAT, ty = half ? 'float16' : 'float32';
  const W = half ? f32ToF16(Wf) : Wf, X = half ? f32ToF16(Xf) : Xf;
  const m = chainModel(n, elem, new Uint8Array(W.buffer, W.byteOffset, W.byteLength));
  const sessG = await ort.InferenceSession.create(m, { executionProviders: webgpuEP(), preferredOutputLocation: 'gpu-buffer' });
  const sessGc = await ort.InferenceSession.create(m, { executionProviders: webgpuEP() });
  const res = { n, dtype: ty };
  // accuracy of one step vs CPU f32
  {
    const sessCpu = await ort.InferenceSession.create(chainModel(n, FLOAT, new Uint8Array(Wf.buffer)), { executionProviders: ['cpu'] });
    const ref = await sessCpu.run({ X: new ort.Tensor('float32', half ? f16ToF32(X) : Xf, [n, n]) });
    const got = await sessGc.run({ X: new ort.Tensor(ty, X, [n, n]) });
    res.oneStepDiffVsCpuF32 = cmp(ref.Y.data, half ? f16ToF32(got.Y.data) : got.Y.data);
    await sessCpu.release();
  }
  // host-I/O timing (upload X, download Y and S each run)
  const tHost = await timeRuns(sessGc, { X: new ort.Tensor(ty, X, [n, n]) }, REPS);
  res.hostIO = { medianMs: ms(median(tHost)), gflops: gflops(n, median(tHost)) };
  // GPU-resident: K steps X_{k+1} = X_k @ W fed back on the GPU, then one syncing step that downloads.
  // per-step = (T(K2) - T(K1)) / (K2 - K1), which cancels the sync/download cost.
  const x0 = new ort.Tensor(ty, X, [n, n]);
  const chainRun = async (K) => {
    const t0 = now();
    const r0 = await sessG.run({ X: x0 }); r0.S.dispose(); let cur = r0.Y;
    for (let k = 1; k < K; k++) { const r = await sessG.run({ X: cur }); r.S.dispose(); cur.dispose(); cur = r.Y; }
    const tSubmit = now() - t0;
    await sessGc.run({ X: cur }); cur.dispose();
    return [now() - t0, tSubmit];
  };
  await chainRun(3);
  const K1 = Math.max(2, Math.round(CHAIN_K / 5)), K2 = K1 + CHAIN_K;
  const [t1] = await chainRun(K1), [t2, sub2] = await chainRun(K2);
  const perStep = (t2 - t1) / (K2 - K1);
  res.resident = { K1, K2, totalMsK1: ms(t1), totalMsK2: ms(t2), submitMsK2: ms(sub2), perStepMs: ms(perStep), gflops: gflops(n, perStep),
    note: 'each step = MatMul + Softmax, input and outputs on GPU; perStep = (T(K2)-T(K1))/(K2-K1)' };
  await sessG.release(); await sessGc.release();
  return res;
}

await section('chain', async () => {
  if (!gpuMm2) throw new Error('webgpu session failed; skipped');
  const rows = [];
  for (const n of CHAIN_N) for (const half of [false, true]) {
    try { rows.push(await chainTiming(n, half)); } catch (e) { rows.push({ n, dtype: half ? 'float16' : 'float32', error: errStr(e) }); }
  }
  return rows;
});

// ---------------------------------------------------------------- 4. per-run overhead (tiny model)
await section('overhead', async () => {
  if (!gpuMm2) throw new Error('webgpu session failed; skipped');
  const n = 64, K = quick ? 20 : 300;
  const W = randF32(n * n, wScale(n), 7), X = randF32(n * n, 1, 8);
  const m = chainModel(n, FLOAT, new Uint8Array(W.buffer));
  const res = { n, K };
  const lat = async (sess, feedsFn) => { for (let i = 0; i < 5; i++) await sess.run(feedsFn()); const t = [];
    for (let i = 0; i < K; i++) { const t0 = now(); await sess.run(feedsFn()); t.push(now() - t0); } return ms(median(t)); };
  const sCpu = await ort.InferenceSession.create(m, { executionProviders: ['cpu'] });
  const sG = await ort.InferenceSession.create(m, { executionProviders: webgpuEP() });
  const sGg = await ort.InferenceSession.create(m, { executionProviders: webgpuEP(), preferredOutputLocation: 'gpu-buffer' });
  const xt = () => new ort.Tensor('float32', X, [n, n]);
  res.cpuRunMs = await lat(sCpu, () => ({ X: xt() }));
  res.webgpuHostIORunMs = await lat(sG, () => ({ X: xt() }));
  // resident: K runs fed back on GPU, then one syncing run; mean per run
  let cur = (await sGg.run({ X: xt() })).Y;
  const t0 = now();
  for (let k = 0; k < K; k++) { const r = await sGg.run({ X: cur }); r.S.dispose(); cur.dispose(); cur = r.Y; }
  await sG.run({ X: cur }); cur.dispose();
  res.webgpuResidentRunMs = ms((now() - t0) / K);
  res.note = 'median wall ms of one session.run() for a 2-node graph (64x64 MatMul + Softmax); resident = mean incl. GPU time';
  await sCpu.release(); await sG.release(); await sGg.release();
  return res;
});

// ---------------------------------------------------------------- 5. int64 / LM-style ops placement
// Gather(embedding, int64 ids) -> Add(pos-embedding gathered by int64 positions) -> MatMul -> ArgMax(int64 out)
// created with session.disable_cpu_ep_fallback=1 so creation fails if any node would fall back to CPU.
await section('lmOps', async () => {
  if (!gpuMm2) throw new Error('webgpu session failed; skipped');
  const V = 1000, D = 256, T = 8, INT64 = 7;
  const E = randF32(V * D, 1, 9), P = randF32(64 * D, 1, 10), Wo = randF32(D * V, 0.1, 11);
  const m = model({
    nodes: [node('Gather', ['E', 'ids'], ['h0']), node('Gather', ['P', 'pos'], ['p0']), node('Add', ['h0', 'p0'], ['h1']),
      node('MatMul', ['h1', 'Wo'], ['logits']), node('ArgMax', ['logits'], ['next'], [attrInt('axis', -1), attrInt('keepdims', 0)])],
    inits: [tensorProto('E', FLOAT, [V, D], new Uint8Array(E.buffer)), tensorProto('P', FLOAT, [64, D], new Uint8Array(P.buffer)),
      tensorProto('Wo', FLOAT, [D, V], new Uint8Array(Wo.buffer))],
    inputs: [valueInfo('ids', INT64, [1, T]), valueInfo('pos', INT64, [1, T])],
    outputs: [valueInfo('logits', FLOAT, [1, T, V]), valueInfo('next', INT64, [1, T])],
  });
  const ids = BigInt64Array.from({ length: T }, (_, i) => BigInt((i * 37) % V)), pos = BigInt64Array.from({ length: T }, (_, i) => BigInt(i));
  const feeds = () => ({ ids: new ort.Tensor('int64', ids, [1, T]), pos: new ort.Tensor('int64', pos, [1, T]) });
  const ref = await (await ort.InferenceSession.create(m, { executionProviders: ['cpu'] })).run(feeds());
  const res = {};
  for (const [label, extraEp] of [['default', {}], ['enableInt64', { enableInt64: '1' }]]) {
    try {
      const sess = await ort.InferenceSession.create(m, { executionProviders: [{ name: 'webgpu', ...WEBGPU_OPTS }],
        extra: { session: { disable_cpu_ep_fallback: '1' }, ...(Object.keys(extraEp).length ? { ep: { webgpuexecutionprovider: extraEp } } : {}) } });
      const r = await sess.run(feeds());
      res[label] = { allOnWebgpu: true, logits: cmp(ref.logits.data, r.logits.data),
        nextEqual: r.next.data.every((v, i) => v === ref.next.data[i]) };
      await sess.release();
    } catch (e) { res[label] = { allOnWebgpu: false, error: errStr(e) }; }
  }
  try {
    const md = model({ nodes: [node('Det', ['M'], ['d'])], inputs: [valueInfo('M', FLOAT, [2, 3, 3])], outputs: [valueInfo('d', FLOAT, [2])] });
    await ort.InferenceSession.create(md, { executionProviders: webgpuEP(), extra: { session: { disable_cpu_ep_fallback: '1' } } });
    res.fallbackCheck = 'Det graph created: disable_cpu_ep_fallback NOT honoured (or WebGPU has Det)';
  } catch (e) { res.fallbackCheck = `ok, Det graph refused: ${errStr(e).slice(0, 160)}`; }
  return res;
});

await cpuMm2?.release(); await gpuMm2?.release();
process.stdout.write(JSON.stringify(out) + '\n');
