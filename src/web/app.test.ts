/**
 * The web app end to end in headless Chromium (Debian's /usr/bin/chromium driven by playwright-core):
 * the front-end is built with Vite into a temporary folder, served by the real server with the bundled
 * ref-llama-7m and a synthetic atlas, and clicked through as a person would — atlas → head → pattern,
 * playground with an ablation of the top retrieval heads on a pass-key prompt, needles & KV — plus a
 * 32-layer × 32-head model (random weights) whose atlas must fit 1280 × 800 without scrolling.
 * Screenshots go to test-output/web/ for a person to look at.
 *
 * Without Chromium the tests skip with a message; with HEADWISE_REQUIRE_BROWSER=1 (set by CI) they fail.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BrowserContext, Page } from 'playwright-core';
import type { AtlasFile } from '../atlas/file.js';
import { DEFAULT_MODEL } from '../cli/common.js';
import { makeRandom } from '../cli/makeRandom.js';
import { Model } from '../runtime/model.js';
import { atlasRunner, niahRunner } from './runners.js';
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

/** Collects page errors and failed console messages, so a broken view fails the test. */
function watchErrors(page: Page): string[] {
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(`pageerror: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error' && !/Failed to load resource/.test(m.text())) errors.push(`console: ${m.text()}`);
  });
  return errors;
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
    await poll(() => page.getByTestId('hover-readout').textContent()).toContain('L5 H3 retrieval = 0.6000');
    await shot(page, '1-atlas');

    // Switch metric: the grid redraws with the other metric's legend.
    await page.getByTestId('metric-select').selectOption('streamingHarm');
    await poll(() => page.locator('h2').first().textContent()).toContain('streamingHarm');
    await shot(page, '2-atlas-streamingHarm');
    await page.getByTestId('metric-select').selectOption('retrieval');

    await page.locator('[data-testid=atlas-grid] rect[data-layer="5"][data-head="3"]').click();
    await poll(() => page.evaluate(() => location.hash)).toBe('#/head/5/3');
    // The pattern arrives from the server: a raster image plus the query's tokens.
    await page.locator('[data-testid=pattern] svg image').waitFor({ timeout: 30_000 });
    const tokens = page.locator('[data-testid=query-tokens] .tok');
    expect(await tokens.count()).toBeGreaterThan(100);
    await poll(() => page.getByTestId('head-scores').textContent()).toContain('#1 of 24');
    await shot(page, '3-head-L5H3');

    // Pick another query by clicking its token; the inspector follows.
    await tokens.nth(20).click();
    await poll(() => page.locator('.inspector h3').first().textContent()).toContain('20:');
    await shot(page, '4-head-query20');
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

  it('runs the needle sweep as a job with progress and draws the grid and the KV curve', async () => {
    const page = await browser.newPage();
    const errors = watchErrors(page);
    await page.goto(web.url + '/#/needles');
    await page.getByTestId('run-niah').click();
    await page.locator('.needles-body svg').first().waitFor({ timeout: LONG });
    await poll(() => page.locator('.needles-body .panel').count()).toBe(2);
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
      await poll(() => page.getByTestId('hover-readout').textContent()).toContain('L20 H7 retrieval = 0.6000');
      await shot(page, '8-atlas-32x32');

      // A per-KV-head metric: 32 layers × 8 KV heads; a click opens the first query head of the group.
      await page.getByTestId('metric-select').selectOption('streamingHarm');
      await poll(() => cells.count()).toBe(256);
      await page.locator('[data-testid=atlas-grid] rect[data-layer="3"][data-head="2"]').hover();
      await poll(() => page.getByTestId('hover-readout').textContent()).toContain('L3 KV2 streamingHarm');
      await shot(page, '9-atlas-32x8-kv-metric');
      await page.locator('[data-testid=atlas-grid] rect[data-layer="3"][data-head="2"]').click();
      await poll(() => page.evaluate(() => location.hash)).toBe('#/head/3/8');
      await page.locator('[data-testid=pattern] svg image').waitFor({ timeout: 30_000 });
      await poll(() => page.getByTestId('head-scores').textContent()).toContain('streamingHarm');
      await shot(page, '10-head-32x32-L3H8');
      expect(errors).toEqual([]);
      await page.close();
    });
  });
});
