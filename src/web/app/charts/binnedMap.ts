/**
 * A binned attention pattern on a canvas: one rectangle per (query bin, key bin) — never more than the
 * server's bins × bins, however long the prompt — with token labels where a bin is one token and
 * position ranges where it is many. Drag a rectangle to zoom into those queries × keys (the view asks
 * the server for that window, exact once it is no wider than the bins), click a row to make its query
 * the chosen one, hover for the exact share. Colours: attention share on the fixed [0, 1] scale with a
 * square-root ramp (`colors.ts`). `binnedMapSvg` writes the same figure as SVG for export.
 */
import type { BinnedPattern } from '../../api.js';
import { showToken } from '../dom.js';
import { formatShort } from '../../../atlas/metricDisplay.js';

export interface BinnedMapOptions {
  pattern: Pick<BinnedPattern, 'cells' | 'queryEdges' | 'keyEdges' | 'tokens'>;
  /** Side of the square plot area, CSS pixels (labels are outside it). */
  side: number;
  color: (v: number) => string;
  /** Query whose row is outlined. */
  query?: number;
  /** Small: no labels, no interaction (thumbnails). */
  thumbnail?: boolean;
  onHover?: (text: string | null) => void;
  onPickQuery?: (query: number) => void;
  onZoom?: (queries: [number, number], keys: [number, number]) => void;
}

export const MAP_MARGIN = { top: 6, right: 6, bottom: 64, left: 70 };

function binLabel(tokens: string[], a: number, b: number): string {
  if (b - a === 1) {
    const s = showToken(tokens[a] ?? '');
    return s.length > 9 ? s.slice(0, 8) + '…' : s;
  }
  return `${a}–${b - 1}`;
}

/** Which labels to draw along an axis of `bins` bins over `side` px: all if they fit, else every step-th. */
function labelStep(bins: number, side: number): number {
  return Math.max(1, Math.ceil(11 / (side / bins)));
}

export function binnedMap(opts: BinnedMapOptions): HTMLElement {
  const { cells, queryEdges: qe, keyEdges: ke, tokens } = opts.pattern;
  const rows = qe.length - 1;
  const cols = ke.length - 1;
  const side = Math.max(40, Math.floor(opts.side));
  const m = opts.thumbnail ? { top: 0, right: 0, bottom: 0, left: 0 } : MAP_MARGIN;
  const box = document.createElement('div');
  box.className = opts.thumbnail ? 'binned-map thumb' : 'binned-map';
  box.style.width = `${side + m.left + m.right}px`;
  box.style.height = `${side + m.top + m.bottom}px`;
  const canvas = document.createElement('canvas');
  const dpr = opts.thumbnail ? 1 : Math.min(2, window.devicePixelRatio || 1);
  canvas.width = Math.round(side * dpr);
  canvas.height = Math.round(side * dpr);
  Object.assign(canvas.style, { width: `${side}px`, height: `${side}px`, left: `${m.left}px`, top: `${m.top}px` });
  box.append(canvas);
  const ctx = canvas.getContext('2d')!;
  ctx.scale(dpr, dpr);
  const [q0, q1] = [qe[0], qe[rows]];
  const [k0, k1] = [ke[0], ke[cols]];
  const y = (q: number) => ((q - q0) / (q1 - q0)) * side;
  const x = (k: number) => ((k - k0) / (k1 - k0)) * side;
  ctx.fillStyle = '#fafafa';
  ctx.fillRect(0, 0, side, side);
  let drawn = 0;
  for (let i = 0; i < rows; i++) {
    const top = y(qe[i]);
    const height = y(qe[i + 1]) - top;
    const row = cells[i];
    for (let j = 0; j < cols; j++) {
      const v = row[j];
      if (v === null) continue;
      ctx.fillStyle = opts.color(v);
      const left = x(ke[j]);
      // Overlap by a fraction of a pixel so no seams show between cells.
      ctx.fillRect(left, top, x(ke[j + 1]) - left + 0.35, height + 0.35);
      drawn++;
    }
  }
  box.dataset.cells = String(rows * cols);
  box.dataset.drawn = String(drawn);
  box.dataset.window = `${q0},${q1},${k0},${k1}`;
  if (opts.thumbnail) return box;

  ctx.strokeStyle = '#ccc';
  ctx.strokeRect(0.5, 0.5, side - 1, side - 1);
  const rowOf = (q: number) => qe.findIndex((e, i) => i < rows && q >= e && q < qe[i + 1]);
  if (opts.query !== undefined && opts.query >= q0 && opts.query < q1) {
    const i = rowOf(opts.query);
    ctx.strokeStyle = '#e4002b';
    ctx.lineWidth = 1.5;
    ctx.strokeRect(0.75, y(qe[i]) + 0.75, side - 1.5, Math.max(1.5, y(qe[i + 1]) - y(qe[i]) - 1.5));
  }

  // Labels: tokens where a bin is one token, position ranges where it holds more.
  const qStep = labelStep(rows, side);
  for (let i = 0; i < rows; i += qStep) {
    const l = document.createElement('div');
    l.className = 'map-label y';
    l.textContent = binLabel(tokens, qe[i], qe[i + 1]);
    Object.assign(l.style, { top: `${m.top + (y(qe[i]) + y(qe[i + 1])) / 2 - 6}px`, width: `${m.left - 4}px` });
    box.append(l);
  }
  const kStep = labelStep(cols, side);
  for (let j = 0; j < cols; j += kStep) {
    const l = document.createElement('div');
    l.className = 'map-label x';
    l.textContent = binLabel(tokens, ke[j], ke[j + 1]);
    Object.assign(l.style, { left: `${m.left + (x(ke[j]) + x(ke[j + 1])) / 2 - 6}px`, top: `${m.top + side + 4}px` });
    box.append(l);
  }
  const axis = (cls: string, text: string) => {
    const a = document.createElement('div');
    a.className = `map-axis ${cls}`;
    a.textContent = text;
    box.append(a);
    return a;
  };
  axis('x', rows === q1 - q0 && cols === k1 - k0 ? 'key (attended token) →' : `key (attended tokens, ${cols} bins) →`).style.cssText = `left:${m.left}px;top:${m.top + side + m.bottom - 16}px;width:${side}px`;
  axis('y', rows === q1 - q0 ? '↓ query' : `↓ query (${rows} bins)`).style.cssText = `left:0;top:${m.top + side + 6}px;width:${m.left}px`;

  // Interaction: hover readout, click = pick query, drag = zoom.
  const band = document.createElement('div');
  band.className = 'zoom-band';
  box.append(band);
  const at = (e: PointerEvent) => {
    const r = canvas.getBoundingClientRect();
    const px = Math.min(side - 0.01, Math.max(0, e.clientX - r.left));
    const py = Math.min(side - 0.01, Math.max(0, e.clientY - r.top));
    const j = Math.min(cols - 1, ke.findIndex((_, jj) => jj < cols && x(ke[jj + 1]) > px));
    const i = Math.min(rows - 1, qe.findIndex((_, ii) => ii < rows && y(qe[ii + 1]) > py));
    return { i, j, px, py };
  };
  let start: { i: number; j: number; px: number; py: number } | null = null;
  canvas.addEventListener('pointerdown', (e) => {
    start = at(e);
    canvas.setPointerCapture(e.pointerId);
  });
  canvas.addEventListener('pointermove', (e) => {
    const p = at(e);
    if (start && (Math.abs(p.px - start.px) > 4 || Math.abs(p.py - start.py) > 4)) {
      Object.assign(band.style, { display: 'block', left: `${m.left + Math.min(p.px, start.px)}px`, top: `${m.top + Math.min(p.py, start.py)}px`, width: `${Math.abs(p.px - start.px)}px`, height: `${Math.abs(p.py - start.py)}px` });
    }
    if (!opts.onHover) return;
    const v = cells[p.i]?.[p.j];
    const qs = qe[p.i + 1] - qe[p.i] === 1 ? `query ${qe[p.i]} ${showToken(tokens[qe[p.i]])}` : `queries ${qe[p.i]}–${qe[p.i + 1] - 1}`;
    const ks = ke[p.j + 1] - ke[p.j] === 1 ? `key ${ke[p.j]} ${showToken(tokens[ke[p.j]])}` : `keys ${ke[p.j]}–${ke[p.j + 1] - 1}`;
    opts.onHover(`${qs} → ${ks}: ${v === null || v === undefined ? 'after the query' : `share ${formatShort(v)}`}`);
  });
  canvas.addEventListener('pointerleave', () => opts.onHover?.(null));
  canvas.addEventListener('pointerup', (e) => {
    const p = at(e);
    const s = start;
    start = null;
    band.style.display = 'none';
    if (!s) return;
    if (Math.abs(p.px - s.px) > 4 || Math.abs(p.py - s.py) > 4) {
      const [ia, ib] = [Math.min(s.i, p.i), Math.max(s.i, p.i)];
      const [ja, jb] = [Math.min(s.j, p.j), Math.max(s.j, p.j)];
      opts.onZoom?.([qe[ia], qe[ib + 1]], [ke[ja], ke[jb + 1]]);
    } else {
      opts.onPickQuery?.(qe[p.i + 1] - 1);
    }
  });
  return box;
}

/** The same figure as an SVG document (rects + labels), for export. */
export function binnedMapSvg(opts: Pick<BinnedMapOptions, 'pattern' | 'color'> & { side: number; title: string }): string {
  const { cells, queryEdges: qe, keyEdges: ke, tokens } = opts.pattern;
  const m = MAP_MARGIN;
  const side = opts.side;
  const rows = qe.length - 1;
  const cols = ke.length - 1;
  const y = (q: number) => ((q - qe[0]) / (qe[rows] - qe[0])) * side;
  const x = (k: number) => ((k - ke[0]) / (ke[cols] - ke[0])) * side;
  const esc = (s: string) => s.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]!);
  const parts: string[] = [];
  for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) {
    const v = cells[i][j];
    if (v !== null) parts.push(`<rect x="${x(ke[j]).toFixed(2)}" y="${y(qe[i]).toFixed(2)}" width="${(x(ke[j + 1]) - x(ke[j])).toFixed(2)}" height="${(y(qe[i + 1]) - y(qe[i])).toFixed(2)}" fill="${opts.color(v)}"/>`);
  }
  const labels: string[] = [];
  const qStep = labelStep(rows, side);
  for (let i = 0; i < rows; i += qStep) labels.push(`<text x="-4" y="${((y(qe[i]) + y(qe[i + 1])) / 2 + 3).toFixed(1)}" text-anchor="end">${esc(binLabel(tokens, qe[i], qe[i + 1]))}</text>`);
  const kStep = labelStep(cols, side);
  for (let j = 0; j < cols; j += kStep) {
    const cx = (x(ke[j]) + x(ke[j + 1])) / 2;
    labels.push(`<text transform="translate(${(cx + 3).toFixed(1)},${side + 4}) rotate(-90)" text-anchor="end">${esc(binLabel(tokens, ke[j], ke[j + 1]))}</text>`);
  }
  const w = side + m.left + m.right;
  const hgt = side + m.top + m.bottom + 18;
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${w}" height="${hgt}" font-family="system-ui, sans-serif" font-size="9" style="background:white"><text x="4" y="12" font-size="12">${esc(opts.title)}</text><g transform="translate(${m.left},${m.top + 18})"><rect width="${side}" height="${side}" fill="#fafafa" stroke="#ccc"/>${parts.join('')}${labels.join('')}</g></svg>`;
}
