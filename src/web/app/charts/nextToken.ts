/**
 * Next-token probabilities before and after an intervention: one row per candidate token (the union of
 * both runs' top candidates), a grey dot for the plain run, a red dot for the intervened run, and an
 * arrow between them, so what moved and by how much reads at a glance.
 */
import * as Plot from '@observablehq/plot';
import type { NextTokenChange } from '../../api.js';
import { formatNumber, showToken } from '../dom.js';

const RUNS = ['without intervention', 'with intervention'];

export function nextTokenChart(rows: NextTokenChange[], width: number): HTMLElement | SVGSVGElement {
  const withAfter = rows.some((r) => r.after !== null);
  const data = rows.map((r) => ({ ...r, label: `${showToken(r.token)}  #${r.id}` }));
  const dots = data.flatMap((r) => [
    { label: r.label, run: RUNS[0], prob: r.before },
    ...(r.after !== null ? [{ label: r.label, run: RUNS[1], prob: r.after }] : []),
  ]);
  return Plot.plot({
    width,
    height: 24 * rows.length + 70,
    marginLeft: 110,
    marginRight: 140,
    marginBottom: 40,
    style: { fontSize: '12px' },
    x: { domain: [0, 1], label: 'probability of the next token →', labelAnchor: 'center', grid: true },
    y: { domain: data.map((r) => r.label), label: null, tickFormat: (s: string) => (s.length > 16 ? s.slice(0, 15) + '…' : s) },
    color: { domain: withAfter ? RUNS : RUNS.slice(0, 1), range: ['#888', '#e4002b'], legend: true },
    marks: [
      withAfter
        ? Plot.arrow(data.filter((r) => Math.abs((r.after ?? 0) - r.before) > 0.015), {
            x1: 'before',
            x2: (r: NextTokenChange) => r.after ?? 0,
            y: 'label',
            stroke: '#e4002b',
            strokeOpacity: 0.5,
            bend: false,
            headLength: 6,
            inset: 6,
          })
        : null,
      Plot.dot(dots, { x: 'prob', y: 'label', fill: 'run', r: 5 }),
      // Exact values in a column right of the axis.
      Plot.text(data, {
        x: 1,
        y: 'label',
        text: (r: NextTokenChange) => (r.after !== null ? `${formatNumber(r.before, 3)} → ${formatNumber(r.after, 3)}` : formatNumber(r.before, 3)),
        dx: 16,
        textAnchor: 'start',
        fill: '#444',
        fontVariant: 'tabular-nums',
      }),
    ],
  }) as HTMLElement | SVGSVGElement;
}
