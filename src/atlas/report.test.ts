/**
 * The HTML report: self-contained (both bundles and the data inline, nothing fetched), safe against
 * `</script>` in the data, and — in headless Chromium where it is installed — one heatmap with a
 * legend per metric, the needle grid, the causal check, and no script errors.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadReportBundles, reportHtml, writeReport } from './report.js';
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

  it.skipIf(!HAVE_CHROMIUM)('renders every metric, the grid and the causal check in Chromium without errors', async () => {
    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'headwise-report-')), 'atlas.html');
    writeReport(file, atlasWithValidation());
    expect(fs.statSync(file).size).toBeGreaterThan(100_000); // d3 + Plot inline
    const bundles = loadReportBundles();
    expect(bundles.d3.length).toBeGreaterThan(100_000);
    const { chromium } = await import('playwright-core');
    const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-gpu'] });
    try {
      const page = await browser.newPage();
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
      expect(await page.locator('#tops tr').count()).toBe(4);
      expect(errors).toEqual([]);
    } finally {
      await browser.close();
    }
  });
});
