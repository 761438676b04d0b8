/**
 * Playground: a prompt, a set of heads picked on a small atlas grid (or typed as "5:3, 5:1"), and what
 * to do to them — ablate, scale their output, or steer their attention to a text span (PASTA). Run
 * generates with and without the intervention and shows both answers and how the next-token
 * probabilities moved. The spec sent to the server is shown and can be edited as JSON.
 */
import type { GenerateResponse } from '../../api.js';
import { api } from '../client.js';
import { headGrid } from '../charts/headGrid.js';
import { nextTokenChart } from '../charts/nextToken.js';
import { fill, h } from '../dom.js';
import type { HeadRef } from '../route.js';
import { isKvMetric, state } from '../state.js';
import { busy, errorBox } from './common.js';
import { parseHeadList } from '../../../interventions/spec.js';

type Op = 'ablate' | 'scale' | 'pasta';

export function playgroundView(root: HTMLElement): () => void {
  const { model } = state;
  const prompt = h('textarea', { id: 'play-prompt', 'data-testid': 'play-prompt', spellcheck: 'false' });
  prompt.value = state.playPrompt;
  const maxNew = h('input', { id: 'max-new', type: 'number', min: 1, max: model.limits.maxNewTokens, value: 12 });
  const headsInput = h('input', { id: 'heads-input', 'data-testid': 'heads-input', placeholder: 'e.g. 5:3, 5:1', spellcheck: 'false' });
  const opSel = h('select', { id: 'op-select', 'data-testid': 'op-select' }, h('option', { value: 'ablate' }, 'ablate (zero the head output)'), h('option', { value: 'scale' }, 'scale the head output'), h('option', { value: 'pasta' }, 'steer attention to a text (PASTA)'));
  const factor = h('input', { id: 'scale-factor', type: 'number', step: 0.1, value: 2 });
  const pastaText = h('input', { id: 'pasta-text', placeholder: 'text in the prompt to attend to' });
  const pastaAlpha = h('input', { id: 'pasta-alpha', type: 'number', step: 0.01, min: 0.0001, max: 1, value: 0.01 });
  const opParams = h('div', { class: 'op-params' });
  const specBox = h('textarea', { id: 'spec-json', rows: 6, spellcheck: 'false', 'data-testid': 'spec-json' });
  const specNote = h('div', { class: 'muted small' });
  const runBtn = h('button', { class: 'primary', 'data-testid': 'run' }, 'Generate');
  const gridBox = h('div', { class: 'mini-grid', 'data-testid': 'play-grid' });
  const results = h('div', { class: 'results', 'data-testid': 'results' }, h('p', { class: 'muted' }, 'Pick heads, choose what to do to them, and press Generate: the answer with and without the intervention appear here.'));
  let customSpec = false;

  const examples = h(
    'div',
    { class: 'examples' },
    'Examples: ',
    state.examples.map((ex) =>
      h('button', {
        class: 'link',
        'data-testid': `example-${ex.name.replace(/\s+/g, '-')}`,
        onclick: () => {
          prompt.value = ex.prompt;
          state.playPrompt = ex.prompt;
          const heads = headsOfSpec(ex.interventions);
          if (heads.length) {
            state.playHeads = heads;
            opSel.value = 'ablate';
          }
          customSpec = false;
          sync();
        },
      }, ex.name + (ex.interventions ? ' (+ ablate its top retrieval heads)' : '')),
    ),
  );

  root.append(
    h(
      'section',
      { class: 'view play-view' },
      h(
        'div',
        { class: 'play-left' },
        h('label', { class: 'field', for: 'play-prompt' }, 'Prompt'),
        prompt,
        examples,
        h('div', { class: 'row' }, h('label', { for: 'max-new' }, 'new tokens '), maxNew),
        h('h3', {}, 'Intervention'),
        h('div', { class: 'row' }, h('label', { for: 'heads-input' }, 'heads '), headsInput),
        h('p', { class: 'muted small' }, 'Click heads in the grid to add or remove them' + (state.atlas && state.metric ? ` (coloured by ${state.metric}).` : '.')),
        gridBox,
        h('div', { class: 'row' }, h('label', { for: 'op-select' }, 'do '), opSel),
        opParams,
        h('details', {}, h('summary', {}, 'Spec sent to the server (JSON, editable)'), specBox, specNote),
        runBtn,
      ),
      results,
    ),
  );

  const spec = (): unknown => {
    if (customSpec) {
      try {
        return JSON.parse(specBox.value);
      } catch (e) {
        throw new Error(`the spec is not valid JSON: ${(e as Error).message}`);
      }
    }
    if (state.playHeads.length === 0) return null;
    const heads = state.playHeads.map((x) => `${x.layer}:${x.head}`);
    const op = opSel.value as Op;
    const params = op === 'ablate' ? { mode: 'zero' } : op === 'scale' ? { factor: Number(factor.value) } : { alpha: Number(pastaAlpha.value), spans: [{ text: pastaText.value }] };
    return { version: 1, interventions: [{ op, heads, params }] };
  };

  const drawGrid = () => {
    const metric = state.metric;
    const atlas = state.atlas;
    const usable = atlas && metric && !isKvMetric(atlas, metric, model);
    const values = usable ? atlas.metrics[metric] : Array.from({ length: model.layers }, () => new Array<number | null>(model.heads).fill(null));
    const { element } = headGrid({
      values,
      metric: usable ? metric : 'no atlas',
      width: gridBox.clientWidth || 380,
      height: Math.min(260, Math.max(120, (gridBox.clientWidth || 380) * (model.layers / model.heads))),
      maxCell: 28,
      outlined: state.playHeads,
      onClick: (c) => {
        const i = state.playHeads.findIndex((x) => x.layer === c.layer && x.head === c.head);
        state.playHeads = i >= 0 ? state.playHeads.filter((_, j) => j !== i) : [...state.playHeads, { layer: c.layer, head: c.head }];
        customSpec = false;
        sync();
      },
    });
    fill(gridBox, element);
  };

  const sync = () => {
    headsInput.value = state.playHeads.map((x) => `${x.layer}:${x.head}`).join(', ');
    const op = opSel.value as Op;
    fill(
      opParams,
      op === 'scale' ? h('div', { class: 'row' }, h('label', { for: 'scale-factor' }, 'factor '), factor, h('span', { class: 'muted small' }, ' (0 = ablate, 1 = unchanged)')) : null,
      op === 'pasta' ? [h('div', { class: 'row' }, h('label', { for: 'pasta-text' }, 'attend to '), pastaText), h('div', { class: 'row' }, h('label', { for: 'pasta-alpha' }, 'α '), pastaAlpha, h('span', { class: 'muted small' }, ' (weight kept elsewhere)'))] : null,
    );
    if (!customSpec) {
      try {
        const s = spec();
        specBox.value = s ? JSON.stringify(s, null, 1) : '';
        fill(specNote, s ? '' : 'No heads picked: only the plain run.');
      } catch {
        // only an edited spec can fail to parse
      }
    }
    drawGrid();
  };

  headsInput.addEventListener('change', () => {
    fill(headsError);
    const parsed = parseHeads(headsInput.value);
    if (typeof parsed === 'string') {
      fill(headsError, errorBox(new Error(parsed)));
      return;
    }
    state.playHeads = parsed;
    customSpec = false;
    sync();
  });
  for (const el of [opSel, factor, pastaText, pastaAlpha]) {
    el.addEventListener('change', () => {
      customSpec = false;
      sync();
    });
  }
  specBox.addEventListener('input', () => {
    customSpec = true;
    fill(specNote, 'Edited by hand: the controls above no longer apply until you change them.');
  });
  prompt.addEventListener('input', () => (state.playPrompt = prompt.value));

  // Checked as it is typed, so the message is on screen before Generate is pressed (and no layout
  // shift on blur swallows that click).
  const headsError = h('div', { 'data-testid': 'heads-error' });
  headsInput.parentElement!.insertAdjacentElement('afterend', headsError);
  headsInput.addEventListener('input', () => {
    const parsed = parseHeads(headsInput.value);
    fill(headsError, typeof parsed === 'string' ? errorBox(new Error(parsed)) : null);
  });
  runBtn.addEventListener('click', () =>
    busy(runBtn, 'Generating…', async () => {
      fill(headsError);
      if (!customSpec) {
        // The field is read again as the CLI reads --ablate: a bad or empty list is an error, never a silent plain run.
        const parsed = parseHeads(headsInput.value);
        if (typeof parsed === 'string') {
          fill(headsError, errorBox(new Error(parsed)));
          fill(results, h('p', { class: 'muted' }, 'Nothing was run: fix the heads first.'));
          return;
        }
        state.playHeads = parsed;
        sync();
      }
      try {
        const r = await api.generate({ prompt: prompt.value, maxNewTokens: Number(maxNew.value), topK: 8, interventions: spec() });
        drawResults(results, r);
      } catch (e) {
        fill(results, errorBox(e));
      }
    }),
  );

  sync();
  const observer = new ResizeObserver(() => drawGrid());
  observer.observe(gridBox);
  return () => observer.disconnect();
}

function drawResults(box: HTMLElement, r: GenerateResponse): void {
  const changed = r.intervened !== null && r.intervened.text !== r.baseline.text;
  const card = (title: string, text: string, cls: string, testid: string) =>
    h('div', { class: `answer ${cls}` }, h('div', { class: 'answer-title' }, title), h('pre', {}, h('span', { class: 'prompt-tail' }, '…' + r.promptTail), h('span', { 'data-testid': testid }, text === '' ? '(end of text)' : text)));
  fill(
    box,
    h('h3', {}, 'Answers ', r.intervened ? h('span', { class: `badge ${changed ? 'changed' : 'same'}`, 'data-testid': 'answer-badge' }, changed ? 'answer changed' : 'same answer') : null),
    h('div', { class: 'answers' }, card('without intervention', r.baseline.text, 'before', 'answer-before'), r.intervened ? card('with ' + r.interventions.map((s) => s.replace(/^\[\d+\]\s*/, '')).join('; '), r.intervened.text, 'after', 'answer-after') : null),
    h('p', { class: 'muted small' }, `Greedy decoding of ${r.baseline.tokens.length} new tokens after ${r.promptTokens} prompt tokens (grey: the end of the prompt).`),
    h('h3', {}, 'Next-token probabilities right after the prompt'),
    nextTokenChart(r.nextTokens, Math.min(640, box.clientWidth - 24)),
  );
}

/** "5:3, 5:1" → heads, checked exactly as the CLI checks `--ablate` (`parseHeadList`); the error message on failure. */
function parseHeads(text: string): HeadRef[] | string {
  const { model } = state;
  try {
    return parseHeadList(text, { numLayers: model.layers, numHeads: model.heads, headDim: model.headDim }, 'heads').map((x) => ({ layer: x.layer, head: x.head }));
  } catch (e) {
    return (e as Error).message;
  }
}

/** Heads of an example's suggested spec ({interventions: [{heads: ["5:3", ...]}]}). */
function headsOfSpec(spec: unknown): HeadRef[] {
  const list = (spec as { interventions?: { heads?: unknown }[] } | undefined)?.interventions ?? [];
  const heads = list.flatMap((iv) => (Array.isArray(iv.heads) ? iv.heads : [])).filter((x): x is string => typeof x === 'string');
  const parsed = parseHeads(heads.join(','));
  return typeof parsed === 'string' ? [] : parsed;
}

