/**
 * Results view: research results drawn from their JSON (`atlas/researchResult.ts`) — activation
 * patching per head (layers × heads) and per head × position, direct logit attribution and head
 * importance (with its intervals on hover) per head, the logit lens per layer × position. They come
 * from the server (`serve --results FILE`) or from a file picked here (read in the browser, converted
 * from the research CLI's JSON and checked by the same `atlas/researchCliResults.ts`). Signed effects sit on a diverging
 * scale around 0, probabilities on the fixed [0, 1] scale; values are written in cells that fit them.
 */
import * as Plot from '@observablehq/plot';
import { colorScale, colorValue, formatShort, textColorOn, type MetricDisplay } from '../../../atlas/metricDisplay.js';
import { readResultsFile } from '../../../atlas/researchCliResults.js';
import type { ResearchResult } from '../../../atlas/researchResult.js';
import { headGrid, type HeadCell } from '../charts/headGrid.js';
import { legend, plotColor } from '../charts/colors.js';
import { exportButtons, mainSvg } from '../charts/export.js';
import { fill, formatNumber, h, showToken } from '../dom.js';
import { go } from '../route.js';
import { state } from '../state.js';
import { errorBox } from './common.js';

const KIND_TITLE: Record<ResearchResult['kind'], string> = {
  'patch-head': 'Activation patching per head',
  'patch-head-pos': 'Activation patching per head × position',
  dla: 'Direct logit attribution per head',
  'head-importance': 'Head importance',
  'logit-lens': 'Logit lens per layer',
};

function display(r: ResearchResult): MetricDisplay {
  if (r.kind === 'logit-lens') return { code: 'prob', title: r.metric ?? `probability of ${r.target ? JSON.stringify(r.target) : 'the target'}`, unit: r.unit ?? 'probability', scale: 'fixed01', scheme: 'blues' };
  if (r.kind === 'head-importance' && r.scale === 'log') return { code: r.kind, title: r.metric ?? 'effect of ablating the head', unit: r.unit ?? '', scale: 'log', scheme: 'ylorrd' };
  const unit = r.unit ?? (r.kind === 'dla' ? 'logits' : '');
  const title = r.metric ?? (r.kind === 'dla' ? 'direct logit contribution' : r.kind === 'head-importance' ? 'effect of ablating the head' : 'patching effect');
  return { code: r.kind, title, unit, scale: 'diverging', scheme: 'rdbu' };
}

export function resultsView(root: HTMLElement): () => void {
  const { model } = state;
  const file = h('input', { type: 'file', accept: '.json,application/json', 'data-testid': 'results-file' });
  const message = h('div', {});
  const list = h('div', { class: 'results-list', 'data-testid': 'results-list' });
  root.append(
    h(
      'section',
      { class: 'view results-view' },
      h('div', { class: 'controls' }, h('h2', {}, 'Patching & attribution'), h('label', { class: 'small' }, 'Open a results file: ', file)),
      h('p', { class: 'muted small' }, 'Results of activation patching, direct logit attribution, head importance and the logit lens: the ', h('code', {}, '--json'), ' output of ', h('code', {}, 'headwise patch'), ' (--mode head or head-pos), ', h('code', {}, 'attribute'), ' or ', h('code', {}, 'importance'), ', or the format of src/atlas/researchResult.ts. Start the server with ', h('code', {}, 'headwise serve --results FILE'), ' or open a file here; it is read in this page and not sent anywhere.'),
      message,
      list,
    ),
  );
  const draw = () => {
    if (state.results.length === 0) return fill(list, h('p', { class: 'muted', 'data-testid': 'results-empty' }, 'No results loaded yet.'));
    const width = Math.max(320, list.clientWidth - 20);
    fill(list, state.results.map((r, i) => resultPanel(r, i, width)));
  };
  file.addEventListener('change', async () => {
    fill(message);
    const f = file.files?.[0];
    if (!f) return;
    try {
      let json: unknown;
      try {
        json = JSON.parse(await f.text());
      } catch (e) {
        throw new Error(`${f.name}: not valid JSON (${(e as Error).message})`);
      }
      let results: ResearchResult[];
      try {
        results = readResultsFile(json, { name: model.name, layers: model.layers, heads: model.heads });
      } catch (e) {
        throw new Error(`${f.name}: ${(e as Error).message}`);
      }
      state.results = [...results, ...state.results];
      draw();
    } catch (e) {
      fill(message, errorBox(e));
    }
  });
  draw();
  const observer = new ResizeObserver(() => draw());
  observer.observe(list);
  return () => observer.disconnect();
}

function resultPanel(r: ResearchResult, index: number, width: number): HTMLElement {
  const d = display(r);
  const name = `${r.kind}-${index}`;
  const fig = figure(r, d, width);
  const about = [r.target ? `target ${JSON.stringify(r.target)}` : '', r.n ? `n = ${r.n} prompts` : '', r.prompts ? `clean: “${r.prompts.clean.slice(0, 80)}”${r.prompts.corrupted ? `, corrupted: “${r.prompts.corrupted.slice(0, 80)}”` : ''}` : ''].filter(Boolean).join(' · ');
  return h(
    'div',
    { class: 'panel result', 'data-testid': `result-${r.kind}` },
    h('div', { class: 'row' }, h('h3', { class: 'grow' }, r.title ?? KIND_TITLE[r.kind], h('span', { class: 'muted small' }, ` — ${d.title}${d.unit ? `, ${d.unit}` : ''}`)), exportButtons(name, () => mainSvg(fig))),
    about ? h('p', { class: 'muted small' }, about) : null,
    r.note ? h('p', { class: 'muted small' }, r.note) : null,
    fig,
  );
}

function figure(r: ResearchResult, d: MetricDisplay, width: number): HTMLElement {
  const { model } = state;
  if (r.kind === 'patch-head' || r.kind === 'dla' || r.kind === 'head-importance') {
    const scale = colorScale(d, r.values);
    const box = h('div', { class: 'result-grid' });
    const tip = (c: HeadCell) => {
      const ci = r.kind === 'head-importance' ? r.ci[c.layer][c.head] : null;
      const interval = ci ? `\n95% interval [${formatNumber(ci[0], 4)}, ${formatNumber(ci[1], 4)}]${r.n ? `, n = ${r.n}` : ''}` : '';
      return `layer ${c.layer}, head ${c.head}\n${d.title}: ${c.value === null ? 'not computed' : formatNumber(c.value, 4)}${interval}`;
    };
    const { element } = headGrid({ values: r.values, metric: d.code, scale, tip, width: Math.min(width, 160 + 56 * model.heads), height: 40 + 44 * model.layers, maxCell: 56, onClick: (c) => go({ view: 'head', head: { layer: c.layer, head: c.head } }) });
    box.append(element, legend(scale, d.unit ? `${d.title}, ${d.unit}` : d.title, 300));
    return box;
  }
  if (r.kind === 'patch-head-pos') {
    const scale = colorScale(d, r.values.flat());
    const rows = r.values.flatMap((byHead, layer) => byHead.map((_, head) => `L${layer}H${head}`));
    const cells = r.values.flatMap((byHead, layer) => byHead.flatMap((byPos, head) => byPos.map((v, pos) => ({ row: `L${layer}H${head}`, pos, v }))));
    const cellW = Math.max(3, Math.min(48, Math.floor((width - 80) / r.tokens.length)));
    const cellH = Math.max(3, Math.min(20, Math.floor(600 / rows.length)));
    return h(
      'div',
      {},
      Plot.plot({
        width: 80 + cellW * r.tokens.length,
        height: 90 + cellH * rows.length,
        marginLeft: 60,
        marginBottom: 80,
        padding: 0,
        x: { type: 'band', domain: r.tokens.map((_, i) => i), tickFormat: (i: number) => showToken(r.tokens[i]).slice(0, 10), tickRotate: -60, label: 'position →', ticks: cellW >= 10 ? undefined : r.tokens.map((_, i) => i).filter((i) => i % Math.ceil(10 / cellW) === 0) },
        y: { type: 'band', domain: rows, label: null, ticks: cellH >= 9 ? undefined : rows.filter((_, i) => i % Math.ceil(9 / cellH) === 0) },
        color: plotColor(scale, d.title),
        marks: [
          Plot.cell(cells, { x: 'pos', y: 'row', fill: (c: { v: number }) => (c.v === null ? '#eee' : colorValue(scale, c.v)), tip: true, title: (c: { row: string; pos: number; v: number }) => `${c.row}, position ${r.positions?.[c.pos] ?? c.pos} ${showToken(r.tokens[c.pos])}: ${formatShort(c.v)}` }),
          cellW >= 30 && cellH >= 14 ? Plot.text(cells, { x: 'pos', y: 'row', text: (c: { v: number }) => formatShort(c.v), fill: { value: (c: { v: number }) => textColorOn(scale, c.v), scale: null }, fontSize: 9 }) : null,
        ],
      }) as HTMLElement,
      legend(scale, d.unit ? `${d.title}, ${d.unit}` : d.title, 300),
    );
  }
  const scale = colorScale(d, r.prob);
  const cells = r.prob.flatMap((byPos, layer) => byPos.map((p, pos) => ({ layer, pos, p, top: r.top?.[layer]?.[pos] ?? null })));
  const cellW = Math.max(4, Math.min(64, Math.floor((width - 80) / r.tokens.length)));
  const cellH = Math.max(8, Math.min(28, Math.floor(520 / r.prob.length)));
  return h(
    'div',
    {},
    Plot.plot({
      width: 90 + cellW * r.tokens.length,
      height: 100 + cellH * r.prob.length,
      marginLeft: 60,
      marginBottom: 80,
      padding: 0.02,
      x: { type: 'band', domain: r.tokens.map((_, i) => i), tickFormat: (i: number) => showToken(r.tokens[i]).slice(0, 10), tickRotate: -60, label: 'position →' },
      y: { type: 'band', domain: r.prob.map((_, l) => l), tickFormat: (l: number) => `after L${l}`, label: '↓ layer' },
      color: plotColor(scale, d.title),
      marks: [
        Plot.cell(cells, { x: 'pos', y: 'layer', fill: (c: { p: number }) => c.p, tip: true, title: (c: (typeof cells)[number]) => `after layer ${c.layer}, position ${c.pos} ${showToken(r.tokens[c.pos])}\n${d.title}: ${formatShort(c.p)}${c.top ? `\ntop token ${JSON.stringify(c.top)}` : ''}` }),
        cellW >= 36 ? Plot.text(cells, { x: 'pos', y: 'layer', text: (c: (typeof cells)[number]) => (c.top !== null ? showToken(c.top).slice(0, 6) : formatShort(c.p)), fill: { value: (c: { p: number }) => textColorOn(scale, c.p), scale: null }, fontSize: 9 }) : null,
      ],
    }) as HTMLElement,
    legend(scale, d.title, 300),
  );
}

