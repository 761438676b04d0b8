/**
 * The researcher routes against a real server with the bundled ref-llama-7m: binned patterns equal the
 * exact pattern where the window fits the bins and keep row sums at 1 where they bin, the model view's
 * thumbnails cover every head, an intervention changes the pattern it should, bad fields are 400s that
 * name them, and status / results answer without 404s.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_MODEL } from '../cli/common.js';
import { Model } from '../runtime/model.js';
import type { BinnedPattern, ModelPatterns, PatternResponse, ServerStatus } from './api.js';
import { startServer, type WebServer } from './server.js';

const PROMPT = 'Once upon a time, there was a little girl named Lily. She liked to play outside in the sun with her dog Max. One day, Lily and Max went to the park.';

let model: Model;
let web: WebServer;

async function post<T>(route: string, body: unknown): Promise<{ status: number; json: T & { error?: string } }> {
  const res = await fetch(web.url + route, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  return { status: res.status, json: (await res.json()) as T & { error?: string } };
}

beforeAll(async () => {
  model = await Model.load(DEFAULT_MODEL);
  web = await startServer({ model, log: () => undefined, results: [{ kind: 'dla', values: Array.from({ length: 6 }, () => [0, 0.5, -0.5, 1]), target: ' Lily' }] });
});

afterAll(async () => {
  await web?.close();
  await model?.dispose();
});

describe('researcher routes', () => {
  it('bins one head exactly where the window fits, and as shares summing to 1 where it bins', async () => {
    const exact = await post<PatternResponse>('/api/pattern', { prompt: PROMPT, layer: 2, head: 1 });
    const n = exact.json.tokens.length;
    const full = await post<BinnedPattern>('/api/pattern/bins', { prompt: PROMPT, layer: 2, head: 1, bins: 512, query: 7 });
    expect(full.status).toBe(200);
    expect(full.json.cells.length).toBe(n);
    for (let q = 0; q < n; q++) for (let k = 0; k < n; k++) {
      if (k > q) expect(full.json.cells[q][k]).toBeNull();
      else expect(full.json.cells[q][k]!).toBeCloseTo(exact.json.attention[q][k], 4);
    }
    expect(full.json.row).toEqual(exact.json.attention[7]);

    const binned = await post<BinnedPattern>('/api/pattern/bins', { prompt: PROMPT, layer: 2, head: 1, bins: 5 });
    expect(binned.json.cells.length).toBe(5);
    expect(binned.json.cells.every((r) => r.length === 5)).toBe(true);
    for (const row of binned.json.cells) expect(row.reduce<number>((s, x) => s + (x ?? 0), 0)).toBeCloseTo(1, 3);

    // A zoomed window: queries 20..30 over keys 0..10 — the shares are the exact sums over the window.
    const zoom = await post<BinnedPattern>('/api/pattern/bins', { prompt: PROMPT, layer: 2, head: 1, bins: 64, queries: [20, 30], keys: [0, 10] });
    expect(zoom.json.queryEdges).toEqual([20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30]);
    expect(zoom.json.cells[3][4]!).toBeCloseTo(exact.json.attention[23][4], 4);
  });

  it('runs an intervention on the same pass: PASTA moves the head\'s attention onto the span', async () => {
    const spec = { version: 1, interventions: [{ op: 'pasta', heads: ['2:1'], params: { alpha: 0.01, spans: [{ text: 'her dog Max' }] } }] };
    const base = await post<BinnedPattern>('/api/pattern/bins', { prompt: PROMPT, layer: 2, head: 1, bins: 512 });
    const steered = await post<BinnedPattern>('/api/pattern/bins', { prompt: PROMPT, layer: 2, head: 1, bins: 512, interventions: spec });
    expect(steered.status).toBe(200);
    expect(steered.json.interventions[0]).toMatch(/pasta/);
    const span = base.json.tokens.indexOf(' dog');
    expect(span).toBeGreaterThan(0);
    const last = base.json.tokens.length - 1;
    expect(steered.json.row[span]).toBeGreaterThan(base.json.row[span]);
    expect(steered.json.cells[last][span]!).toBeCloseTo(steered.json.row[span], 4);
  });

  it('gives every head of every layer a thumbnail', async () => {
    const r = await post<ModelPatterns>('/api/patterns', { prompt: PROMPT, bins: 8 });
    expect(r.status).toBe(200);
    expect(r.json.cells.length).toBe(6);
    expect(r.json.cells.every((l) => l.length === 4 && l.every((hd) => hd.length === 8 && hd.every((row) => row.length === 8)))).toBe(true);
    expect(r.json.edges).toHaveLength(9);
    const one = await post<BinnedPattern>('/api/pattern/bins', { prompt: PROMPT, layer: 4, head: 2, bins: 8 });
    expect(r.json.cells[4][2][5][3]!).toBeCloseTo(one.json.cells[5][3]!, 3);
  });

  it('refuses bad fields with a message naming them', async () => {
    const cases: [unknown, RegExp][] = [
      [{ prompt: PROMPT, layer: 6, head: 0 }, /^layer: 6 is out of range/],
      [{ prompt: PROMPT, layer: 0, head: 0, bins: 0 }, /^bins: 0 is out of range/],
      [{ prompt: PROMPT, layer: 0, head: 0, queries: [5, 2] }, /^queries: \[5, 2\] is not a range/],
      [{ prompt: PROMPT, layer: 0, head: 0, keys: 'all' }, /^keys: must be \[start, end\]/],
      [{ prompt: PROMPT, layer: 0, head: 0, query: 10_000 }, /^query: 10000 is out of range/],
      [{ prompt: PROMPT, layer: 0, head: 0, interventions: { version: 1, interventions: [{ op: 'ablate', heads: ['9:9'] }] } }, /^interventions: .*out of range/],
      [{ prompt: '', layer: 0, head: 0 }, /^prompt: is empty/],
      [{ prompt: PROMPT, layer: 0, head: 0, colour: 'red' }, /^colour: unknown field/],
    ];
    for (const [body, message] of cases) {
      const r = await post('/api/pattern/bins', body);
      expect(r.status, JSON.stringify(body)).toBe(400);
      expect(r.json.error).toMatch(message);
    }
    expect((await post('/api/patterns', { prompt: PROMPT, bins: 65 })).json.error).toMatch(/^bins: 65 is out of range/);
  });

  it('says what it holds without a 404, and serves the loaded results', async () => {
    const status = (await (await fetch(web.url + '/api/status')).json()) as ServerStatus;
    expect(status).toEqual({ atlas: false, niah: false, results: 1 });
    const results = (await (await fetch(web.url + '/api/results')).json()) as { results: { kind: string }[] };
    expect(results.results.map((r) => r.kind)).toEqual(['dla']);
  });
});
