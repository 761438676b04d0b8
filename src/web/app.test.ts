/**
 * The web app end to end in headless Chromium (Debian's /usr/bin/chromium driven by playwright-core):
 * the front-end is built with Vite into a temporary folder, served by the real server with the bundled
 * ref-llama-7m and a synthetic atlas, and clicked through as a person would — atlas → head → pattern,
 * playground with an ablation of the top retrieval heads on a pass-key prompt and its head checks,
 * needles & KV, the model view of every head, the compare view, the patching & attribution view from
 * a results file, and the real CLI's `patch --json` served by `serve --results` — plus a 32-layer × 32-head model (random weights) whose atlas must fit 1280 × 800
 * without scrolling, and an 8K-token prompt on a random 8K-position model whose head view must draw a
 * bounded number of binned cells. No request of a page load may fail (no 404 noise).
 * Screenshots go to test-output/web/ for a person to look at.
 *
 * Without Chromium the tests skip with a message; with HEADWISE_REQUIRE_BROWSER=1 (set by CI) they fail.
 */
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BrowserContext, Page } from 'playwright-core';
import type { AtlasFile } from '../atlas/file.js';
import { formatShort } from '../atlas/metricDisplay.js';
import { DEFAULT_MODEL } from '../cli/common.js';
import { makeRandom } from '../cli/makeRandom.js';
import { Model } from '../runtime/model.js';
import { atlasRunner, niahRunner } from './runners.js';
import type { ResearchResult } from '../atlas/researchResult.js';
import { longContextModel, longPrompt } from './longContext.js';
import { startServer, type WebServer } from './server.js';

const CHROMIUM = '/usr/bin/chromium';
const HAVE_CHROMIUM = fs.existsSync(CHROMIUM);
const REQUIRED = process.env.HEADWISE_REQUIRE_BROWSER === '1';
const SHOTS = path.resolve('test-output', 'web');
const VIEWPORT = { width: 1280, height: 800 };
/** Jobs that run the model for many prompts: generous on a loaded 2-core machine. */
const LONG = 400_000;
/** expect.poll with room for a loaded machine (the default gives up after 1 s). */
const poll = <T>(fn: () => T | Promise<T>) => expect.poll(fn, { timeout: 30_000 });

if (!HAVE_CHROMIUM) {
  const msg = `[headwise tests] ${REQUIRED ? 'FAILING' : 'SKIPPING'} web app browser tests: ${CHROMIUM} not found (install it with \`apt-get install -y chromium\`)`;
  if (REQUIRED) throw new Error(msg);
  console.warn(msg);
}

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'headwise-web-'));

/** An atlas of the model's shape whose metrics are a smooth function of (layer, head), with chosen top heads. */
function syntheticAtlas(layers: number, heads: number, top: [number, number][] = [], kvHeads = heads): AtlasFile {
  const grid = (f: (l: number, h: number) => number, cols = heads) => Array.from({ length: layers }, (_, l) => Array.from({ length: cols }, (_, h) => Math.round(f(l, h) * 1e4) / 1e4));
  const retrieval = grid((l, h) => 0.02 + 0.1 * Math.abs(Math.sin(l * 1.7 + h * 0.9)) * (l / layers));
  top.forEach(([l, h], i) => (retrieval[l][h] = 0.6 - i * 0.1));
  return {
    format: 'headwise-atlas',
    version: 1,
    createdAt: '2026-01-01T00:00:00.000Z',
    model: { name: 'synthetic', family: 'llama', layers, heads, kvHeads, headDim: 64, vocab: 8192 },
    settings: { contextTokens: 256, samples: 4, seed: 0, note: 'synthetic atlas for the web app tests' },
    metrics: {
      retrieval,
      sink: grid((l, h) => (l === 0 ? 0.1 : 0.5 + 0.45 * Math.cos(l + h * 2))),
      previousToken: grid((l, h) => Math.max(0, Math.sin(h * 1.3 - l)) ** 2),
      streamingHarm: grid((l, g) => 0.3 * Math.sin(l * 0.8 - g * 0.5), kvHeads),
    },
    metricInfo: {
      retrieval: { per: 'head', samples: 4, description: 'share of answer tokens the head copies from the needle (synthetic)' },
      sink: { per: 'head', samples: 4, description: 'attention on the first token (synthetic)' },
      previousToken: { per: 'head', samples: 4, description: 'attention on the previous token (synthetic)' },
      streamingHarm: { per: 'kvHead', samples: 4, description: 'loss increase when the KV head only keeps sink + window (synthetic, signed)' },
    },
  };
}

async function launch(): Promise<BrowserContext> {
  const { chromium } = await import('playwright-core');
  return chromium.launchPersistentContext(fs.mkdtempSync(path.join(tmp, 'profile-')), {
    executablePath: CHROMIUM,
    headless: true,
    viewport: VIEWPORT,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}

async function shot(page: Page, name: string): Promise<void> {
  fs.mkdirSync(SHOTS, { recursive: true });
  await page.screenshot({ path: path.join(SHOTS, `${name}.png`) });
}

/** Collects page errors, console errors and every answer ≥ 400, so a broken view (or 404 noise) fails the test. */
function watchErrors(page: Page, allowStatus: (url: string, status: number) => boolean = () => false): string[] {
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(`pageerror: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error' && !/Failed to load resource/.test(m.text())) errors.push(`console: ${m.text()}`);
  });
  page.on('response', (r) => {
    if (r.status() >= 400 && !allowStatus(r.url(), r.status())) errors.push(`HTTP ${r.status()} ${r.request().method()} ${new URL(r.url()).pathname}`);
  });
  return errors;
}

/** Research results of the bundled model's shape, as the research API is to write them. */
function syntheticResults(layers: number, heads: number): ResearchResult[] {
  const grid = (f: (l: number, h: number) => number) => Array.from({ length: layers }, (_, l) => Array.from({ length: heads }, (_, h) => Math.round(f(l, h) * 1e3) / 1e3));
  const tokens = ['<|endoftext|>', 'The', ' pass', ' key', ' is', ' 7', '.'];
  return [
    { kind: 'patch-head', values: grid((l, h) => (l === 5 && h === 3 ? 0.82 : 0.05 * Math.sin(l * 3 + h))), metric: 'logit difference restored', n: 20, prompts: { clean: 'The pass key is 7.', corrupted: 'The pass key is 4.' } },
    { kind: 'patch-head-pos', values: Array.from({ length: layers }, (_, l) => Array.from({ length: heads }, (_, h) => tokens.map((_, p) => (l === 5 && h === 3 && p === 5 ? 0.9 : Math.round(0.04 * Math.cos(l * p + h) * 1e3) / 1e3)))), tokens, metric: 'logit difference restored' },
    { kind: 'dla', values: grid((l, h) => (l - 2.5) * (h - 1.5) * 0.4), target: ' 7' },
    { kind: 'logit-lens', tokens, prob: Array.from({ length: layers }, (_, l) => tokens.map((_, p) => Math.round(Math.min(1, ((l + 1) / layers) ** 2 * (p / 6)) * 1e3) / 1e3)), top: Array.from({ length: layers }, (_, l) => tokens.map((t) => (l >= 4 ? ' 7' : t))), target: ' 7' },
  ];
}

describe.skipIf(!HAVE_CHROMIUM)('web app in Chromium', () => {
  let appDir: string;
  let model: Model;
  let web: WebServer;
  let browser: BrowserContext;

  beforeAll(async () => {
    appDir = path.join(tmp, 'app');
    const { build } = await import('vite');
    await build({ configFile: path.resolve('src/web/app/vite.config.ts'), build: { outDir: appDir, emptyOutDir: true }, logLevel: 'error' });
    model = await Model.load(DEFAULT_MODEL);
    const c = model.config;
    web = await startServer({
      model,
      appDir,
      atlas: syntheticAtlas(c.numLayers, c.numHeads, [[5, 3], [5, 1]]),
      results: syntheticResults(c.numLayers, c.numHeads),
      runners: { atlas: atlasRunner, niah: niahRunner },
    });
    browser = await launch();
  });

  afterAll(async () => {
    await browser?.close();
    await web?.close();
    await model?.dispose();
  });

  it('loads the atlas, shows exact values on hover, and opens a head with its pattern', async () => {
    const page = await browser.newPage();
    const errors = watchErrors(page);
    await page.goto(web.url + '/');
    const cells = page.locator('[data-testid=atlas-grid] rect[data-layer]');
    await poll(() => cells.count()).toBe(24);
    const cell = page.locator('[data-testid=atlas-grid] rect[data-layer="5"][data-head="3"]');
    await cell.hover();
    await poll(() => page.getByTestId('hover-readout').textContent()).toContain('L5 H3 Retrieval score = 0.6000');
    expect(await page.getByTestId('hover-readout').textContent()).toContain('(retrieval)');
    // Values are written in the cells; a share sits on the fixed [0, 1] scale whatever its maximum.
    expect(await page.locator('[data-testid=atlas-grid] text').allTextContents()).toContain('.600');
    expect(await page.locator('.legend').textContent()).toContain('fixed 0–1');
    expect(await page.getByTestId('metric-select').locator('option').first().textContent()).toBe('Retrieval score');
    await shot(page, '1-atlas');

    // Switch metric: the grid redraws with the other metric's legend.
    await page.getByTestId('metric-select').selectOption('streamingHarm');
    await poll(() => page.locator('h2').first().textContent()).toContain('Streaming harm');
    expect(await page.locator('h2').first().getAttribute('title')).toBe('code name: streamingHarm');
    await shot(page, '2-atlas-streamingHarm');
    await page.getByTestId('metric-select').selectOption('retrieval');

    await page.locator('[data-testid=atlas-grid] rect[data-layer="5"][data-head="3"]').click();
    await poll(() => page.evaluate(() => location.hash)).toBe('#/head/5/3');
    // The pattern arrives from the server, binned, and is drawn on a canvas; the prompt panel is virtualised.
    const map = page.locator('[data-testid=pattern] .binned-map');
    await map.waitFor({ timeout: 30_000 });
    const tokens = page.locator('[data-testid=query-tokens] .tok');
    const n = Number((await page.getByTestId('zoom-note').textContent())!.match(/(\d+) tokens/)![1]);
    expect(n).toBeGreaterThan(150);
    expect(await tokens.count()).toBeGreaterThan(40);
    expect(await tokens.count()).toBeLessThan(n);
    await poll(() => page.getByTestId('head-scores').textContent()).toContain('#1 of 24');
    await shot(page, '3-head-L5H3');

    // Pick another query by clicking its token; the inspector follows.
    const near = n - 10;
    await page.locator(`[data-testid=query-tokens] .tok[data-pos="${near}"]`).click();
    await poll(() => page.locator('.inspector h3').first().textContent()).toContain(`${near}:`);

    // Drag a rectangle: the view zooms to those queries × keys; small enough, every token is a cell.
    await page.getByTestId('bins-select').selectOption('256');
    await page.getByTestId('show-pattern').click();
    await poll(() => page.getByTestId('zoom-note').textContent()).toContain('every token shown');
    const box = (await page.locator('[data-testid=pattern] canvas').boundingBox())!;
    await page.mouse.move(box.x + box.width * 0.3, box.y + box.height * 0.6);
    await page.mouse.down();
    await page.mouse.move(box.x + box.width * 0.45, box.y + box.height * 0.75, { steps: 5 });
    await page.mouse.up();
    await poll(() => page.getByTestId('zoom-note').textContent()).toMatch(/^queries \d+–\d+ × keys \d+–\d+ · every token shown/);
    const [q0, q1, k0, k1] = (await map.getAttribute('data-window'))!.split(',').map(Number);
    expect(q1 - q0).toBeLessThan(n / 4);
    expect(k1 - k0).toBeLessThan(n / 4);
    expect(Number(await map.getAttribute('data-cells'))).toBe((q1 - q0) * (k1 - k0));
    await shot(page, '4-head-zoomed');
    await page.getByTestId('zoom-reset').click();
    await poll(() => page.getByTestId('zoom-note').textContent()).toMatch(/^\d+ tokens/);
    expect(errors).toEqual([]);
    await page.close();
  });

  it('runs a pass-key prompt with the top retrieval heads ablated and shows the answer change', async () => {
    const page = await browser.newPage();
    const errors = watchErrors(page);
    await page.goto(web.url + '/#/playground');
    await page.getByTestId('example-pass-key').click();
    await poll(() => page.getByTestId('heads-input').inputValue()).toBe('5:3, 5:1');
    expect(await page.getByTestId('play-grid').locator('rect[data-layer]').count()).toBe(24);
    await page.getByTestId('run').click();
    await page.getByTestId('answer-badge').waitFor({ timeout: 60_000 });
    const before = (await page.getByTestId('answer-before').textContent())!;
    const after = (await page.getByTestId('answer-after').textContent())!;
    const key = /\d{5,}/.exec(before)?.[0];
    expect(key, `the plain run should recall the pass key (got ${JSON.stringify(before)})`).toBeDefined();
    expect(after).not.toContain(key!);
    expect(await page.getByTestId('answer-badge').textContent()).toBe('answer changed');
    await shot(page, '5-playground-ablation');

    // Toggle a head off on the grid: the spec follows.
    await page.getByTestId('play-grid').locator('rect[data-layer="5"][data-head="1"]').click();
    await poll(() => page.getByTestId('heads-input').inputValue()).toBe('5:3');
    expect(errors).toEqual([]);
    await page.close();
  });

  it('shows the server\'s message for a bad request instead of failing silently', async () => {
    const page = await browser.newPage();
    await page.goto(web.url + '/#/playground');
    await page.locator('details summary').click();
    await page.getByTestId('spec-json').fill('{"version": 1, "interventions": [{"op": "ablate", "heads": ["9:0"]}]}');
    await page.getByTestId('run').click();
    const error = page.getByTestId('error');
    await error.waitFor();
    expect(await error.textContent()).toMatch(/^interventions: interventions\[0\]\.heads\[0\].*out of range/);
    await shot(page, '6-playground-error');
    await page.close();
  });

  it('checks the heads field as the CLI does: a bad or empty list is an error and nothing runs', async () => {
    const page = await browser.newPage();
    const errors = watchErrors(page);
    const generates: string[] = [];
    page.on('request', (r) => r.url().endsWith('/api/generate') && generates.push(r.url()));
    await page.goto(web.url + '/#/playground');
    await page.getByTestId('example-pass-key').click();
    await page.getByTestId('heads-input').fill('9:9');
    await page.getByTestId('run').click();
    const err = page.getByTestId('heads-error');
    await poll(() => err.textContent()).toMatch(/^heads: item 1 .*9.*out of range/);
    await shot(page, '6b-playground-bad-heads');
    await page.getByTestId('heads-input').fill('');
    await page.getByTestId('run').click();
    await poll(() => err.textContent()).toMatch(/^heads: no heads given/);
    await poll(() => page.getByTestId('results').textContent()).toContain('Nothing was run');
    expect(generates).toEqual([]);
    // A good list clears the message and runs.
    await page.getByTestId('heads-input').fill('5:3');
    await page.getByTestId('run').click();
    await page.getByTestId('answer-badge').waitFor({ timeout: 60_000 });
    expect(await err.textContent()).toBe('');
    expect(generates).toHaveLength(1);
    expect(errors).toEqual([]);
    await page.close();
  });

  it('shows every head of every layer as a thumbnail; a click opens the head', async () => {
    const page = await browser.newPage();
    const errors = watchErrors(page);
    await page.goto(web.url + '/#/model');
    const thumbs = page.getByTestId('thumb');
    await poll(() => thumbs.count()).toBe(24);
    for (const t of await thumbs.all()) expect(Number(await t.getAttribute('data-cells'))).toBeLessThanOrEqual(24 * 24);
    await page.locator('[data-testid=thumb][data-layer="2"][data-head="1"]').hover();
    await poll(() => page.getByTestId('thumb-readout').textContent()).toContain('L2 H1 · Retrieval score');
    await shot(page, '14-model-view');
    await page.locator('[data-testid=thumb][data-layer="2"][data-head="1"]').click();
    await poll(() => page.evaluate(() => location.hash)).toBe('#/head/2/1');
    expect(errors).toEqual([]);
    await page.close();
  });

  it('compares one head on a prompt without and with an ablation, side by side', async () => {
    const page = await browser.newPage();
    const errors = watchErrors(page, (url, status) => status === 400 && url.endsWith('/api/pattern/bins'));
    await page.goto(web.url + '/#/compare/5/3');
    await page.getByTestId('compare-heads').fill('9:9');
    await page.getByTestId('run-compare').click();
    await poll(() => page.getByTestId('error').textContent()).toMatch(/^heads: item 1 .*out of range/);
    await page.getByTestId('compare-heads').fill('4:0, 4:1, 4:2, 4:3');
    await page.getByTestId('run-compare').click();
    await page.locator('[data-testid=compare-right] .binned-map').waitFor({ timeout: 60_000 });
    expect(await page.locator('.compare-side .binned-map').count()).toBe(2);
    expect(await page.getByTestId('compare-title-1').textContent()).toMatch(/^B — ablate \(zero\) 4:/);
    expect(await page.getByTestId('compare-moved').textContent()).toContain('largest changes A → B');
    await shot(page, '15-compare-ablation');
    // Two prompts instead.
    await page.getByTestId('compare-heads').fill('');
    await page.getByTestId('compare-b').fill('Once upon a time, there was a little girl named Lily. One day, she');
    await page.getByTestId('run-compare').click();
    await poll(() => page.getByTestId('compare-moved').textContent()).toContain('prompts differ');
    await shot(page, '16-compare-prompts');
    expect(errors).toEqual([]);
    await page.close();
  });

  it('draws patching, attribution and logit-lens results, from the server and from an opened file', async () => {
    const page = await browser.newPage();
    const errors = watchErrors(page);
    await page.goto(web.url + '/#/results');
    for (const kind of ['patch-head', 'patch-head-pos', 'dla', 'logit-lens']) await page.getByTestId(`result-${kind}`).waitFor();
    // Signed effects on a diverging scale around 0; the logit lens's probabilities on the fixed [0, 1] scale.
    expect(await page.getByTestId('result-patch-head').textContent()).toContain('diverging around 0');
    expect(await page.getByTestId('result-patch-head').locator('text').allTextContents()).toContain('.820');
    expect(await page.getByTestId('result-logit-lens').textContent()).toContain('fixed 0–1');
    await shot(page, '17-results');
    await page.getByTestId('result-logit-lens').scrollIntoViewIfNeeded();
    await shot(page, '18-results-logit-lens');
    // A file of the wrong shape is refused with the field named; a good one is added on top.
    const bad = path.join(tmp, 'bad-results.json');
    fs.writeFileSync(bad, JSON.stringify({ kind: 'dla', values: [[1, 2], [3]] }));
    await page.getByTestId('results-file').setInputFiles(bad);
    await poll(() => page.getByTestId('error').textContent()).toBe('bad-results.json: result.values[1]: has 1 entries, result.values[0] has 2');
    const good = path.join(tmp, 'good-results.json');
    fs.writeFileSync(good, JSON.stringify({ format: 'headwise-results', version: 1, results: [{ kind: 'dla', title: 'DLA from a file', values: syntheticResults(6, 4)[2].kind === 'dla' ? (syntheticResults(6, 4)[2] as { values: number[][] }).values : [] }] }));
    await page.getByTestId('results-file').setInputFiles(good);
    await poll(() => page.getByTestId('result-dla').count()).toBe(2);
    expect(await page.locator('.result h3').first().textContent()).toContain('DLA from a file');
    expect(errors).toEqual([]);
    await page.close();
  });

  it('serves a real `headwise patch --json` output (serve --results) and opens `importance --json` in the page', async () => {
    // The real CLI (dist/, from `npm run build`) writes the files and serves them, as a person would.
    const cli = path.resolve('dist/cli/main.js');
    expect(fs.existsSync(cli), `${cli} is missing: run \`npm run build\` first`).toBe(true);
    const env = { ...process.env, HEADWISE_CACHE: process.env.HEADWISE_CACHE ?? path.join(tmp, 'cache') };
    const runCli = (args: string[]) => {
      const r = spawnSync(process.execPath, [cli, ...args, '--threads', '1'], { encoding: 'utf8', env, timeout: 120_000 });
      expect(r.stderr).toBe('');
      expect(r.status).toBe(0);
      return r.stdout;
    };
    const [clean, corrupt] = ['The cat sat on the mat. The cat sat on the', 'The cat sat on the bed. The cat sat on the'];
    const patchFile = path.join(tmp, 'patch-head.json');
    fs.writeFileSync(patchFile, runCli(['patch', '--clean', clean, '--corrupt', corrupt, '--answer', ' mat', '--wrong', ' bed', '--json']));
    const prompts = path.join(tmp, 'importance-prompts.jsonl');
    fs.writeFileSync(prompts, [JSON.stringify({ clean, corrupt, answer: ' mat', wrong: ' bed' }), JSON.stringify({ clean: corrupt, corrupt: clean, answer: ' bed', wrong: ' mat' })].join('\n'));
    const importanceFile = path.join(tmp, 'importance.json');
    fs.writeFileSync(importanceFile, runCli(['importance', '--prompts', prompts, '--heads', '4:*,5:*', '--json']));
    const patch = JSON.parse(fs.readFileSync(patchFile, 'utf8')) as { cells: { layer: number; head: number; restored: number }[] };
    const best = patch.cells.reduce((a, b) => (b.restored > a.restored ? b : a));

    const server = spawn(process.execPath, [cli, 'serve', '--results', patchFile, '--port', '0', '--threads', '1'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    server.stderr.on('data', (d) => (stderr += d));
    try {
      const url = await new Promise<string>((resolve, reject) => {
        let out = '';
        server.stdout.on('data', (d) => {
          out += d;
          const m = /serving .* at (http:\/\/\S+?)\/? \(/.exec(out);
          if (m) resolve(m[1]);
        });
        server.on('exit', (code) => reject(new Error(`serve exited with ${code}: ${stderr}`)));
      });
      expect(stderr).toBe('');
      const page = await browser.newPage();
      const errors = watchErrors(page);
      await page.goto(url + '/#/results');
      const panel = page.getByTestId('result-patch-head');
      await panel.waitFor();
      expect(await panel.locator('rect.head-cell').count()).toBe(24);
      expect(await panel.textContent()).toContain('share of the gap in logit(" mat") − logit(" bed") restored');
      expect(await panel.locator('text').allTextContents()).toContain(formatShort(best.restored));
      await panel.locator(`rect[data-layer="${best.layer}"][data-head="${best.head}"]`).hover();
      await poll(() => panel.locator('[aria-label=tip]').textContent()).toContain(`layer ${best.layer}, head ${best.head}`);
      await shot(page, '19-results-from-patch-json');
      // importance --json through the page's file opener: a grid of the two layers ranked, with intervals on hover.
      await page.getByTestId('results-file').setInputFiles(importanceFile);
      const imp = page.getByTestId('result-head-importance');
      await imp.waitFor();
      // Only the 8 heads ranked are drawn; the layers left out stay blank.
      expect(await imp.locator('rect.head-cell').count()).toBe(8);
      await imp.locator('rect[data-layer="5"][data-head="1"]').hover();
      await poll(() => imp.locator('[aria-label=tip]').textContent()).toMatch(/layer 5, head 1[\s\S]*95% interval \[[\s\S]*\], n = 2/);
      await shot(page, '20-results-from-importance-json');
      // The other CLI outputs (committed real ones): attribute → DLA + logit lens; patch --mode head-pos.
      const cliDir = path.resolve('src/atlas/testdata/researchCli');
      await page.getByTestId('results-file').setInputFiles(path.join(cliDir, 'attribution.json'));
      await page.getByTestId('result-logit-lens').waitFor();
      expect(await page.getByTestId('result-dla').locator('rect.head-cell').count()).toBe(24);
      await page.getByTestId('results-file').setInputFiles(path.join(cliDir, 'patch-head-pos-diff.json'));
      await page.getByTestId('result-patch-head-pos').waitFor();
      await shot(page, '21-results-from-attribute-and-head-pos-json');
      expect(errors).toEqual([]);
      await page.close();
    } finally {
      server.kill('SIGTERM');
    }
  });

  it('runs the needle sweep as a job with progress and draws the grid and the KV curve', async () => {
    const page = await browser.newPage();
    const errors = watchErrors(page);
    await page.goto(web.url + '/#/needles');
    // Nothing computed yet: an empty state, and no request for /api/niah (it would 404).
    await page.getByTestId('niah-empty').waitFor();
    await shot(page, '7a-needles-empty');
    await page.getByTestId('run-niah').click();
    await page.locator('.needles-body svg').first().waitFor({ timeout: LONG });
    await poll(() => page.locator('.needles-body .panel').count()).toBe(2);
    // n and 95% intervals everywhere, one unit (MiB) for memory.
    expect(await page.getByTestId('niah-n').textContent()).toMatch(/^n = 2 prompts per cell/);
    const table = (await page.getByTestId('kv-table').textContent())!;
    expect(table).toMatch(/\d+% \(n = 10, 95% CI \d+–\d+%\)/);
    expect(table).toContain('MiB');
    expect(table).not.toMatch(/\bKB\b|\bMB\b/);
    await shot(page, '7-needles-kv');
    expect(errors).toEqual([]);
    await page.close();
  }, LONG);

  describe('a server without an atlas', () => {
    let bare: WebServer;

    beforeAll(async () => {
      bare = await startServer({ model, appDir, runners: { atlas: atlasRunner, niah: niahRunner } });
    });

    afterAll(async () => {
      await bare?.close();
    });

    it('computes a quick atlas as a job with progress; its top retrieval heads become the ablation example', async () => {
      const page = await browser.newPage();
      const errors = watchErrors(page);
      await page.goto(bare.url + '/');
      await poll(() => page.locator('h2').first().textContent()).toContain('no atlas yet');
      await page.getByTestId('tab-needles').click();
      await page.getByTestId('niah-empty').waitFor();
      await page.getByTestId('tab-results').click();
      await page.getByTestId('results-empty').waitFor();
      await page.getByTestId('tab-atlas').click();
      await page.getByRole('button', { name: 'Compute atlas (quick)' }).click();
      await page.getByTestId('job-progress').waitFor();
      await poll(() => page.getByTestId('job-progress').textContent()).toMatch(/step \d+ of \d+/);
      await shot(page, '11-atlas-job-progress');
      await page.getByTestId('metric-select').waitFor({ timeout: LONG });
      const top = await page.locator('.top-heads li').allTextContents();
      expect(top[0]).toMatch(/^L5 H3 /);
      expect(top[1]).toMatch(/^L5 H1 /);
      await shot(page, '12-atlas-computed');

      await page.getByTestId('tab-needles').click();
      await page.locator('.needles-body svg').first().waitFor();
      expect(await page.locator('.needles-body h3').first().textContent()).toContain("atlas's prompts");
      await shot(page, '13-needles-from-atlas');

      await page.getByTestId('tab-playground').click();
      await page.getByTestId('example-pass-key').click();
      await poll(() => page.getByTestId('heads-input').inputValue()).toBe('5:3, 5:1');
      expect(errors).toEqual([]);
      await page.close();
    }, LONG);
  });

  describe('a 32-layer × 32-head model at 1280 × 800', () => {
    let big: Model;
    let bigWeb: WebServer;

    beforeAll(async () => {
      const like = path.join(tmp, 'like32');
      fs.mkdirSync(like);
      const raw = JSON.parse(fs.readFileSync(path.join(DEFAULT_MODEL, 'config.json'), 'utf8'));
      Object.assign(raw, { num_hidden_layers: 32, num_attention_heads: 32, num_key_value_heads: 8, head_dim: 8, hidden_size: 256, intermediate_size: 64 });
      fs.writeFileSync(path.join(like, 'config.json'), JSON.stringify(raw));
      for (const f of ['tokenizer.json', 'tokenizer_config.json']) fs.copyFileSync(path.join(DEFAULT_MODEL, f), path.join(like, f));
      const out = path.join(tmp, 'random-32x32');
      makeRandom({ like, out });
      big = await Model.load(out);
      bigWeb = await startServer({ model: big, appDir, atlas: syntheticAtlas(32, 32, [[20, 7]], 8) });
    });

    afterAll(async () => {
      await bigWeb?.close();
      await big?.dispose();
    });

    it('shows the whole grid without scrolling', async () => {
      const page = await browser.newPage();
      const errors = watchErrors(page);
      await page.goto(bigWeb.url + '/');
      const cells = page.locator('[data-testid=atlas-grid] rect[data-layer]');
      await poll(() => cells.count()).toBe(1024);
      const layout = await page.evaluate(() => {
        const box = document.querySelector('[data-testid=atlas-grid]')!;
        const rects = Array.from(box.querySelectorAll('rect[data-layer]')).map((r) => r.getBoundingClientRect());
        const svg = box.querySelector('svg')!.getBoundingClientRect();
        const scroller = document.scrollingElement!;
        const main = document.querySelector('main')!;
        return {
          right: Math.max(...rects.map((r) => r.right)),
          bottom: Math.max(...rects.map((r) => r.bottom)),
          minCell: Math.min(...rects.map((r) => Math.min(r.width, r.height))),
          svgBottom: svg.bottom,
          svgRight: svg.right,
          boxScroll: box.scrollHeight > box.clientHeight || box.scrollWidth > box.clientWidth,
          pageScroll: scroller.scrollHeight > scroller.clientHeight || main.scrollHeight > main.clientHeight,
        };
      });
      expect(layout.bottom).toBeLessThanOrEqual(VIEWPORT.height);
      expect(layout.right).toBeLessThanOrEqual(VIEWPORT.width);
      expect(layout.svgBottom).toBeLessThanOrEqual(VIEWPORT.height);
      expect(layout.boxScroll).toBe(false);
      expect(layout.pageScroll).toBe(false);
      expect(layout.minCell).toBeGreaterThanOrEqual(12);
      await page.locator('[data-testid=atlas-grid] rect[data-layer="20"][data-head="7"]').hover();
      await poll(() => page.getByTestId('hover-readout').textContent()).toContain('L20 H7 Retrieval score = 0.6000');
      await shot(page, '8-atlas-32x32');

      // A per-KV-head metric: 32 layers × 8 KV heads; a click opens the first query head of the group.
      await page.getByTestId('metric-select').selectOption('streamingHarm');
      await poll(() => cells.count()).toBe(256);
      await page.locator('[data-testid=atlas-grid] rect[data-layer="3"][data-head="2"]').hover();
      await poll(() => page.getByTestId('hover-readout').textContent()).toContain('L3 KV2 Streaming harm');
      await shot(page, '9-atlas-32x8-kv-metric');
      await page.locator('[data-testid=atlas-grid] rect[data-layer="3"][data-head="2"]').click();
      await poll(() => page.evaluate(() => location.hash)).toBe('#/head/3/8');
      await page.locator('[data-testid=pattern] .binned-map').waitFor({ timeout: 30_000 });
      await poll(() => page.getByTestId('head-scores').textContent()).toContain('Streaming harm');
      await shot(page, '10-head-32x32-L3H8');
      expect(errors).toEqual([]);
      await page.close();
    });
  });

  describe('an 8K-token prompt', () => {
    let long: Model;
    let longWeb: WebServer;
    let prompt: string;

    beforeAll(async () => {
      long = await Model.load(longContextModel(tmp));
      prompt = longPrompt(long, 8192);
      longWeb = await startServer({ model: long, appDir });
    }, LONG);

    afterAll(async () => {
      await longWeb?.close();
      await long?.dispose();
    });

    it('draws the head view from bins (never 64M cells), zooms in, and keeps the prompt panel small', async () => {
      const page = await browser.newPage();
      const errors = watchErrors(page);
      await page.goto(longWeb.url + '/#/head/1/0');
      await page.getByTestId('head-prompt').fill(prompt);
      await page.getByTestId('show-pattern').click();
      const map = page.locator('[data-testid=pattern] .binned-map');
      await map.waitFor({ timeout: LONG });
      await poll(() => page.getByTestId('zoom-note').textContent()).toBe('8192 tokens · 256 × 256 bins');
      // Binning really happens: 256 × 256 cells (the default and largest choice) for 8192 × 8192 weights.
      expect(Number(await map.getAttribute('data-cells'))).toBe(256 * 256);
      expect(Number(await map.getAttribute('data-drawn'))).toBeLessThanOrEqual(256 * 256);
      expect(await map.getAttribute('data-window')).toBe('0,8192,0,8192');
      // The prompt panel holds a few hundred chips at most, not 8192.
      expect(await page.locator('[data-testid=query-tokens] .tok').count()).toBeLessThan(400);
      await shot(page, '19-head-8k');
      const box = (await page.locator('[data-testid=pattern] canvas').boundingBox())!;
      await page.mouse.move(box.x + box.width * 0.9, box.y + box.height * 0.9);
      await page.mouse.down();
      await page.mouse.move(box.x + box.width * 0.98, box.y + box.height * 0.98, { steps: 4 });
      await page.mouse.up();
      await poll(() => page.getByTestId('zoom-note').textContent()).toMatch(/^queries \d+–\d+ × keys \d+–\d+/);
      const [q0, q1, k0, k1] = (await map.getAttribute('data-window'))!.split(',').map(Number);
      expect(q0).toBeGreaterThan(7000);
      expect(q1 - q0).toBeLessThan(1024);
      expect(k1 - k0).toBeLessThan(1024);
      expect(Number(await map.getAttribute('data-cells'))).toBeLessThanOrEqual(256 * 256);
      await shot(page, '20-head-8k-zoomed');
      expect(errors).toEqual([]);
      await page.close();
    }, LONG);
  });
});
