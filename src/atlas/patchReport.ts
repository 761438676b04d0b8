/**
 * An activation-patching result (`patching/format.ts`) as one self-contained HTML page: a summary
 * (metric on the clean and corrupt runs) and a heatmap of the share of the clean − corrupt gap each
 * patch restores — layers × heads (`head`), heads × positions (`head-pos`) or layers × positions
 * (`attn-out`), positions labelled with their tokens — with the value of every cell on hover. Uses the
 * same inlined d3 and Observable Plot bundles as the atlas report (`report.ts`); `patchReportHtml` is pure.
 */
import { writeFileAtomic } from '../graph/weights.js';
import type { PatchingResult } from '../patching/format.js';
import { loadReportBundles, type ReportBundles } from './report.js';

function scriptText(s: string): string {
  return s.replace(/<\/(script)/gi, '<\\/$1').replace(/<!--/g, '<\\!--');
}

const RENDER = String.raw`
const R = JSON.parse(document.getElementById('patch-data').textContent);
const fmt = (v) => Math.abs(v) >= 100 ? v.toFixed(0) : Math.abs(v) >= 1 ? v.toFixed(2) : v.toFixed(3);
const tok = (p) => p + ' ' + JSON.stringify(R.clean[p].text) + (R.clean[p].id !== R.corrupt[p].id ? ' → ' + JSON.stringify(R.corrupt[p].text) : '');
document.getElementById('summary').textContent =
  R.model + ' · metric ' + R.metric + ' (' + R.answer.text + (R.wrong ? ' vs ' + R.wrong.text : '') + ') · clean ' + fmt(R.cleanValue) +
  ', corrupt ' + fmt(R.corruptValue) + ' · patching ' + R.hook + ' (' + R.mode + ') from the clean run into the corrupt one · ' + R.cells.length + ' runs, ' + (R.elapsedMs / 1000).toFixed(1) + ' s';
const cells = R.cells.map((c) => ({ ...c,
  y: c.layer === null ? 'joint' : c.head === null ? 'L' + c.layer : 'L' + c.layer + 'H' + c.head,
  x: c.position === null ? (c.head === null ? 'all heads' : 'H' + c.head) : tok(c.position),
}));
if (R.mode === 'head') cells.forEach((c) => (c.y = 'L' + c.layer));
const plot = Plot.plot({
  marginLeft: 70, marginBottom: R.mode === 'head' ? 40 : 120, width: Math.max(480, 30 * new Set(cells.map((c) => c.x)).size + 120),
  x: { label: R.mode === 'head' ? 'head' : 'position', tickRotate: R.mode === 'head' ? 0 : -60, domain: [...new Set(cells.map((c) => c.x))] },
  y: { label: R.mode === 'head' ? 'layer' : null, domain: [...new Set(cells.map((c) => c.y))] },
  color: { type: 'diverging', scheme: 'RdBu', domain: [-1, 1], legend: true, label: 'share of clean − corrupt restored' },
  marks: [Plot.cell(cells, { x: 'x', y: 'y', fill: 'restored', inset: 0.5, tip: true,
    title: (c) => c.heads.map((h) => 'L' + h.layer + 'H' + h.head).join(' ') + (c.position === null ? '' : ' @ ' + tok(c.position)) + '\nrestored ' + fmt(c.restored) + ', metric ' + fmt(c.value) })],
});
document.getElementById('heatmap').append(plot);
`;

export function patchReportHtml(result: PatchingResult, bundles: ReportBundles): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>headwise activation patching — ${result.model}</title>
<style>body{font:14px system-ui,sans-serif;margin:2em;max-width:1400px}#summary{color:#444;margin-bottom:1em}</style>
<script>${scriptText(bundles.d3)}</script>
<script>${scriptText(bundles.plot)}</script>
</head>
<body>
<h1>Activation patching</h1>
<div id="summary"></div>
<div id="heatmap"></div>
<script type="application/json" id="patch-data">${scriptText(JSON.stringify(result))}</script>
<script>${scriptText(RENDER)}</script>
</body>
</html>
`;
}

/** Writes the page atomically. */
export function writePatchReport(file: string, result: PatchingResult): void {
  writeFileAtomic(file, patchReportHtml(result, loadReportBundles()));
}
