/**
 * `node dist/bench/webRender.js [--tokens 8192] [--bins 128] [--runs 3]`: how long the web app's head
 * view takes to show an 8K-token prompt in headless Chromium (Debian's /usr/bin/chromium), split into
 * the server's part (prefill with captures, binning, JSON: timed on `POST /api/pattern/bins` directly)
 * and the browser's (the canvas draw, read off the view's `data-render-ms`), plus the time from the
 * click to a drawn pattern, a zoom (drag) and the model view's thumbnails. The model is a random-weight
 * tiny Llama with 8K positions (`web/longContext.ts`, made once into the cache folder). Needs
 * `npm run build` (the app). A benchmark, not a test: it prints medians and asserts nothing.
 */
import fs from 'node:fs';
import path from 'node:path';
import { Command } from 'commander';
import { cacheRoot } from '../graph/weights.js';
import { Model } from '../runtime/model.js';
import { WEB_APP_DIR } from '../cli/serve.js';
import { longContextModel, longPrompt } from '../web/longContext.js';
import { startServer } from '../web/server.js';

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function main(): Promise<void> {
  const flags = new Command('bench-web-render')
    .option('--tokens <n>', 'prompt length', (v) => Number(v), 8192)
    .option('--bins <n>', 'bins per axis (64, 128 or 256)', (v) => Number(v), 128)
    .option('--runs <n>', 'repeats', (v) => Number(v), 3)
    .parse()
    .opts<{ tokens: number; bins: number; runs: number }>();
  if (!fs.existsSync(path.join(WEB_APP_DIR, 'index.html'))) throw new Error(`${WEB_APP_DIR}: not built; run npm run build`);
  const dir = path.join(cacheRoot(), 'bench-web');
  fs.mkdirSync(dir, { recursive: true });
  const model = await Model.load(longContextModel(dir, Math.max(8192, flags.tokens)));
  const prompt = longPrompt(model, flags.tokens);
  const n = model.tokenize(prompt).length;
  const web = await startServer({ model, appDir: WEB_APP_DIR });
  const { chromium } = await import('playwright-core');
  const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox', '--disable-gpu'] });
  try {
    const server: number[] = [];
    const bytes: number[] = [];
    for (let i = 0; i < flags.runs + 1; i++) {
      const t0 = performance.now();
      const res = await fetch(`${web.url}/api/pattern/bins`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ prompt, layer: 1, head: 0, bins: flags.bins }) });
      const text = await res.text();
      if (i > 0) server.push(performance.now() - t0), bytes.push(text.length); // the first run compiles the graph
    }
    const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    await page.goto(`${web.url}/#/head/1/0`);
    await page.getByTestId('head-prompt').fill(prompt);
    await page.getByTestId('bins-select').selectOption(String(flags.bins));
    const click: number[] = [];
    const draw: number[] = [];
    const zoom: number[] = [];
    for (let i = 0; i < flags.runs; i++) {
      const t0 = performance.now();
      await page.getByTestId('show-pattern').click();
      await page.waitForFunction(() => !document.querySelector('[data-testid=show-pattern]')!.hasAttribute('disabled') && document.querySelector('[data-testid=pattern] .binned-map'));
      click.push(performance.now() - t0);
      draw.push(Number(await page.getByTestId('pattern').getAttribute('data-render-ms')));
      const box = (await page.locator('[data-testid=pattern] canvas').boundingBox())!;
      const z0 = performance.now();
      await page.mouse.move(box.x + box.width * 0.5, box.y + box.height * 0.5);
      await page.mouse.down();
      await page.mouse.move(box.x + box.width * 0.6, box.y + box.height * 0.6, { steps: 4 });
      await page.mouse.up();
      await page.waitForFunction(() => !document.querySelector('[data-testid=zoom-reset]')!.hasAttribute('disabled') && !document.querySelector('[data-testid=show-pattern]')!.hasAttribute('disabled'));
      zoom.push(performance.now() - z0);
    }
    const cells = await page.locator('[data-testid=pattern] .binned-map').getAttribute('data-cells');
    await page.goto(`${web.url}/#/model`);
    await page.getByTestId('model-prompt').fill(prompt);
    const m0 = performance.now();
    await page.getByTestId('show-model').click();
    await page.locator('[data-testid=thumb]').first().waitFor({ timeout: 300_000 });
    const modelMs = performance.now() - m0;
    const out = {
      tokens: n,
      bins: flags.bins,
      cellsDrawnAfterZoom: Number(cells),
      serverMs: Math.round(median(server)),
      responseKB: Math.round(median(bytes) / 1024),
      browserDrawMs: Number(median(draw).toFixed(1)),
      clickToPatternMs: Math.round(median(click)),
      zoomMs: Math.round(median(zoom)),
      modelViewMs: Math.round(modelMs),
      runs: flags.runs,
    };
    console.log(JSON.stringify(out));
  } finally {
    await browser.close();
    await web.close();
    await model.dispose();
  }
}

main().catch((e) => {
  console.error(e instanceof Error ? e.message : e);
  process.exit(1);
});
