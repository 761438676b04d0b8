/**
 * Model view: every head of every layer at once for one prompt — a layers × heads grid of small
 * attention thumbnails (`POST /api/patterns`, each binned to at most 24 × 24 cells on the fixed [0, 1]
 * scale), the view people know from BertViz and CircuitsVis. Previous-token heads show as a diagonal,
 * sink heads as a first column, induction heads as an off-diagonal stripe. Click a thumbnail to open
 * the head; hover for its name and atlas score.
 */
import type { ModelPatterns } from '../../api.js';
import { formatShort, metricDisplay } from '../../../atlas/metricDisplay.js';
import { api } from '../client.js';
import { binnedMap } from '../charts/binnedMap.js';
import { exportButtons } from '../charts/export.js';
import { fill, h } from '../dom.js';
import { go, headName } from '../route.js';
import { metricAt, state } from '../state.js';
import { busy, errorBox } from './common.js';
import { attentionColor } from './head.js';

const THUMB_BINS = 24;

export function modelView(root: HTMLElement): () => void {
  const { model } = state;
  const prompt = h('textarea', { id: 'model-prompt', rows: 2, 'data-testid': 'model-prompt', spellcheck: 'false' });
  prompt.value = state.headPrompt;
  const runBtn = h('button', { class: 'primary', 'data-testid': 'show-model' }, 'Show every head');
  const message = h('div', {});
  const hover = h('div', { class: 'hover-readout small', 'data-testid': 'thumb-readout' }, 'Hover a head for its name; click to open it.');
  const gridBox = h('div', { class: 'thumb-box', 'data-testid': 'model-grid' }, h('p', { class: 'muted' }, 'Press “Show every head” to draw all heads on this prompt.'));
  let data: ModelPatterns | null = null;
  root.append(
    h(
      'section',
      { class: 'view model-view' },
      h('div', { class: 'controls' }, h('h2', {}, `Every head — ${model.layers} layers × ${model.heads} heads`), h('label', { class: 'field grow', for: 'model-prompt' }, `Prompt (up to ${model.contextTokens} tokens)`, prompt), runBtn, exportButtons('model-view', () => (data ? thumbsSvg(data) : null))),
      message,
      hover,
      gridBox,
    ),
  );
  const draw = () => {
    if (!data) return;
    const labelW = 34;
    const gap = 3;
    const avail = Math.min((gridBox.clientWidth - labelW) / model.heads, (gridBox.clientHeight - 18) / model.layers) - gap;
    const side = Math.max(10, Math.floor(Math.min(140, avail)));
    const metric = state.atlas ? (state.metric ?? 'retrieval') : null;
    const grid = h('div', { class: 'thumb-grid' });
    grid.style.gridTemplateColumns = `${labelW}px repeat(${model.heads}, ${side}px)`;
    grid.style.gap = `${gap}px`;
    grid.append(h('span', {}), ...[...Array(model.heads).keys()].map((hd) => h('span', { class: 'thumb-col muted small' }, model.heads > 16 && hd % 4 ? '' : `H${hd}`)));
    data.cells.forEach((row, layer) => {
      grid.append(h('span', { class: 'thumb-row muted small' }, model.layers > 16 && layer % 2 ? '' : `L${layer}`));
      row.forEach((cells, head) => {
        const map = binnedMap({ pattern: { cells, queryEdges: data!.edges, keyEdges: data!.edges, tokens: data!.tokens }, side, color: attentionColor, thumbnail: true });
        map.dataset.layer = String(layer);
        map.dataset.head = String(head);
        map.dataset.testid = 'thumb';
        map.setAttribute('data-testid', 'thumb');
        map.title = headName({ layer, head });
        map.addEventListener('click', () => go({ view: 'head', head: { layer, head } }));
        map.addEventListener('pointerenter', () => {
          const v = metric && state.atlas ? metricAt(state.atlas, metric, layer, head, model) : null;
          fill(hover, h('strong', {}, headName({ layer, head })), metric ? ` · ${metricDisplay(metric).title} ${formatShort(v)}` : '', ' — click to open');
        });
        grid.append(map);
      });
    });
    fill(gridBox, grid);
  };
  const load = () =>
    busy(runBtn, 'Running…', async () => {
      state.headPrompt = prompt.value;
      fill(message);
      try {
        data = await api.patterns({ prompt: prompt.value, bins: THUMB_BINS });
        draw();
      } catch (e) {
        fill(message, errorBox(e));
      }
    });
  runBtn.addEventListener('click', load);
  const observer = new ResizeObserver(() => draw());
  observer.observe(gridBox);
  if (state.headPrompt.trim()) void load();
  return () => observer.disconnect();
}

/** All thumbnails as one SVG (for export). */
function thumbsSvg(d: ModelPatterns): string {
  const side = 60;
  const gap = 4;
  const L = d.cells.length;
  const H = d.cells[0].length;
  const bins = d.edges.length - 1;
  const c = side / bins;
  const parts: string[] = [];
  d.cells.forEach((row, l) => row.forEach((cells, hd) => {
    const ox = 30 + hd * (side + gap);
    const oy = 20 + l * (side + gap);
    parts.push(`<rect x="${ox}" y="${oy}" width="${side}" height="${side}" fill="#fafafa" stroke="#ddd"/>`);
    cells.forEach((r, i) => r.forEach((v, j) => v !== null && parts.push(`<rect x="${(ox + j * c).toFixed(1)}" y="${(oy + i * c).toFixed(1)}" width="${c.toFixed(2)}" height="${c.toFixed(2)}" fill="${attentionColor(v)}"/>`)));
    if (l === 0) parts.push(`<text x="${ox + side / 2}" y="14" text-anchor="middle">H${hd}</text>`);
  }));
  for (let l = 0; l < L; l++) parts.push(`<text x="2" y="${20 + l * (side + gap) + side / 2}">L${l}</text>`);
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${30 + H * (side + gap)}" height="${20 + L * (side + gap)}" font-family="system-ui, sans-serif" font-size="10" style="background:white">${parts.join('')}</svg>`;
}
