/**
 * Needle charts: the accuracy grid (context length × needle depth, a Plot cell per combination with
 * its accuracy written in) and accuracy against KV-cache bytes, one line per policy.
 */
import * as Plot from '@observablehq/plot';
import type { NiahView } from '../../api.js';
import { formatBytes } from '../dom.js';

export function niahGridChart(grid: NonNullable<NiahView['grid']>, width: number): HTMLElement | SVGSVGElement {
  const cells = grid.contextTokens.flatMap((ctx, i) => grid.depths.map((depth, j) => ({ ctx: String(ctx), depth: `${Math.round(depth * 100)}%`, acc: grid.accuracy[i][j] })));
  return Plot.plot({
    width,
    height: 44 * grid.contextTokens.length + 90,
    marginLeft: 70,
    padding: 0.05,
    x: { label: 'needle depth (0% = start of the context) →', labelAnchor: 'center', domain: grid.depths.map((d) => `${Math.round(d * 100)}%`) },
    y: { label: 'context (tokens)', labelAnchor: 'center', domain: grid.contextTokens.map(String) },
    color: { type: 'linear', scheme: 'rdylgn', domain: [0, 1], label: 'accuracy', legend: true, tickFormat: '.0%' },
    marks: [
      Plot.cell(cells, { x: 'depth', y: 'ctx', fill: (d: { acc: number | null }) => d.acc ?? undefined, inset: 0.5 }),
      Plot.text(cells, { x: 'depth', y: 'ctx', text: (d: { acc: number | null }) => (d.acc === null ? '–' : `${Math.round(d.acc * 100)}%`), fill: (d: { acc: number | null }) => (d.acc !== null && (d.acc > 0.8 || d.acc < 0.2) ? 'white' : 'black'), fontSize: 12 }),
    ],
  }) as HTMLElement | SVGSVGElement;
}

type KvPoint = NonNullable<NiahView['kv']>[number] & { kb: number };

export function kvCurveChart(kv: NonNullable<NiahView['kv']>, width: number): HTMLElement | SVGSVGElement {
  const points: KvPoint[] = kv.map((p) => ({ ...p, kb: p.kvBytes / 1024 }));
  // Labels of neighbouring points of one policy alternate above and below the line.
  const dy = new Map(points.map((p) => [p, points.filter((q) => q.policy === p.policy && q.kb < p.kb).length % 2 ? 14 : -10]));
  return Plot.plot({
    width,
    height: 330,
    marginRight: 40,
    marginTop: 30,
    x: { label: 'KV cache held per prompt (KB) →', labelAnchor: 'center', grid: true, zero: true },
    y: { label: '↑ needle accuracy', domain: [0, 1.05], grid: true, tickFormat: '.0%' },
    color: { legend: true, domain: ['full', 'streaming', 'duo'], range: ['#222', '#1f77b4', '#e4002b'] },
    marks: [
      Plot.line(points, { x: 'kb', y: 'accuracy', stroke: 'policy', sort: 'kb' }),
      Plot.dot(points, { x: 'kb', y: 'accuracy', fill: 'policy', r: 4, tip: true, title: (p: KvPoint) => `${p.policy}: ${p.setting}\n${formatBytes(p.kvBytes)} of ${formatBytes(p.kvBytesFull)}\naccuracy ${Math.round(p.accuracy * 100)}%` }),
      Plot.text(points.filter((p) => dy.get(p)! < 0), { x: 'kb', y: 'accuracy', text: 'setting', dy: -10, fontSize: 10, fill: 'policy' }),
      Plot.text(points.filter((p) => dy.get(p)! > 0), { x: 'kb', y: 'accuracy', text: 'setting', dy: 14, fontSize: 10, fill: 'policy' }),
    ],
  }) as HTMLElement | SVGSVGElement;
}
