/**
 * The atlas as one self-contained HTML page: the d3 and Observable Plot UMD bundles and the atlas data
 * are inlined, so the file opens anywhere without a network. The page shows a summary, the causal
 * check (needle accuracy with the top-k heads zeroed vs k random heads), the needle accuracy grid
 * (context length × depth), the top heads of each metric, and one layers × heads heatmap per metric
 * with a colour legend, the value of every cell on hover, and what the metric means.
 * `reportHtml` is pure given the two bundles; `writeReport` reads them from node_modules.
 */
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { HeadwiseError } from '../errors.js';
import { writeFileAtomic } from '../io/outputPath.js';
import { atlasJson, type AtlasFile } from './file.js';

export interface ReportBundles {
  d3: string;
  plot: string;
}

/** How each known metric is shown: title, unit, colour scheme. Unknown metrics get a generic entry. */
export const METRIC_DISPLAY: Record<string, { title: string; unit: string; scheme: string; log?: boolean }> = {
  retrieval: { title: 'Retrieval score', unit: 'copy rate', scheme: 'YlOrRd' },
  streamingHarm: { title: 'Streaming harm (per KV head)', unit: 'KL, nats (log scale)', scheme: 'YlOrRd', log: true },
  ablationKl: { title: 'Ablation importance', unit: 'KL, nats (log scale)', scheme: 'YlOrRd', log: true },
  sink: { title: 'Sink score', unit: 'attention on BOS', scheme: 'Blues' },
  hiddenSinks: { title: 'Hidden sinks', unit: 'columns > 0.1', scheme: 'Blues' },
  previousToken: { title: 'Previous-token score', unit: 'attention share', scheme: 'Greens' },
  duplicateToken: { title: 'Duplicate-token score', unit: 'attention share', scheme: 'Greens' },
  induction: { title: 'Induction score', unit: 'attention share', scheme: 'Greens' },
  reach: { title: 'Mean reach', unit: 'tokens back', scheme: 'Purples' },
  waad: { title: 'WAAD (W = 10)', unit: 'tokens back, capped at 10', scheme: 'Purples' },
  entropy: { title: 'Attention entropy', unit: 'nats', scheme: 'Purples' },
};

/** Safe to put inside a <script> element. */
function scriptText(s: string): string {
  return s.replace(/<\/(script)/gi, '<\\/$1').replace(/<!--/g, '<\\!--');
}

function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (ch) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[ch]!);
}

/** The page's own script: renders everything from the inlined data with Plot. */
const RENDER = String.raw`
const A = JSON.parse(document.getElementById('atlas-data').textContent);
const D = JSON.parse(document.getElementById('display-data').textContent);
const fmt = (v) => v === null || v === undefined || Number.isNaN(v) ? 'n/a' : v === 0 ? '0' : Math.abs(v) >= 100 ? v.toFixed(0) : Math.abs(v) >= 1 ? v.toFixed(2) : Math.abs(v) >= 0.001 || v === 0 ? v.toFixed(3) : v.toExponential(1);
const el = (tag, attrs = {}, ...kids) => { const e = document.createElement(tag); Object.assign(e, attrs); for (const k of kids) e.append(k); return e; };
const headName = (h, per) => (per === 'kvHead' ? 'L' + h.layer + ' KV' + h.head : 'L' + h.layer + 'H' + h.head);
const pct = (v) => (v === null || v === undefined ? 'n/a' : (100 * v).toFixed(0) + '%');

// Causal check
const V = A.validation;
const val = document.getElementById('validation');
if (V) {
  const rows = [
    { arm: 'nothing zeroed', accuracy: V.base, heads: '' },
    { arm: 'top ' + V.k + ' ' + V.metric + ' heads zeroed', accuracy: V.top.accuracy, heads: V.top.heads.map((h) => headName(h)).join(', ') },
    { arm: V.k + ' random heads zeroed', accuracy: V.random.accuracy, heads: V.random.heads.map((h) => headName(h)).join(', ') },
  ];
  val.append(el('p', { className: 'lead', textContent:
    'Zeroing the top ' + V.k + ' ' + V.metric + ' heads (' + rows[1].heads + ') takes needle accuracy from ' + pct(V.base) + ' to ' + pct(V.top.accuracy) +
    '; zeroing ' + V.k + ' random heads (' + rows[2].heads + ') gives ' + pct(V.random.accuracy) + ' (' + V.samples + ' needle prompts, greedy exact match).' }));
  val.append(Plot.plot({
    width: 640, height: 150, marginLeft: 210, x: { domain: [0, 1], label: 'needle accuracy →', tickFormat: '.0%', grid: true }, y: { label: null, domain: rows.map((d) => d.arm) },
    marks: [
      Plot.barX(rows, { y: 'arm', x: 'accuracy', fill: { value: ['#4c78a8', '#e45756', '#9d9d9d'], scale: null }, tip: true, title: (d) => d.arm + ': ' + pct(d.accuracy) + (d.heads ? '\nheads: ' + d.heads : '') }),
      Plot.text(rows, { y: 'arm', x: 'accuracy', text: (d) => pct(d.accuracy), dx: 18 }),
      Plot.ruleX([0]),
    ],
  }));
} else {
  val.append(el('p', { className: 'note', textContent: 'Not run: pass --validate to zero the top-k retrieval heads and k random heads and measure needle accuracy.' }));
}

// Needle accuracy grid
const N = A.niah;
const grid = document.getElementById('niah');
if (N) {
  const cells = [];
  N.contextTokens.forEach((c, i) => N.depths.forEach((d, j) => cells.push({ context: c, depth: d, accuracy: N.grid[i][j], n: N.counts[i][j] })));
  grid.append(el('p', { textContent: 'Greedy exact-match accuracy of the atlas\'s own ' + N.samples + ' needle prompts (' + A.settings.contextTokens + ' tokens): ' + pct(N.accuracy) + ' overall. Rows: prompt length in tokens; columns: needle depth (0 = start of the haystack, 1 = right before the question).' +
    (N.contextTokens.length > 1 ? ' Rows at other lengths come from extra greedy runs of the same needle mix.' : '') }));
  grid.append(Plot.plot({
    width: Math.min(760, 140 + 90 * N.depths.length), height: 60 + 44 * N.contextTokens.length, marginLeft: 70, padding: 0.04,
    x: { type: 'band', label: 'needle depth', tickFormat: (d) => d.toFixed(2) }, y: { type: 'band', label: 'context tokens' },
    color: { type: 'linear', domain: [0, 1], scheme: 'RdYlGn', legend: true, label: 'accuracy', tickFormat: '.0%' },
    marks: [
      Plot.cell(cells, { x: 'depth', y: 'context', fill: 'accuracy', tip: true, title: (d) => d.context + ' tokens, depth ' + d.depth + ': ' + pct(d.accuracy) + ' of ' + d.n }),
      Plot.text(cells, { x: 'depth', y: 'context', text: (d) => pct(d.accuracy) + ' (n=' + d.n + ')', fill: { value: (d) => (d.accuracy > 0.85 || d.accuracy < 0.15 ? 'white' : 'black'), scale: null }, pointerEvents: 'none' }),
    ],
  }));
  const own = N.contextTokens.indexOf(A.settings.contextTokens);
  if (V && V.top.grid && V.random.grid && own >= 0 && V.top.grid[0].length === N.depths.length) {
    const lines = [];
    const arms = [['nothing zeroed', N.grid[own]], ['top ' + V.k + ' zeroed', V.top.grid[0]], [V.k + ' random zeroed', V.random.grid[0]]];
    for (const [arm, row] of arms) N.depths.forEach((d, j) => lines.push({ arm, depth: d, accuracy: row[j] }));
    grid.append(el('p', { textContent: 'Accuracy by depth in each arm of the causal check:' }));
    grid.append(Plot.plot({
      width: 640, height: 220, y: { domain: [0, 1], tickFormat: '.0%', label: '↑ accuracy', grid: true }, x: { label: 'needle depth →' },
      color: { legend: true, domain: arms.map((a) => a[0]), range: ['#4c78a8', '#e45756', '#9d9d9d'] },
      marks: [Plot.lineY(lines, { x: 'depth', y: 'accuracy', stroke: 'arm', marker: 'circle', tip: true })],
    }));
  }
}

// Metrics: top heads and heatmaps
const order = Object.keys(D).filter((m) => A.metrics[m]).concat(Object.keys(A.metrics).filter((m) => !D[m]));
const tops = document.getElementById('tops');
const maps = document.getElementById('maps');
const tbl = el('table');
tbl.append(el('tr', {}, el('th', { textContent: 'metric' }), el('th', { textContent: 'top heads (value)' })));
for (const m of order) {
  const t = A.metrics[m];
  const info = (A.metricInfo || {})[m] || {};
  const disp = D[m] || { title: m, unit: '', scheme: 'Viridis' };
  const per = info.per || 'head';
  const cells = [];
  t.forEach((row, l) => row.forEach((v, h) => cells.push({ layer: l, head: h, value: v, n: A.sampleCounts && A.sampleCounts[m] ? A.sampleCounts[m][l][h] : null })));
  const ranked = cells.filter((c) => c.value !== null).sort((a, b) => b.value - a.value).slice(0, 5);
  tbl.append(el('tr', {}, el('td', {}, el('a', { href: '#metric-' + m, textContent: disp.title })), el('td', { textContent: ranked.map((c) => headName(c, per) + ' ' + fmt(c.value)).join(' · ') })));
  const sec = el('section', { className: 'metric', id: 'metric-' + m });
  sec.append(el('h3', { textContent: disp.title + (disp.unit ? ' — ' + disp.unit : '') }));
  if (info.description) sec.append(el('p', { className: 'desc', textContent: info.description }));
  const H = t[0] ? t[0].length : 0;
  const cell = Math.max(12, Math.min(40, Math.floor(560 / Math.max(1, H))));
  const label = H <= 16 && t.length <= 32;
  const values = cells.map((c) => c.value).filter((v) => v !== null);
  const max = values.length ? Math.max(...values) : 1;
  sec.append(Plot.plot({
    width: 90 + cell * H, height: 70 + cell * t.length, marginLeft: 50, marginTop: 30, padding: 0.03,
    x: { type: 'band', label: per === 'kvHead' ? 'KV head' : 'head', axis: 'top' }, y: { type: 'band', label: 'layer' },
    // KL values span orders of magnitude: a log scale (4 decades below the largest, smaller values clamped).
    color: disp.log && max > 0 && values.every((v) => v >= 0)
      ? { type: 'log', scheme: disp.scheme, legend: true, label: disp.unit, domain: [max / 1e4, max], clamp: true, tickFormat: '~g' }
      : { type: 'linear', scheme: disp.scheme, legend: true, label: disp.unit || m, domain: [Math.min(0, ...values), max || 1] },
    marks: [
      Plot.cell(cells.filter((c) => c.value === null), { x: 'head', y: 'layer', fill: '#e8e8e8', title: (d) => headName(d, per) + ': not measured' }),
      Plot.cell(cells.filter((c) => c.value !== null), { x: 'head', y: 'layer', fill: (d) => (disp.log ? Math.max(d.value, max / 1e4) : d.value), tip: true, title: (d) => headName(d, per) + ': ' + fmt(d.value) + (d.n !== null ? '\n' + d.n + ' samples' : '') }),
      label ? Plot.text(cells, { x: 'head', y: 'layer', text: (d) => fmt(d.value), fill: { value: (d) => (d.value !== null && (disp.log ? d.value > max / 10 : d.value > 0.55 * max) ? 'white' : 'black'), scale: null }, fontSize: cell >= 36 ? 9 : 7, pointerEvents: 'none' }) : null,
    ],
  }));
  maps.append(sec);
}
tops.append(tbl);
`;

/** The report page for an atlas. */
export function reportHtml(atlas: AtlasFile, bundles: ReportBundles): string {
  const m = atlas.model;
  const s = atlas.settings as Record<string, unknown>;
  const seconds = atlas.timing?.totalMs !== undefined ? ` in ${(atlas.timing.totalMs / 1000).toFixed(1)} s` : '';
  const retrievalHeads = (atlas.topHeads?.retrieval ?? []).filter((h) => h.score > 0.1).map((h) => `L${h.layer}H${h.head} (${h.score.toFixed(2)})`);
  const summary = [
    `${escapeHtml(m.name)}: ${escapeHtml(m.family)}, ${m.layers} layers × ${m.heads} heads (${m.kvHeads} KV heads, head dim ${m.headDim}).`,
    `Measured on ${s.samples} needle prompts of ${s.contextTokens} tokens (seed ${s.seed})${seconds}.`,
    retrievalHeads.length
      ? `Retrieval heads (score > 0.1): ${retrievalHeads.join(', ')}.`
      : 'No head has a retrieval score above 0.1.',
  ];
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
${typeof atlas.runId === 'string' ? `<meta name="headwise-run-id" content="${escapeHtml(atlas.runId)}">\n` : ''}<title>headwise atlas — ${escapeHtml(m.name)}</title>
<style>
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 24px auto; max-width: 1100px; padding: 0 16px; color: #222; }
h1 { font-size: 22px; margin-bottom: 4px; } h2 { font-size: 18px; margin-top: 32px; border-bottom: 1px solid #ddd; padding-bottom: 4px; }
h3 { font-size: 15px; margin: 0 0 4px; }
.lead { font-size: 15px; } .note, .desc { color: #555; max-width: 800px; } .desc { font-size: 13px; }
table { border-collapse: collapse; } td, th { text-align: left; padding: 4px 10px; border-bottom: 1px solid #eee; vertical-align: top; }
#maps { display: flex; flex-wrap: wrap; gap: 28px 40px; } .metric { max-width: 640px; }
code { background: #f4f4f4; padding: 1px 4px; border-radius: 3px; }
</style>
</head>
<body>
<h1>What every head of ${escapeHtml(m.name)} does</h1>
<p>${summary.join('<br>')}</p>
<p class="note">Each heatmap has one cell per head: layers top to bottom, heads left to right, darker = higher. Hover a cell for its value and the number of samples behind it; grey cells were not measured.
Definitions follow <code>docs/methods.md</code> of the headwise repository and package; each metric says how it was measured. Generated by <code>headwise atlas</code> on ${escapeHtml(atlas.createdAt)}.</p>
<h2>Causal check</h2>
<div id="validation"></div>
<h2>Needle-in-a-haystack accuracy</h2>
<div id="niah"></div>
<h2>Top heads</h2>
<div id="tops"></div>
<h2>Every head, metric by metric</h2>
<div id="maps"></div>
<script>${scriptText(bundles.d3)}</script>
<script>${scriptText(bundles.plot)}</script>
<script type="application/json" id="atlas-data">${scriptText(atlasJson(atlas))}</script>
<script type="application/json" id="display-data">${scriptText(JSON.stringify(METRIC_DISPLAY))}</script>
<script>${scriptText(RENDER)}</script>
</body>
</html>
`;
}

/** The UMD bundle file of an installed package (its `exports.umd`). */
function umdBundle(pkg: string): string {
  const require = createRequire(import.meta.url);
  let entry: string;
  try {
    entry = require.resolve(pkg);
  } catch {
    throw new HeadwiseError(`the HTML report needs the "${pkg}" package (npm install)`);
  }
  for (let dir = path.dirname(entry); dir !== path.dirname(dir); dir = path.dirname(dir)) {
    const file = path.join(dir, 'package.json');
    if (!fs.existsSync(file)) continue;
    const meta = JSON.parse(fs.readFileSync(file, 'utf8')) as { name?: string; exports?: { umd?: string }; unpkg?: string };
    if (meta.name !== pkg) continue;
    const umd = meta.exports?.umd ?? meta.unpkg;
    if (!umd) break;
    return fs.readFileSync(path.join(dir, umd), 'utf8');
  }
  throw new HeadwiseError(`cannot find the UMD bundle of "${pkg}"`);
}

export function loadReportBundles(): ReportBundles {
  return { d3: umdBundle('d3'), plot: umdBundle('@observablehq/plot') };
}

/** Writes the report page atomically. */
export function writeReport(file: string, atlas: AtlasFile): void {
  writeFileAtomic(file, reportHtml(atlas, loadReportBundles()));
}

/** The run id a report page was written with (its `headwise-run-id` meta tag), or null. */
export function reportRunId(html: string): string | null {
  const m = /<meta name="headwise-run-id" content="([^"]*)">/.exec(html.slice(0, 4096));
  return m ? m[1] : null;
}
