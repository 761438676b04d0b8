/**
 * The layers × heads grid: one Plot cell per head coloured by a metric, layer 0 at the top, with a
 * tooltip for the exact value. Cells carry `data-layer`/`data-head` so clicks and tests find them;
 * Plot's sticky-tooltip-on-click is turned off because a click here means "open / toggle this head".
 * Used large by the Atlas view and small by the Playground's head picker.
 */
import * as Plot from '@observablehq/plot';
import { colorScale, colorValue, formatShort, metricDisplay, textColorOn, type ColorScale } from '../../../atlas/metricDisplay.js';
import { formatNumber } from '../dom.js';
import { legend, plotColor } from './colors.js';

export interface HeadCell {
  layer: number;
  head: number;
  value: number | null;
}

export interface HeadGridOptions {
  /** values[layer][head] */
  values: (number | null)[][];
  /** Code name of the metric (its display comes from `atlas/metricDisplay.ts`). */
  metric: string;
  /** The colour scale; default: the metric's own (`colorScale`). */
  scale?: ColorScale;
  /** Box the grid must fit in, CSS pixels (axes included). */
  width: number;
  height: number;
  /** Largest cell side, pixels. */
  maxCell?: number;
  /** "head" or "KV head": what the columns are. */
  columnLabel?: string;
  /** Heads outlined (selected / marked). */
  outlined?: { layer: number; head: number }[];
  /** The tooltip of a cell; default: its layer, head and the metric's value. */
  tip?: (cell: HeadCell) => string;
  onHover?: (cell: HeadCell | null) => void;
  onClick?: (cell: HeadCell) => void;
}

/** Cells at least this wide get their value written in. */
const VALUE_CELL_PX = 26;

export function headGrid(opts: HeadGridOptions): { element: SVGSVGElement | HTMLElement; cell: number } {
  const layers = opts.values.length;
  const cols = opts.values[0]?.length ?? 0;
  const margin = { top: 34, left: 46, right: 8, bottom: 8 };
  const cell = Math.max(6, Math.floor(Math.min((opts.width - margin.left - margin.right) / cols, (opts.height - margin.top - margin.bottom) / layers, opts.maxCell ?? 64)));
  const data: HeadCell[] = opts.values.flatMap((row, layer) => row.map((value, head) => ({ layer, head, value: value ?? null })));
  const scale = opts.scale ?? colorScale(metricDisplay(opts.metric), opts.values);
  const title = metricDisplay(opts.metric).title;
  const finite = data.filter((d) => d.value !== null && Number.isFinite(d.value));
  const every = cell >= 15 ? 1 : cell >= 8 ? 2 : 4;
  const colLabel = opts.columnLabel ?? 'head';
  // The svg takes the whole width it is given (the grid stays at the left) so tooltips near the
  // edges of a narrow grid have room.
  const width = Math.max(margin.left + margin.right + cell * cols, Math.floor(opts.width));
  const plot = Plot.plot({
    width,
    height: margin.top + margin.bottom + cell * layers,
    marginTop: margin.top,
    marginLeft: margin.left,
    marginRight: width - margin.left - cell * cols,
    marginBottom: margin.bottom,
    padding: 0,
    style: { fontSize: cell < 16 ? '9px' : '11px' },
    x: { type: 'band', domain: [...Array(cols).keys()], axis: 'top', label: `${colLabel} →`, labelAnchor: 'center', tickSize: 0, ticks: [...Array(cols).keys()].filter((i) => i % every === 0) },
    y: { type: 'band', domain: [...Array(layers).keys()], label: '↓ layer', labelAnchor: 'center', tickSize: 0, ticks: [...Array(layers).keys()].filter((i) => i % every === 0) },
    color: plotColor(scale, title),
    marks: [
      Plot.cell(data, {
        x: 'head',
        y: 'layer',
        fill: (d: HeadCell) => (d.value === null || !Number.isFinite(d.value) ? '#ddd' : colorValue(scale, d.value)),
        inset: cell > 12 ? 0.5 : 0,
        render: (index, scales, values, dimensions, context, next) => {
          const g = next!(index, scales, values, dimensions, context)!;
          g.querySelectorAll('rect').forEach((rect, k) => {
            const d = data[index[k]];
            rect.setAttribute('data-layer', String(d.layer));
            rect.setAttribute('data-head', String(d.head));
            rect.setAttribute('class', 'head-cell');
          });
          return g;
        },
      }),
      cell >= VALUE_CELL_PX
        ? Plot.text(finite, { x: 'head', y: 'layer', text: (d: HeadCell) => formatShort(d.value), fill: { value: (d: HeadCell) => textColorOn(scale, d.value!), scale: null }, fontSize: Math.min(12, Math.max(8, cell / 4.2)), pointerEvents: 'none' } as Plot.TextOptions)
        : null,
      Plot.cell(opts.outlined ?? [], { x: 'head', y: 'layer', fill: 'none', stroke: '#e4002b', strokeWidth: Math.max(2, cell / 10), inset: 1 }),
      Plot.tip(
        data,
        Plot.pointer({
          x: 'head',
          y: 'layer',
          title: opts.tip ?? ((d: HeadCell) => `layer ${d.layer}, ${colLabel} ${d.head}\n${title} (${opts.metric}): ${formatNumber(d.value, 4)}`),
        }),
      ),
    ],
  });
  const svg = plot.querySelector('svg') ?? plot;
  // Plot pins a tooltip on click; here a click opens or toggles the head instead.
  svg.addEventListener('pointerdown', (e) => e.stopImmediatePropagation(), { capture: true });
  const cellOf = (target: EventTarget | null): HeadCell | null => {
    const rect = (target as Element | null)?.closest?.('rect[data-layer]');
    if (!rect) return null;
    const layer = Number(rect.getAttribute('data-layer'));
    const head = Number(rect.getAttribute('data-head'));
    return data[layer * cols + head] ?? null;
  };
  if (opts.onClick) {
    svg.addEventListener('click', (e) => {
      const c = cellOf(e.target);
      if (c) opts.onClick!(c);
    });
    (svg as SVGElement).style.cursor = 'pointer';
  }
  if (opts.onHover) {
    svg.addEventListener('pointerover', (e) => opts.onHover!(cellOf(e.target)));
    svg.addEventListener('pointerleave', () => opts.onHover!(null));
  }
  return { element: plot, cell };
}

/** Plot's colour legend for the scale the grid uses: the metric's title, unit and scale type. */
export function metricLegend(values: (number | null)[][], metric: string, width = 260, scale?: ColorScale): HTMLElement | SVGSVGElement {
  const d = metricDisplay(metric);
  return legend(scale ?? colorScale(d, values), d.unit ? `${d.title}, ${d.unit}` : d.title, width);
}
