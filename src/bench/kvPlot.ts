/**
 * The KV benchmark's chart: decode tokens/s and KV MiB against context length, one line per policy,
 * drawn by Observable Plot in the browser. `kvBenchHtml` is a whole self-contained page (d3 and
 * Plot's UMD bundles inlined); `kvBenchSection` is the fragment (a <div> and a <script> that expects
 * global `d3` and `Plot`) for pages that already load them, such as the atlas report or the web app.
 */
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import type { KvBenchResult } from './kv.js';

const require = createRequire(import.meta.url);

/** A file inside an installed package found by walking up from the package's entry point. */
function packageFile(pkg: string, rel: string): string {
  let dir = path.dirname(require.resolve(pkg));
  for (;;) {
    const f = path.join(dir, rel);
    if (fs.existsSync(f)) return f;
    const up = path.dirname(dir);
    if (up === dir) throw new Error(`cannot find ${rel} in the ${pkg} package`);
    dir = up;
  }
}

/** Keeps `</script>` inside inlined code from closing the tag. */
function scriptSafe(code: string): string {
  return code.replace(/<\/script/gi, '<\\/script');
}

let sectionId = 0;

/** A <div> with the two charts and the script that draws them (needs global d3 and Plot). */
export function kvBenchSection(result: KvBenchResult): string {
  const id = `kv-bench-${++sectionId}`;
  const data = result.rows.map((r) => ({
    policy: r.policy === 'duo' ? `duo ${Math.round(result.settings.fullHeads * 100)}%` : r.policy === 'streaming' ? `streaming S${result.settings.sink}+W${result.settings.window}` : ['snapkv', 'headkv', 'longheads', 'longheads-static'].includes(r.policy) ? `${r.policy} ${result.settings.kvBudget ?? ''}` : r.policy,
    context: r.contextTokens,
    tokensPerSecond: r.decodeTokensPerSecond,
    kvMiB: r.kvBytes / 2 ** 20,
  }));
  const script = `(() => {
  const data = ${JSON.stringify(data)};
  const root = document.getElementById(${JSON.stringify(id)});
  const common = { width: 460, height: 300, marginLeft: 60, grid: true, color: { legend: true },
    x: { type: 'log', base: 2, label: 'context tokens →', ticks: [...new Set(data.map((d) => d.context))], tickFormat: (d) => d >= 1024 ? (d / 1024) + 'K' : d } };
  const line = (y) => [Plot.lineY(data, { x: 'context', y, stroke: 'policy', marker: 'circle' }), Plot.tip(data, Plot.pointer({ x: 'context', y, stroke: 'policy' }))];
  root.append(Plot.plot({ ...common, y: { label: '↑ decode tokens/s' }, marks: line('tokensPerSecond') }));
  root.append(Plot.plot({ ...common, y: { type: 'log', label: '↑ KV cache MiB (allocated)' }, marks: line('kvMiB') }));
})();`;
  return `<div id="${id}" style="display:flex;flex-wrap:wrap;gap:24px"></div>\n<script>${scriptSafe(script)}</script>`;
}

function escapeHtml(s: string): string {
  return s.replace(/[&<>"]/g, (ch) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[ch]!);
}

/** A self-contained page: charts, the table, and the settings. */
export function kvBenchHtml(result: KvBenchResult): string {
  const d3 = fs.readFileSync(packageFile('d3', path.join('dist', 'd3.min.js')), 'utf8');
  const plot = fs.readFileSync(packageFile('@observablehq/plot', path.join('dist', 'plot.umd.min.js')), 'utf8');
  const m = result.model;
  const s = result.settings;
  const rows = result.rows.map((r) => `<tr><td>${r.contextTokens}</td><td>${escapeHtml(r.policy)}</td><td>${r.decodeTokensPerSecond.toFixed(1)}</td><td>${r.speedupVsFull === null ? '' : r.speedupVsFull.toFixed(2) + '×'}</td><td>${(r.kvBytes / 2 ** 20).toFixed(1)}</td><td>${(r.kvBytesFull / 2 ** 20).toFixed(1)}</td><td>${r.kvRatio.toFixed(3)}</td><td>${r.kvRatioTheoretical.toFixed(3)}</td></tr>`).join('\n');
  return `<!doctype html>
<html><head><meta charset="utf-8"><title>headwise KV cache benchmark</title>
<style>body{font:14px system-ui,sans-serif;margin:24px;max-width:1000px}table{border-collapse:collapse}td,th{padding:2px 10px;text-align:right;border-bottom:1px solid #ddd}</style>
<script>${scriptSafe(d3)}</script>
<script>${scriptSafe(plot)}</script>
</head><body>
<h1>KV cache: decode speed and memory vs context</h1>
<p>Random-weight model of ${escapeHtml(m.like)}'s shape (${m.layers} layers, ${m.heads} heads, ${m.kvHeads} KV heads, head dim ${m.headDim}).
Streaming keeps ${s.sink} sink + ${s.window} recent tokens per head; duo keeps ${Math.round(s.fullHeads * 100)}% of KV heads full.
Median of ${s.steps} decode steps per point, policies interleaved; cache filled ${s.fill === 'synthetic' ? 'with random keys/values' : 'by a real prefill'}. ${escapeHtml(result.createdAt)}</p>
${kvBenchSection(result)}
<table><thead><tr><th>context</th><th>policy</th><th>tok/s</th><th>vs full</th><th>KV MiB</th><th>full MiB</th><th>ratio</th><th>theory</th></tr></thead>
<tbody>
${rows}
</tbody></table>
</body></html>
`;
}
