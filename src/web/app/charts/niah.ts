/**
 * Needle charts: the accuracy grid (context length × needle depth, a Plot cell per combination with
 * its accuracy, n and 95% Wilson interval written in, on the fixed [0, 1] scale) and accuracy against
 * KV-cache size in MiB, one line per policy, with the interval of each point as a vertical rule.
 */
import * as Plot from '@observablehq/plot';
import type { NiahView } from '../../api.js';
import { colorScale, metricDisplay, wilson } from '../../../atlas/metricDisplay.js';
import { formatMiB } from '../dom.js';
import { plotColor } from './colors.js';

const ACCURACY = colorScale(metricDisplay('accuracy'), []);
const pct = (x: number) => `${Math.round(100 * x)}%`;

export function niahGridChart(grid: NonNullable<NiahView['grid']>, width: number): HTMLElement | SVGSVGElement {
  const cells = grid.contextTokens.flatMap((ctx, i) =>
    grid.depths.map((depth, j) => {
      const acc = grid.accuracy[i][j];
      const n = grid.counts?.[i]?.[j] ?? grid.samplesPerCell;
      const ci = acc === null ? null : wilson(Math.round(acc * n), n);
      return { ctx: String(ctx), depth: `${Math.round(depth * 100)}%`, acc, ci, n };
    }),
  );
  return Plot.plot({
    width,
    height: 52 * grid.contextTokens.length + 90,
    marginLeft: 70,
    padding: 0.05,
    x: { label: 'needle depth (0% = start of the context) →', labelAnchor: 'center', domain: grid.depths.map((d) => `${Math.round(d * 100)}%`) },
    y: { label: 'context (tokens)', labelAnchor: 'center', domain: grid.contextTokens.map(String) },
    color: { ...plotColor(ACCURACY, 'accuracy'), legend: true, tickFormat: '.0%' },
    marks: [
      Plot.cell(cells, { x: 'depth', y: 'ctx', fill: (d: { acc: number | null }) => d.acc ?? undefined, inset: 0.5 }),
      Plot.text(cells, {
        x: 'depth',
        y: 'ctx',
        text: (d: (typeof cells)[number]) => (d.acc === null ? '–' : `${pct(d.acc)} (n=${d.n})\n[${pct(d.ci!.lo)}, ${pct(d.ci!.hi)}]`),
        fill: { value: (d: (typeof cells)[number]) => (d.acc !== null && (d.acc > 0.8 || d.acc < 0.2) ? 'white' : 'black'), scale: null },
        fontSize: 11,
        lineHeight: 1.15,
      }),
    ],
  }) as HTMLElement | SVGSVGElement;
}

type KvPoint = NonNullable<NiahView['kv']>[number] & { mib: number; lo: number | null; hi: number | null };

export function kvCurveChart(kv: NonNullable<NiahView['kv']>, width: number): HTMLElement | SVGSVGElement {
  const points: KvPoint[] = kv.map((p) => {
    const ci = p.samples ? wilson(Math.round(p.accuracy * p.samples), p.samples) : null;
    return { ...p, mib: p.kvBytes / 1024 ** 2, lo: ci?.lo ?? null, hi: ci?.hi ?? null };
  });
  // Labels of neighbouring points of one policy alternate above and below the line.
  const dy = new Map(points.map((p) => [p, points.filter((q) => q.policy === p.policy && q.mib < p.mib).length % 2 ? 14 : -10]));
  return Plot.plot({
    width,
    height: 330,
    marginRight: 40,
    marginTop: 30,
    x: { label: 'KV cache held per prompt (MiB) →', labelAnchor: 'center', grid: true, zero: true },
    y: { label: '↑ needle accuracy (95% interval)', domain: [0, 1.05], grid: true, tickFormat: '.0%' },
    color: { legend: true, domain: ['full', 'streaming', 'duo'], range: ['#222', '#1f77b4', '#e4002b'] },
    marks: [
      Plot.ruleX(points.filter((p) => p.lo !== null), { x: 'mib', y1: 'lo', y2: 'hi', stroke: 'policy', strokeOpacity: 0.35, strokeWidth: 3 }),
      Plot.line(points, { x: 'mib', y: 'accuracy', stroke: 'policy', sort: 'mib' }),
      Plot.dot(points, { x: 'mib', y: 'accuracy', fill: 'policy', r: 4, tip: true, title: (p: KvPoint) => `${p.policy}: ${p.setting}\n${formatMiB(p.kvBytes)} of ${formatMiB(p.kvBytesFull)}\naccuracy ${pct(p.accuracy)}${p.samples ? ` (n = ${p.samples}, 95% CI ${pct(p.lo!)}–${pct(p.hi!)})` : ''}` }),
      Plot.text(points.filter((p) => dy.get(p)! < 0), { x: 'mib', y: 'accuracy', text: 'setting', dy: -10, fontSize: 10, fill: 'policy' }),
      Plot.text(points.filter((p) => dy.get(p)! > 0), { x: 'mib', y: 'accuracy', text: 'setting', dy: 14, fontSize: 10, fill: 'policy' }),
    ],
  }) as HTMLElement | SVGSVGElement;
}
