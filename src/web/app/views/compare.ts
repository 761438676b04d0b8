/**
 * Compare view: one head on two prompts side by side — or on one prompt without and with an
 * intervention (ablate or scale other heads, run on the same pass as the capture) — drawn on the same
 * fixed [0, 1] colour scale and the same bins, with the keys whose weight for the last query moved most
 * when both sides have the same tokens. Heads are checked as the CLI checks them (`parseHeadList`).
 */
import type { BinnedPattern } from '../../api.js';
import { formatShort } from '../../../atlas/metricDisplay.js';
import { parseHeadList } from '../../../interventions/spec.js';
import { api } from '../client.js';
import { binnedMap, binnedMapSvg, MAP_MARGIN } from '../charts/binnedMap.js';
import { legend } from '../charts/colors.js';
import { exportButtons } from '../charts/export.js';
import { fill, h, showToken } from '../dom.js';
import { go, headName, type HeadRef } from '../route.js';
import { state } from '../state.js';
import { busy, errorBox } from './common.js';
import { ATTENTION_SCALE, attentionColor, binsSelect, headSelects, validHead } from './head.js';

export function compareView(root: HTMLElement, routeHead?: HeadRef): () => void {
  const { model } = state;
  const head = validHead(routeHead);
  const promptA = h('textarea', { rows: 3, 'data-testid': 'compare-a', spellcheck: 'false', 'aria-label': 'prompt A' });
  promptA.value = state.headPrompt;
  const promptB = h('textarea', { rows: 3, 'data-testid': 'compare-b', spellcheck: 'false', 'aria-label': 'prompt B', placeholder: 'empty: the same prompt as A' });
  promptB.value = state.comparePrompt;
  const heads = h('input', { 'data-testid': 'compare-heads', placeholder: 'e.g. 1:0, 1:2 (empty: no intervention)', spellcheck: 'false' });
  const op = h('select', { 'data-testid': 'compare-op' }, h('option', { value: 'ablate' }, 'ablate'), h('option', { value: 'scale' }, 'scale × 2'));
  const bins = binsSelect();
  const runBtn = h('button', { class: 'primary', 'data-testid': 'run-compare' }, 'Compare');
  const message = h('div', {});
  const sides = [h('div', { class: 'compare-side', 'data-testid': 'compare-left' }), h('div', { class: 'compare-side', 'data-testid': 'compare-right' })];
  const moved = h('div', { 'data-testid': 'compare-moved' });
  root.append(
    h(
      'section',
      { class: 'view compare-view' },
      h('div', { class: 'controls' }, h('h2', {}, `Compare ${headName(head)}`), ...headSelects(head, (hd) => go({ view: 'compare', head: hd })), bins, runBtn),
      h(
        'div',
        { class: 'compare-inputs' },
        h('label', { class: 'field' }, 'A: prompt', promptA),
        h('div', {}, h('label', { class: 'field' }, 'B: prompt (empty = same as A)', promptB), h('div', { class: 'row' }, h('label', {}, 'B: intervene on heads '), heads, op)),
      ),
      message,
      h('div', { class: 'compare-body' }, ...sides),
      h('div', { class: 'compare-foot' }, legend(ATTENTION_SCALE, 'attention share', 300, true), moved),
    ),
  );

  let results: [BinnedPattern, BinnedPattern] | null = null;
  const draw = () => {
    if (!results) return;
    const side = Math.max(120, Math.min(sides[0].clientWidth - MAP_MARGIN.left - MAP_MARGIN.right, window.innerHeight - 400, 460));
    results.forEach((p, i) => {
      const title = i === 0 ? 'A' : `B${p.interventions.length ? ' — ' + p.interventions.map((s) => s.replace(/^\[\d+\]\s*/, '')).join('; ') : ''}`;
      fill(
        sides[i],
        h('div', { class: 'row' }, h('strong', { 'data-testid': `compare-title-${i}` }, title), h('span', { class: 'muted small' }, ` ${p.tokens.length} tokens`), h('span', { class: 'grow' }), exportButtons(`compare-${i === 0 ? 'A' : 'B'}-L${head.layer}H${head.head}`, () => binnedMapSvg({ pattern: p, color: attentionColor, side: 500, title: `${headName(head)} ${title}` }), () => sides[i].querySelector('canvas'))),
        binnedMap({ pattern: p, side, color: attentionColor, query: p.query }),
      );
    });
    const [a, b] = results;
    if (a.tokens.length === b.tokens.length && a.tokens.every((t, i) => t === b.tokens[i])) {
      const diffs = a.row.map((w, k) => ({ k, before: w, after: b.row[k], d: b.row[k] - w })).sort((x, y) => Math.abs(y.d) - Math.abs(x.d)).slice(0, 6);
      fill(moved, h('strong', {}, `Last query (${a.query}: ${showToken(a.tokens[a.query])}) — largest changes A → B: `), diffs.map((x) => h('span', { class: 'mono small moved' }, `${x.k} ${showToken(a.tokens[x.k])} ${formatShort(x.before)}→${formatShort(x.after)}`)));
    } else fill(moved, h('span', { class: 'muted small' }, 'The prompts differ, so the patterns are compared by eye only.'));
  };
  runBtn.addEventListener('click', () =>
    busy(runBtn, 'Running…', async () => {
      fill(message);
      state.headPrompt = promptA.value;
      state.comparePrompt = promptB.value;
      state.bins = Number(bins.value);
      let interventions: unknown = null;
      if (heads.value.trim() !== '') {
        try {
          const list = parseHeadList(heads.value, { numLayers: model.layers, numHeads: model.heads, headDim: model.headDim }, 'heads').map((x) => `${x.layer}:${x.head}`);
          interventions = { version: 1, interventions: [{ op: op.value, heads: list, params: op.value === 'scale' ? { factor: 2 } : { mode: 'zero' } }] };
        } catch (e) {
          fill(message, errorBox(e));
          return;
        }
      }
      if (promptB.value.trim() === '' && interventions === null) {
        fill(message, errorBox(new Error('B is the same as A: give B another prompt, or heads to intervene on')));
        return;
      }
      try {
        const bPrompt = promptB.value.trim() === '' ? promptA.value : promptB.value;
        const a = await api.patternBins({ prompt: promptA.value, layer: head.layer, head: head.head, bins: Number(bins.value) });
        const b = await api.patternBins({ prompt: bPrompt, layer: head.layer, head: head.head, bins: Number(bins.value), interventions });
        results = [a, b];
        draw();
      } catch (e) {
        fill(message, errorBox(e));
      }
    }),
  );
  const observer = new ResizeObserver(() => draw());
  observer.observe(sides[0]);
  return () => observer.disconnect();
}
