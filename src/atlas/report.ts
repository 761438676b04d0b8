/**
 * The atlas as one self-contained HTML page: the d3 and Observable Plot UMD bundles and the atlas data
 * are inlined, so the file opens anywhere without a network. The page shows a summary, the causal
 * check (needle accuracy with the top-k heads zeroed vs k random heads, n and 95% Wilson intervals),
 * the comparison with a reference analysis when the atlas carries one (`--reference`), the needle
 * accuracy grid (context length × depth, n and interval per cell), the top heads of each metric, and
 * small multiples: one compact layers × heads heatmap per metric in a grid that fits a screen, each
 * with its legend, values written in cells that fit them, and SVG / PNG export. Names, units and colour
 * scales come from `metricDisplay.ts`, the module the web app uses too, so both draw a metric alike.
 * `reportHtml` is pure given the two bundles; `writeReport` reads them from node_modules.
 */
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { HeadwiseError } from '../errors.js';
import { writeFileAtomic } from '../io/outputPath.js';
import { atlasJson, type AtlasFile } from './file.js';
import { colorScale, formatShort, metricDisplay, scalePosition, textColorOn, wilson, type ColorScale, type MetricDisplay } from './metricDisplay.js';

export { METRIC_DISPLAY } from './metricDisplay.js';

export interface ReportBundles {
  d3: string;
  plot: string;
}

/** Safe to put inside a <script> element. */
function scriptText(s: string): string {
  return s.replace(/<\/(script)/gi, '<\\/$1').replace(/<!--/g, '<\\!--');
}

function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (ch) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[ch]!);
}

/** Each metric's display and colour scale over its values, computed here with the app's functions. */
export function reportDisplays(atlas: AtlasFile): Record<string, MetricDisplay & { color: ColorScale }> {
  const out: Record<string, MetricDisplay & { color: ColorScale }> = {};
  for (const [m, t] of Object.entries(atlas.metrics)) {
    const d = metricDisplay(m);
    out[m] = { ...d, color: colorScale(d, t.map((row) => row.map((v) => (Number.isFinite(v) ? v : null)))) };
  }
  return out;
}

/** The shared helpers the page's script calls, as their own source (pure functions of numbers). */
const SHARED = [scalePosition, textColorOn, formatShort, wilson].map((f) => f.toString()).join('\n');

/** The page's own script: renders everything from the inlined data with Plot. */
const RENDER = String.raw`
const A = JSON.parse(document.getElementById('atlas-data').textContent);
const D = JSON.parse(document.getElementById('display-data').textContent);
const fmt = (v) => v === null || v === undefined || Number.isNaN(v) ? 'n/a' : v === 0 ? '0' : Math.abs(v) >= 100 ? v.toFixed(0) : Math.abs(v) >= 1 ? v.toFixed(2) : Math.abs(v) >= 0.001 || v === 0 ? v.toFixed(3) : v.toExponential(1);
const el = (tag, attrs = {}, ...kids) => { const e = document.createElement(tag); Object.assign(e, attrs); for (const k of kids) e.append(k); return e; };
const headName = (h, per) => (per === 'kvHead' ? 'L' + h.layer + ' KV' + h.head : 'L' + h.layer + 'H' + h.head);
const pct = (v) => (v === null || v === undefined ? 'n/a' : (100 * v).toFixed(0) + '%');
const ci = (acc, n) => { const w = wilson(Math.round(acc * n), n); return { lo: w.lo, hi: w.hi, text: pct(acc) + ' (n = ' + n + ', 95% CI ' + Math.round(100 * w.lo) + '–' + pct(w.hi) + ')' }; };

// Export: every figure gets SVG and PNG buttons.
const svgOf = (fig) => { const all = [...fig.querySelectorAll('svg')]; return all.find((s) => s.querySelector('g[aria-label]')) || all[all.length - 1]; };
const svgText = (svg) => { const c = svg.cloneNode(true); c.setAttribute('xmlns', 'http://www.w3.org/2000/svg'); c.setAttribute('style', (c.getAttribute('style') || '') + ';background:white;font-family:system-ui,sans-serif'); return new XMLSerializer().serializeToString(c); };
const save = (name, blob) => { const a = el('a', { href: URL.createObjectURL(blob), download: name }); document.body.append(a); a.click(); a.remove(); };
function exportable(name, fig) {
  const wrap = el('div', { className: 'fig' });
  const bar = el('div', { className: 'export' });
  bar.append(el('button', { textContent: 'SVG', title: 'save ' + name + '.svg', onclick: () => save(name + '.svg', new Blob([svgText(svgOf(fig))], { type: 'image/svg+xml' })) }));
  bar.append(el('button', { textContent: 'PNG', title: 'save ' + name + '.png', onclick: async () => {
    const svg = svgOf(fig); const img = new Image(); img.src = 'data:image/svg+xml;charset=utf-8,' + encodeURIComponent(svgText(svg)); await img.decode();
    const c = el('canvas', { width: img.width * 2, height: img.height * 2 }); const g = c.getContext('2d'); g.fillStyle = 'white'; g.fillRect(0, 0, c.width, c.height); g.drawImage(img, 0, 0, c.width, c.height);
    c.toBlob((b) => save(name + '.png', b), 'image/png');
  } }));
  wrap.append(bar, fig);
  return wrap;
}

// Causal check
const V = A.validation;
const val = document.getElementById('validation');
if (V) {
  const n = V.samples;
  const rows = [
    { arm: 'nothing zeroed', accuracy: V.base, heads: '' },
    { arm: 'top ' + V.k + ' ' + V.metric + ' heads zeroed', accuracy: V.top.accuracy, heads: V.top.heads.map((h) => headName(h)).join(', ') },
    { arm: V.k + ' random heads zeroed', accuracy: V.random.accuracy, heads: V.random.heads.map((h) => headName(h)).join(', ') },
  ].map((r) => Object.assign(r, ci(r.accuracy, n)));
  val.append(el('p', { className: 'lead', textContent:
    'Zeroing the top ' + V.k + ' ' + V.metric + ' heads (' + rows[1].heads + ') takes needle accuracy from ' + pct(V.base) + ' to ' + pct(V.top.accuracy) +
    '; zeroing ' + V.k + ' random heads (' + rows[2].heads + ') gives ' + pct(V.random.accuracy) + ' (' + n + ' needle prompts, greedy exact match).' }));
  val.append(el('p', { className: 'note', textContent: rows.map((r) => r.arm + ': ' + r.text).join(' · ') }));
  val.append(exportable('causal-check', Plot.plot({
    width: 640, height: 150, marginLeft: 210, marginRight: 150, x: { domain: [0, 1], label: 'needle accuracy (bar: 95% Wilson interval) →', tickFormat: '.0%', grid: true }, y: { label: null, domain: rows.map((d) => d.arm) },
    marks: [
      Plot.barX(rows, { y: 'arm', x: 'accuracy', fill: { value: ['#4c78a8', '#e45756', '#9d9d9d'], scale: null }, tip: true, title: (d) => d.arm + ': ' + d.text + (d.heads ? '\nheads: ' + d.heads : '') }),
      Plot.ruleY(rows, { y: 'arm', x1: 'lo', x2: 'hi', stroke: '#222', strokeWidth: 1.5 }),
      Plot.text(rows, { y: 'arm', x: 1, text: (d) => pct(d.accuracy) + ' [' + Math.round(100 * d.lo) + '–' + pct(d.hi) + ']', textAnchor: 'start', dx: 8 }),
      Plot.ruleX([0]),
    ],
  })));
} else {
  val.append(el('p', { className: 'note', textContent: 'Not run: pass --validate to zero the top-k retrieval heads and k random heads and measure needle accuracy.' }));
}

// Reference comparison
const C = A.comparison;
const ref = document.getElementById('reference');
if (C) {
  const w = C.retrievalMaxAbsDiff;
  ref.append(el('p', { className: 'lead', textContent: 'Retrieval scores differ from the reference by at most ' + fmt(w.value) + ' (at ' + headName(w) + '); ' + C.retrievalOutside.length + ' heads are outside ±' + C.tolerance + '. ' +
    'Top ' + C.topRetrieval.ours.length + ' retrieval heads ' + (C.topRetrieval.sameOrder ? 'match' : 'differ') + '.' }));
  const t = el('table', { id: 'reference-table' });
  t.append(el('tr', {}, el('th', { textContent: 'what' }), el('th', { textContent: 'this atlas' }), el('th', { textContent: 'reference' })));
  t.append(el('tr', {}, el('td', { textContent: 'top retrieval heads' }), el('td', { textContent: C.topRetrieval.ours.map((h) => headName(h) + ' ' + fmt(h.score)).join(', ') }), el('td', { textContent: C.topRetrieval.reference.map((h) => headName(h) + ' ' + fmt(h.score)).join(', ') })));
  for (const [m, rho] of Object.entries(C.spearman || {})) t.append(el('tr', {}, el('td', { textContent: 'Spearman ρ, ' + ((D[m] && D[m].title) || m) }), el('td', { textContent: fmt(rho), colSpan: 2 })));
  if (C.baseAccuracy) t.append(el('tr', {}, el('td', { textContent: 'needle accuracy, nothing zeroed' }), el('td', { textContent: C.baseAccuracy.ours === undefined ? 'n/a' : A.niah ? ci(C.baseAccuracy.ours, A.niah.samples).text : pct(C.baseAccuracy.ours) }), el('td', { textContent: pct(C.baseAccuracy.reference) })));
  if (C.ablation) t.append(el('tr', {}, el('td', { textContent: 'accuracy, top ' + C.ablation.k + ' / ' + C.ablation.k + ' random zeroed' }), el('td', { textContent: C.ablation.ours ? pct(C.ablation.ours.top) + ' / ' + pct(C.ablation.ours.random) : 'n/a' }), el('td', { textContent: C.ablation.reference ? pct(C.ablation.reference.top) + ' / ' + pct(C.ablation.reference.random) : 'n/a' })));
  ref.append(t);
  if (C.retrievalOutside.length) ref.append(el('p', { className: 'note', textContent: 'Outside the tolerance: ' + C.retrievalOutside.slice(0, 12).map((h) => headName(h) + ' ' + fmt(h.ours) + ' vs ' + fmt(h.reference)).join(', ') + (C.retrievalOutside.length > 12 ? ', …' : '') }));
} else {
  ref.append(el('p', { className: 'note', textContent: 'Not run: pass --reference FILE to compare with a reference head analysis.' }));
}

// Needle accuracy grid
const N = A.niah;
const grid = document.getElementById('niah');
if (N) {
  const cells = [];
  N.contextTokens.forEach((c, i) => N.depths.forEach((d, j) => { const n = N.counts[i][j]; const w = wilson(Math.round(N.grid[i][j] * n), n); cells.push({ context: c, depth: d, accuracy: N.grid[i][j], n, lo: w.lo, hi: w.hi }); }));
  grid.append(el('p', { textContent: 'Greedy exact-match accuracy of the atlas\'s own ' + N.samples + ' needle prompts (' + A.settings.contextTokens + ' tokens): ' + ci(N.accuracy, N.samples).text + ' overall. Rows: prompt length in tokens; columns: needle depth (0 = start of the haystack, 1 = right before the question); brackets: 95% Wilson interval.' +
    (N.contextTokens.length > 1 ? ' Rows at other lengths come from extra greedy runs of the same needle mix.' : '') }));
  grid.append(exportable('needle-grid', Plot.plot({
    width: Math.min(860, 140 + 110 * N.depths.length), height: 60 + 52 * N.contextTokens.length, marginLeft: 70, padding: 0.04,
    x: { type: 'band', label: 'needle depth', tickFormat: (d) => d.toFixed(2) }, y: { type: 'band', label: 'context tokens' },
    color: { type: 'linear', domain: [0, 1], scheme: 'RdYlGn', legend: true, label: 'accuracy (fixed 0–1)', tickFormat: '.0%' },
    marks: [
      Plot.cell(cells, { x: 'depth', y: 'context', fill: 'accuracy', tip: true, title: (d) => d.context + ' tokens, depth ' + d.depth + ': ' + ci(d.accuracy, d.n).text }),
      Plot.text(cells, { x: 'depth', y: 'context', text: (d) => pct(d.accuracy) + ' (n=' + d.n + ')\n[' + Math.round(100 * d.lo) + '–' + pct(d.hi) + ']', lineHeight: 1.15, fill: { value: (d) => (d.accuracy > 0.85 || d.accuracy < 0.15 ? 'white' : 'black'), scale: null }, pointerEvents: 'none' }),
    ],
  })));
  const own = N.contextTokens.indexOf(A.settings.contextTokens);
  if (V && V.top.grid && V.random.grid && own >= 0 && V.top.grid[0].length === N.depths.length) {
    const lines = [];
    const arms = [['nothing zeroed', N.grid[own]], ['top ' + V.k + ' zeroed', V.top.grid[0]], [V.k + ' random zeroed', V.random.grid[0]]];
    for (const [arm, row] of arms) N.depths.forEach((d, j) => lines.push({ arm, depth: d, accuracy: row[j] }));
    grid.append(el('p', { textContent: 'Accuracy by depth in each arm of the causal check:' }));
    grid.append(exportable('causal-check-by-depth', Plot.plot({
      width: 640, height: 220, y: { domain: [0, 1], tickFormat: '.0%', label: '↑ accuracy', grid: true }, x: { label: 'needle depth →' },
      color: { legend: true, domain: arms.map((a) => a[0]), range: ['#4c78a8', '#e45756', '#9d9d9d'] },
      marks: [Plot.lineY(lines, { x: 'depth', y: 'accuracy', stroke: 'arm', marker: 'circle', tip: true })],
    })));
  }
}

// Metrics: top heads and small multiples
const order = Object.keys(D).filter((m) => A.metrics[m]);
const tops = document.getElementById('tops');
const maps = document.getElementById('maps');
const tbl = el('table');
tbl.append(el('tr', {}, el('th', { textContent: 'metric' }), el('th', { textContent: 'top heads (value)' })));
// Small multiples: as many ~195 px columns as fit the window, and cells sized so all rows fit one screen.
const pageW = Math.min(window.innerWidth, 1600) - 40;
const colsFit = Math.max(1, Math.min(order.length, Math.floor(pageW / 195)));
const gridRows = Math.ceil(order.length / colsFit);
const figW = Math.floor(pageW / colsFit) - 18;
const figH = Math.max(60, Math.floor((window.innerHeight - 70) / gridRows) - 100);
maps.style.gridTemplateColumns = 'repeat(' + colsFit + ', minmax(0, 1fr))';
for (const m of order) {
  const t = A.metrics[m];
  const info = (A.metricInfo || {})[m] || {};
  const disp = D[m];
  const S = disp.color;
  const per = info.per || 'head';
  const cells = [];
  t.forEach((row, l) => row.forEach((v, h) => cells.push({ layer: l, head: h, value: v, n: A.sampleCounts && A.sampleCounts[m] ? A.sampleCounts[m][l][h] : null })));
  const ranked = cells.filter((c) => c.value !== null).sort((a, b) => b.value - a.value).slice(0, 5);
  tbl.append(el('tr', {}, el('td', {}, el('a', { href: '#metric-' + m, textContent: disp.title, title: 'code name: ' + m })), el('td', { textContent: ranked.map((c) => headName(c, per) + ' ' + fmt(c.value)).join(' · ') })));
  const sec = el('section', { className: 'metric', id: 'metric-' + m });
  sec.append(el('h3', { textContent: disp.title + (per === 'kvHead' ? ' (per KV head)' : ''), title: 'code name: ' + m + (disp.unit ? ' — unit: ' + disp.unit : '') }));
  sec.append(el('p', { className: 'desc', textContent: (disp.unit ? disp.unit + '. ' : '') + (info.description || ''), title: info.description || '' }));
  const H = t[0] ? t[0].length : 0;
  const cell = Math.max(3, Math.min(40, Math.floor(Math.min((figW - 50) / Math.max(1, H), (figH - 38) / Math.max(1, t.length)))));
  const label = cell >= 22;
  const floor = S.type === 'log' ? S.domain[0] : -Infinity;
  const fig = Plot.plot({
    width: 50 + cell * H, height: 38 + cell * t.length, marginLeft: 34, marginTop: 32, marginRight: 4, marginBottom: 4, padding: cell > 10 ? 0.03 : 0,
    style: { fontSize: '9px' },
    x: { type: 'band', label: per === 'kvHead' ? 'KV head' : 'head', axis: 'top', ticks: cell >= 12 ? undefined : [...Array(H).keys()].filter((i) => i % Math.ceil(12 / cell) === 0) },
    y: { type: 'band', label: 'layer', ticks: cell >= 12 ? undefined : [...Array(t.length).keys()].filter((i) => i % Math.ceil(12 / cell) === 0) },
    color: { type: S.type, scheme: S.scheme, domain: S.domain, clamp: S.clamp, pivot: S.pivot, legend: true, width: Math.min(240, figW - 4), label: (disp.unit || m) + ' (' + S.note + ')', tickFormat: S.type === 'log' ? '~g' : undefined },
    marks: [
      Plot.cell(cells.filter((c) => c.value === null), { x: 'head', y: 'layer', fill: '#e8e8e8', title: (d) => headName(d, per) + ': not measured' }),
      Plot.cell(cells.filter((c) => c.value !== null), { x: 'head', y: 'layer', fill: (d) => Math.max(d.value, floor), tip: true, title: (d) => headName(d, per) + ': ' + fmt(d.value) + (d.n !== null ? '\n' + d.n + ' samples' : '') }),
      label ? Plot.text(cells, { x: 'head', y: 'layer', text: (d) => formatShort(d.value), fill: { value: (d) => (d.value === null ? 'black' : textColorOn(S, d.value)), scale: null }, fontSize: cell >= 36 ? 9 : 7, pointerEvents: 'none' }) : null,
    ],
  });
  sec.append(exportable('atlas-' + m, fig));
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
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 24px auto; max-width: 1600px; padding: 0 20px; color: #222; }
h1 { font-size: 22px; margin-bottom: 4px; } h2 { font-size: 18px; margin-top: 32px; border-bottom: 1px solid #ddd; padding-bottom: 4px; }
h3 { font-size: 13px; margin: 0 0 2px; }
.lead { font-size: 15px; } .note, .desc { color: #555; max-width: 900px; } .desc { font-size: 11px; margin: 0 0 4px; display: -webkit-box; -webkit-line-clamp: 2; -webkit-box-orient: vertical; overflow: hidden; }
table { border-collapse: collapse; } td, th { text-align: left; padding: 4px 10px; border-bottom: 1px solid #eee; vertical-align: top; }
#maps { display: grid; grid-template-columns: repeat(auto-fill, minmax(200px, 1fr)); gap: 8px 10px; } .metric { min-width: 0; border: 1px solid #eee; border-radius: 6px; padding: 4px 6px; position: relative; }
.metric .fig { position: static; } .metric .export { position: absolute; top: 4px; right: 6px; } .metric h3 { padding-right: 70px; white-space: nowrap; overflow: hidden; text-overflow: ellipsis; } .metric .desc { -webkit-line-clamp: 1; }
.fig { position: relative; } .export { display: flex; gap: 4px; justify-content: flex-end; } .export button { font-size: 10px; padding: 0 6px; border: 1px solid #ccc; background: #fff; border-radius: 3px; color: #555; cursor: pointer; }
code { background: #f4f4f4; padding: 1px 4px; border-radius: 3px; }
</style>
</head>
<body>
<h1>What every head of ${escapeHtml(m.name)} does</h1>
<p>${summary.join('<br>')}</p>
<p class="note">Each heatmap has one cell per head: layers top to bottom, heads left to right. Shares and probabilities are on a fixed 0–1 scale, KL divergences (nats) on a log scale, other metrics linear from 0 — the same scales as in <code>headwise serve</code>. Hover a cell for its value and the number of samples behind it; grey cells were not measured; values are written in cells big enough to hold them.
Definitions follow <code>docs/methods.md</code> of the headwise repository and package; each metric says how it was measured. Generated by <code>headwise atlas</code> on ${escapeHtml(atlas.createdAt)}.</p>
<h2>Every head, metric by metric</h2>
<div id="maps"></div>
<h2>Causal check</h2>
<div id="validation"></div>
<h2>Comparison with the reference analysis</h2>
<div id="reference"></div>
<h2>Needle-in-a-haystack accuracy</h2>
<div id="niah"></div>
<h2>Top heads</h2>
<div id="tops"></div>
<script>${scriptText(bundles.d3)}</script>
<script>${scriptText(bundles.plot)}</script>
<script type="application/json" id="atlas-data">${scriptText(atlasJson(atlas))}</script>
<script type="application/json" id="display-data">${scriptText(JSON.stringify(reportDisplays(atlas)))}</script>
<script>${scriptText(SHARED)}</script>
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
