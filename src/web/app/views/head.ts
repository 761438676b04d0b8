/**
 * Head view: one head's attention on a prompt — the token × token heatmap, the prompt with every
 * token shaded by how much the chosen query attends to it, the query's top keys, and the head's
 * scores in the atlas (value and rank per metric).
 */
import type { PatternResponse } from '../../api.js';
import { api } from '../client.js';
import { attentionLegend, attentionMap, topKeysChart } from '../charts/attentionMap.js';
import { fill, formatNumber, h, showToken } from '../dom.js';
import { go, headName, type HeadRef } from '../route.js';
import { metricAt, metricNames, rankOf, state } from '../state.js';
import { busy, errorBox } from './common.js';

export function headView(root: HTMLElement, routeHead?: HeadRef): () => void {
  const { model } = state;
  const head: HeadRef = routeHead && routeHead.layer >= 0 && routeHead.layer < model.layers && routeHead.head >= 0 && routeHead.head < model.heads ? routeHead : { layer: 0, head: 0 };
  const layerSel = h('select', { id: 'layer-select', 'data-testid': 'layer-select' }, [...Array(model.layers).keys()].map((l) => h('option', { value: l, selected: l === head.layer }, `layer ${l}`)));
  const headSel = h('select', { id: 'head-select', 'data-testid': 'head-select' }, [...Array(model.heads).keys()].map((i) => h('option', { value: i, selected: i === head.head }, `head ${i}`)));
  const nav = () => go({ view: 'head', head: { layer: Number(layerSel.value), head: Number(headSel.value) } });
  layerSel.addEventListener('change', nav);
  headSel.addEventListener('change', nav);
  const prompt = h('textarea', { id: 'head-prompt', rows: 3, 'data-testid': 'head-prompt', spellcheck: 'false' });
  prompt.value = state.headPrompt;
  const runBtn = h('button', { class: 'primary', 'data-testid': 'show-pattern' }, 'Show pattern');
  const message = h('div', {});

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
        layerSel,
        headSel,
        h('label', { class: 'field grow', for: 'head-prompt' }, 'Prompt (up to ', String(model.limits.maxPatternTokens), ' tokens)', prompt),
        runBtn,
      ),
      message,
      h('div', { class: 'head-body' }, mapBox, h('div', { class: 'head-side' }, scores, inspector)),
    ),
  );
  drawScores(scores, head);

  let pattern: PatternResponse | null = null;
  let query = 0;
  const draw = () => {
    if (!pattern) return;
    const size = Math.min(mapBox.clientWidth, mapBox.clientHeight);
    fill(mapBox, attentionMap({ tokens: pattern.tokens, attention: pattern.attention, query, size, onPickQuery: pick }));
    drawInspector(inspector, pattern, query, pick);
  };
  const pick = (q: number) => {
    query = q;
    draw();
  };
  const load = () =>
    busy(runBtn, 'Running…', async () => {
      state.headPrompt = prompt.value;
      fill(message);
      try {
        pattern = await api.pattern({ prompt: prompt.value, layer: head.layer, head: head.head });
        query = pattern.tokens.length - 1;
        draw();
      } catch (e) {
        fill(message, errorBox(e));
      }
    });
  runBtn.addEventListener('click', load);
  prompt.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) load();
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
    return h('tr', {}, h('td', {}, h('a', { href: `#/atlas/${encodeURIComponent(m)}` }, m)), h('td', { class: 'mono num' }, formatNumber(v, 4)), h('td', { class: 'muted num' }, r ? `#${r.rank} of ${r.of}` : ''));
  });
  fill(box, h('h3', {}, 'Scores in the atlas'), h('table', { class: 'score-table', 'data-testid': 'head-scores' }, h('tbody', {}, rows)));
}

function drawInspector(box: HTMLElement, p: PatternResponse, query: number, pick: (q: number) => void): void {
  const row = p.attention[query];
  let max = 0;
  for (let k = 0; k <= query; k++) max = Math.max(max, row[k]);
  const chips = p.tokens.map((t, k) => {
    const w = k <= query ? row[k] : null;
    const alpha = w === null || max === 0 ? 0 : Math.sqrt(w / max);
    return h(
      'span',
      {
        class: `tok${k === query ? ' query' : ''}${w === null ? ' future' : ''}`,
        style: w === null ? '' : `background: rgba(33, 102, 172, ${alpha.toFixed(3)}); color: ${alpha > 0.55 ? '#fff' : 'inherit'}`,
        title: `${k}: ${JSON.stringify(t)}${w === null ? ' (after the query)' : ` — weight ${formatNumber(w, 4)}`}`,
        onclick: () => pick(k),
      },
      showToken(t),
    );
  });
  fill(
    box,
    h('h3', {}, 'Where query ', h('span', { class: 'tok query inline' }, `${query}: ${showToken(p.tokens[query])}`), ' looks'),
    h('p', { class: 'muted small' }, 'Click a token (or a heatmap row) to make it the query; shading = its attention weight.'),
    h('div', { class: 'tokens', 'data-testid': 'query-tokens' }, chips),
    h('h3', {}, 'Top attended tokens'),
    topKeysChart(p.tokens, row, query),
    attentionLegend(p.attention),
  );
}
