/**
 * The HTML report: self-contained (both bundles and the data inline, nothing fetched), safe against
 * `</script>` in the data, and — in headless Chromium where it is installed — one heatmap with a
 * legend per metric, the needle grid, the causal check, and no script errors.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadReportBundles, reportDisplays, reportHtml, writeReport } from './report.js';
import { testAtlas } from './testAtlas.js';

const CHROMIUM = '/usr/bin/chromium';
const HAVE_CHROMIUM = fs.existsSync(CHROMIUM);
if (!HAVE_CHROMIUM) console.warn(`[headwise tests] SKIPPING the atlas report browser check: ${CHROMIUM} not found`);

function atlasWithValidation() {
  const a = testAtlas();
  a.model.name = 'tiny </script><b>x</b>';
  a.validation = {
    metric: 'retrieval', k: 2, seed: 1, samples: 4, base: 0.5,
    top: { heads: [{ layer: 1, head: 0 }, { layer: 0, head: 3 }], accuracy: 0, grid: [[0, 0]] },
    random: { heads: [{ layer: 0, head: 0 }, { layer: 1, head: 1 }], accuracy: 0.5, grid: [[1, 0]] },
  };
  a.comparison = {
    retrievalMaxAbsDiff: { value: 0.031, layer: 1, head: 0 },
    retrievalOutside: [],
    tolerance: 0.05,
    topRetrieval: { ours: [{ layer: 1, head: 0, score: 0.9 }], reference: [{ layer: 1, head: 0, score: 0.88 }], sameOrder: true },
    spearman: { sink: 0.96 },
    baseAccuracy: { ours: 0.5, reference: 0.66 },
  };
  return a;
}

describe('atlas report', () => {
  it('inlines the bundles and the data, and escapes what would end a script', () => {
    const html = reportHtml(atlasWithValidation(), { d3: '/*d3*/ var x = "</script>";', plot: '/*plot*/' });
    expect(html).toContain('/*d3*/');
    expect(html).toContain('/*plot*/');
    expect(html).not.toMatch(/<script[^>]+src=/);
    expect(html).not.toContain('var x = "</script>"');
    expect(html).toContain('tiny &lt;/script&gt;&lt;b&gt;x&lt;/b&gt;');
    const data = /<script type="application\/json" id="atlas-data">([\s\S]*?)<\/script>/.exec(html)![1];
    expect(JSON.parse(data.replace(/<\\\//g, '</')).metrics.retrieval[1][2]).toBeNull();
  });

  it('gives each metric the shared display: shares on a fixed [0, 1] domain, KL on a log scale', () => {
    const d = reportDisplays(atlasWithValidation());
    expect(d.retrieval.color.domain).toEqual([0, 1]);
    expect(d.sink.color.domain).toEqual([0, 1]);
    expect(d.retrieval.title).toBe('Retrieval score');
    expect(d.streamingHarm.color.type).toBe('log');
    expect(d.streamingHarm.color.domain[1]).toBe(2);
  });

  it.skipIf(!HAVE_CHROMIUM)('renders every metric, the grid and the causal check in Chromium without errors', async () => {
    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'headwise-report-')), 'atlas.html');
    writeReport(file, atlasWithValidation());
    expect(fs.statSync(file).size).toBeGreaterThan(100_000); // d3 + Plot inline
    const bundles = loadReportBundles();
    expect(bundles.d3.length).toBeGreaterThan(100_000);
    const { chromium } = await import('playwright-core');
    const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-gpu'] });
    try {
      const page = await browser.newPage({ viewport: { width: 1280, height: 800 }, acceptDownloads: true });
      const errors: string[] = [];
      page.on('pageerror', (e) => errors.push(String(e)));
      page.on('console', (m) => m.type() === 'error' && errors.push(m.text()));
      // Offline: any request other than the file itself fails the test.
      await page.route('**/*', (route) => (route.request().url().startsWith('file:') ? route.continue() : (errors.push(`fetched ${route.request().url()}`), route.abort())));
      await page.goto(`file://${file}`);
      for (const m of ['retrieval', 'sink', 'streamingHarm']) {
        const sec = page.locator(`#metric-${m}`);
        expect(await sec.locator('svg g[aria-label="cell"] rect').count(), m).toBe(m === 'streamingHarm' ? 4 : 8);
        expect(await sec.locator('h3').textContent()).toBeTruthy();
        expect(await sec.locator('.desc').textContent()).toBeTruthy();
        // A legend (Plot renders it as a figure with its own svg) sits above each heatmap.
        expect(await sec.locator('svg').count()).toBeGreaterThanOrEqual(2);
      }
      expect(await page.locator('#niah svg g[aria-label="cell"] rect').count()).toBe(2);
      expect(await page.locator('#validation').textContent()).toContain('takes needle accuracy from 50% to 0%');
      // n and 95% Wilson intervals on every accuracy of the causal check (0 of 4: 0–49%).
      expect(await page.locator('#validation').textContent()).toContain('0% (n = 4, 95% CI 0–49%)');
      expect(await page.locator('#niah').textContent()).toContain('50% (n = 4, 95% CI 15–85%)');
      expect(await page.locator('#reference').textContent()).toContain('differ from the reference by at most 0.031');
      expect(await page.locator('#reference-table').textContent()).toContain('Spearman ρ, Sink score');
      // Small multiples: all three heatmaps side by side in the first screen; each figure exports.
      const boxes = await page.locator('#maps .metric').evaluateAll((els) => els.map((e) => e.getBoundingClientRect().top));
      expect(new Set(boxes).size).toBe(1);
      expect(await page.locator('#maps .export button').count()).toBe(6);
      const download = page.waitForEvent('download');
      await page.locator('#metric-retrieval .export button', { hasText: 'SVG' }).click();
      expect((await download).suggestedFilename()).toBe('atlas-retrieval.svg');
      fs.mkdirSync(path.resolve('test-output', 'web'), { recursive: true });
      await page.setViewportSize({ width: 1280, height: 800 });
      await page.screenshot({ path: path.resolve('test-output', 'web', 'report.png'), fullPage: true });
      expect(await page.locator('#tops tr').count()).toBe(4);
      expect(errors).toEqual([]);
    } finally {
      await browser.close();
    }
  });
});
