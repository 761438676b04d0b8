/**
 * Head view: one head's attention on a prompt of any length up to the model's context — the pattern
 * binned by the server (`POST /api/pattern/bins`, at most bins × bins cells drawn), zoomed by dragging
 * a rectangle (exact tokens once the window is no wider than the bins), the prompt shaded by where a
 * chosen query looks (virtualised), the query's top keys, and the head's scores and ranks in the atlas.
 */
import type { BinnedPattern } from '../../api.js';
import { metricDisplay, colorScale } from '../../../atlas/metricDisplay.js';
import { api } from '../client.js';
import { topKeysChart } from '../charts/attentionMap.js';
import { binnedMap, binnedMapSvg, MAP_MARGIN } from '../charts/binnedMap.js';
import { colorFn, legend } from '../charts/colors.js';
import { exportButtons } from '../charts/export.js';
import { fill, formatNumber, h, showToken } from '../dom.js';
import { go, headName, href, type HeadRef } from '../route.js';
import { metricAt, metricNames, rankOf, state } from '../state.js';
import { busy, errorBox } from './common.js';
import { tokenPanel, type TokenPanel } from './tokenPanel.js';

export const ATTENTION_SCALE = colorScale(metricDisplay('attention'), []);
export const attentionColor = colorFn(ATTENTION_SCALE, true);
export const BIN_CHOICES = [64, 128, 256];

export function validHead(h?: HeadRef): HeadRef {
  const { model } = state;
  return h && h.layer >= 0 && h.layer < model.layers && h.head >= 0 && h.head < model.heads ? h : { layer: 0, head: 0 };
}

export function headSelects(head: HeadRef, onChange: (h: HeadRef) => void, prefix = ''): HTMLElement[] {
  const { model } = state;
  const layerSel = h('select', { 'data-testid': `${prefix}layer-select`, 'aria-label': 'layer' }, [...Array(model.layers).keys()].map((l) => h('option', { value: l, selected: l === head.layer }, `layer ${l}`)));
  const headSel = h('select', { 'data-testid': `${prefix}head-select`, 'aria-label': 'head' }, [...Array(model.heads).keys()].map((i) => h('option', { value: i, selected: i === head.head }, `head ${i}`)));
  const change = () => onChange({ layer: Number(layerSel.value), head: Number(headSel.value) });
  layerSel.addEventListener('change', change);
  headSel.addEventListener('change', change);
  return [layerSel, headSel];
}

export function binsSelect(): HTMLSelectElement {
  return h('select', { 'data-testid': 'bins-select', 'aria-label': 'bins per axis', title: 'most cells per axis: longer prompts are aggregated into this many bins' }, BIN_CHOICES.map((b) => h('option', { value: b, selected: b === state.bins }, `≤ ${b} bins`)));
}

export function headView(root: HTMLElement, routeHead?: HeadRef): () => void {
  const { model } = state;
  const head = validHead(routeHead);
  const prompt = h('textarea', { id: 'head-prompt', rows: 3, 'data-testid': 'head-prompt', spellcheck: 'false' });
  prompt.value = state.headPrompt;
  const bins = binsSelect();
  const runBtn = h('button', { class: 'primary', 'data-testid': 'show-pattern' }, 'Show pattern');
  const resetBtn = h('button', { 'data-testid': 'zoom-reset', disabled: true, title: 'back to the whole prompt' }, 'Whole prompt');
  const zoomNote = h('span', { class: 'muted small', 'data-testid': 'zoom-note' });
  const message = h('div', {});
  const hover = h('div', { class: 'hover-readout small', 'data-testid': 'map-readout' }, 'Drag a rectangle to zoom in; click a row to pick its query.');
  const mapBox = h('div', { class: 'map-box', 'data-testid': 'pattern' });
  const inspector = h('div', { class: 'inspector' });
  const scores = h('div', { class: 'scores' });
  root.append(
    h(
      'section',
      { class: 'view head-view' },
      h(
        'div',
        { class: 'controls' },
        h('h2', {}, `Head ${headName(head)}`),
        ...headSelects(head, (hd) => go({ view: 'head', head: hd })),
        h('label', { class: 'field grow', for: 'head-prompt' }, `Prompt (up to ${model.contextTokens} tokens)`, prompt),
        bins,
        runBtn,
        h('a', { href: href({ view: 'compare', head }), class: 'small' }, 'compare…'),
      ),
      message,
      h('div', { class: 'head-body' }, h('div', { class: 'map-col' }, h('div', { class: 'row map-tools' }, resetBtn, zoomNote, h('span', { class: 'grow' }), exportButtons(`pattern-L${head.layer}H${head.head}`, () => (pattern ? binnedMapSvg({ pattern, color: attentionColor, side: 600, title: `${headName(head)} attention` }) : null), () => mapBox.querySelector('canvas'))), mapBox, hover), h('div', { class: 'head-side' }, scores, inspector)),
    ),
  );
  drawScores(scores, head);

  let pattern: BinnedPattern | null = null;
  let panel: TokenPanel | null = null;
  let window: { queries: [number, number]; keys: [number, number] } | null = null;
  const draw = () => {
    if (!pattern) return;
    const side = Math.min(mapBox.clientWidth - MAP_MARGIN.left - MAP_MARGIN.right, mapBox.clientHeight - MAP_MARGIN.top - MAP_MARGIN.bottom);
    const t0 = performance.now();
    fill(mapBox, binnedMap({ pattern, side, color: attentionColor, query: pattern.query, onPickQuery: pick, onZoom: zoom, onHover: (t) => fill(hover, t ?? 'Drag a rectangle to zoom in; click a row to pick its query.') }));
    mapBox.dataset.renderMs = (performance.now() - t0).toFixed(1);
  };
  const drawSide = () => {
    if (!pattern) return;
    if (!panel) panel = tokenPanel(pattern.tokens, pick);
    drawInspector(inspector, pattern, panel);
  };
  const request = async (query?: number) => {
    const p = await api.patternBins({ prompt: prompt.value, layer: head.layer, head: head.head, bins: Number(bins.value), queries: window?.queries, keys: window?.keys, query });
    const n = p.tokens.length;
    const rows = p.queryEdges.length - 1;
    const cols = p.keyEdges.length - 1;
    const exact = rows === p.queryEdges[rows] - p.queryEdges[0] && cols === p.keyEdges[cols] - p.keyEdges[0];
    fill(zoomNote, window ? `queries ${window.queries[0]}–${window.queries[1] - 1} × keys ${window.keys[0]}–${window.keys[1] - 1}` : `${n} tokens`, exact ? ' · every token shown' : ` · ${rows} × ${cols} bins`);
    resetBtn.disabled = !window;
    return p;
  };
  const pick = (q: number) =>
    void (async () => {
      try {
        pattern = await request(q);
        draw();
        drawSide();
        panel?.reveal(q);
      } catch (e) {
        fill(message, errorBox(e));
      }
    })();
  const zoom = (queries: [number, number], keys: [number, number]) => {
    window = { queries, keys };
    void load();
  };
  const load = () =>
    busy(runBtn, 'Running…', async () => {
      state.headPrompt = prompt.value;
      state.bins = Number(bins.value);
      fill(message);
      try {
        const fresh = !pattern || pattern.tokens.length === 0;
        pattern = await request(pattern && !fresh ? pattern.query : undefined);
        if (fresh) panel = null;
        draw();
        drawSide();
      } catch (e) {
        fill(message, errorBox(e));
      }
    });
  runBtn.addEventListener('click', () => {
    window = null;
    pattern = null;
    panel = null;
    void load();
  });
  resetBtn.addEventListener('click', () => {
    window = null;
    void load();
  });
  prompt.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) runBtn.click();
  });
  const observer = new ResizeObserver(() => draw());
  observer.observe(mapBox);
  if (state.headPrompt.trim()) void load();
  return () => observer.disconnect();
}

function drawScores(box: HTMLElement, head: HeadRef): void {
  const { atlas, model } = state;
  if (!atlas) return fill(box, h('p', { class: 'muted' }, 'No atlas loaded, so no scores for this head.'));
  const rows = metricNames(atlas).map((m) => {
    const v = metricAt(atlas, m, head.layer, head.head, model);
    const r = rankOf(atlas, m, v);
    const d = metricDisplay(m);
    return h('tr', {}, h('td', {}, h('a', { href: `#/atlas/${encodeURIComponent(m)}`, title: `${m}${d.unit ? ` — ${d.unit}` : ''}` }, d.title)), h('td', { class: 'mono num' }, formatNumber(v, 4)), h('td', { class: 'muted num' }, r ? `#${r.rank} of ${r.of}` : ''));
  });
  fill(box, h('h3', {}, 'Scores in the atlas'), h('table', { class: 'score-table', 'data-testid': 'head-scores' }, h('tbody', {}, rows)));
}

function drawInspector(box: HTMLElement, p: BinnedPattern, panel: TokenPanel): void {
  const query = p.query;
  panel.update(p.row, query);
  fill(
    box,
    h('h3', {}, 'Where query ', h('span', { class: 'tok query inline' }, `${query}: ${showToken(p.tokens[query])}`), ' looks'),
    h('p', { class: 'muted small' }, `Click a token (or a heatmap row) to make it the query; shading = its attention weight. ${p.tokens.length} tokens.`),
    panel.element,
    h('h3', {}, 'Top attended tokens'),
    topKeysChart(p.tokens, p.row, query),
    legend(ATTENTION_SCALE, 'attention share', 300, true),
  );
  panel.reveal(query);
}
