/**
 * A head's attention pattern as a token × token heatmap (Plot raster: one pixel-cell per query/key,
 * future keys left blank), token strings on both axes, the chosen query row outlined, and a tooltip
 * with the exact weight. A click on a row picks that query.
 */
import * as Plot from '@observablehq/plot';
import { formatNumber, showToken } from '../dom.js';

export interface AttentionMapOptions {
  tokens: string[];
  /** attention[query][key] */
  attention: number[][];
  query: number;
  /** Box the chart must fit in, pixels. */
  size: number;
  onPickQuery?: (query: number) => void;
}

const MARGIN = { top: 8, right: 8, bottom: 70, left: 78 };

export function attentionMap(opts: AttentionMapOptions): HTMLElement | SVGSVGElement {
  const n = opts.tokens.length;
  const side = Math.max(120, Math.min(opts.size - Math.max(MARGIN.left + MARGIN.right, MARGIN.top + MARGIN.bottom), n * 40));
  const cell = side / n;
  const values = new Float64Array(n * n);
  let max = 0;
  for (let q = 0; q < n; q++) {
    for (let k = 0; k < n; k++) {
      const w = opts.attention[q][k];
      values[q * n + k] = k > q ? NaN : w;
      if (k <= q && w > max) max = w;
    }
  }
  // Label every token when there is room, else every step-th.
  const step = Math.max(1, Math.ceil(11 / cell));
  const ticks = [...Array(n).keys()].filter((i) => i % step === 0).map((i) => i + 0.5);
  const label = (v: number) => {
    const s = showToken(opts.tokens[Math.floor(v)] ?? '');
    return s.length > 10 ? s.slice(0, 9) + '…' : s;
  };
  const tipData = [];
  for (let q = 0; q < n; q++) for (let k = 0; k <= q; k++) tipData.push({ q, k, w: opts.attention[q][k] });
  const plot = Plot.plot({
    width: side + MARGIN.left + MARGIN.right,
    height: side + MARGIN.top + MARGIN.bottom,
    marginTop: MARGIN.top,
    marginRight: MARGIN.right,
    marginBottom: MARGIN.bottom,
    marginLeft: MARGIN.left,
    style: { fontSize: '10px' },
    x: { domain: [0, n], ticks, tickFormat: label, tickRotate: -90, tickSize: 0, label: 'key (attended token) →', labelOffset: 66 },
    y: { domain: [n, 0], ticks, tickFormat: label, tickSize: 0, label: '↓ query (attending token)', labelAnchor: 'center', labelOffset: 74 },
    color: { type: 'sqrt', scheme: 'blues', domain: [0, Math.max(max, 1e-6)], label: 'attention weight' },
    marks: [
      Plot.frame({ stroke: '#ccc' }),
      Plot.raster(values, { width: n, height: n, x1: 0, x2: n, y1: 0, y2: n, imageRendering: 'pixelated' }),
      Plot.rect([opts.query], { x1: 0, x2: n, y1: (q: number) => q, y2: (q: number) => q + 1, stroke: '#e4002b', strokeWidth: 1.5, fill: 'none' }),
      Plot.tip(
        tipData,
        Plot.pointer({
          x: (d: { k: number }) => d.k + 0.5,
          y: (d: { q: number }) => d.q + 0.5,
          title: (d: { q: number; k: number; w: number }) => `query ${d.q} ${showToken(opts.tokens[d.q])}\nkey ${d.k} ${showToken(opts.tokens[d.k])}\nweight ${formatNumber(d.w, 4)}`,
        }),
      ),
    ],
  });
  const svg = (plot.querySelector('svg') ?? plot) as SVGSVGElement;
  svg.addEventListener('pointerdown', (e) => e.stopImmediatePropagation(), { capture: true });
  if (opts.onPickQuery) {
    svg.style.cursor = 'pointer';
    svg.addEventListener('click', (e) => {
      const box = svg.getBoundingClientRect();
      const y = e.clientY - box.top - MARGIN.top;
      const x = e.clientX - box.left - MARGIN.left;
      if (y < 0 || y >= side || x < 0 || x >= side) return;
      opts.onPickQuery!(Math.min(n - 1, Math.floor(y / cell)));
    });
  }
  return plot as HTMLElement | SVGSVGElement;
}

/** Plot's legend for the heatmap's colour scale. */
export function attentionLegend(attention: number[][], width = 240): HTMLElement | SVGSVGElement {
  let max = 0;
  attention.forEach((row, q) => row.forEach((w, k) => k <= q && w > max && (max = w)));
  return Plot.legend({ color: { type: 'sqrt', scheme: 'blues', domain: [0, Math.max(max, 1e-6)], label: 'attention weight (sqrt scale)' }, width }) as HTMLElement | SVGSVGElement;
}

/** The keys a query attends to most, as a small bar chart. */
export function topKeysChart(tokens: string[], row: number[], query: number, k = 8, width = 280): HTMLElement | SVGSVGElement {
  const top = row
    .slice(0, query + 1)
    .map((w, key) => ({ key, w, label: `${key}: ${showToken(tokens[key])}` }))
    .sort((a, b) => b.w - a.w)
    .slice(0, k);
  return Plot.plot({
    width,
    height: 22 * top.length + 30,
    marginLeft: 110,
    marginRight: 44,
    style: { fontSize: '11px' },
    x: { domain: [0, 1], label: 'weight', grid: true },
    y: { domain: top.map((t) => t.label), label: null, tickFormat: (s: string) => (s.length > 16 ? s.slice(0, 15) + '…' : s) },
    marks: [
      Plot.barX(top, { x: 'w', y: 'label', fill: '#3b76af' }),
      Plot.text(top, { x: 'w', y: 'label', text: (d: { w: number }) => formatNumber(d.w, 3), textAnchor: 'start', dx: 4 }),
    ],
  }) as HTMLElement | SVGSVGElement;
}
