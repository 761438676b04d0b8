/**
 * Atlas view: the layers × heads grid of one metric (switchable), its colour legend, the exact value
 * of the hovered head, the top heads of the metric, and a click to open a head. Sized to its box so a
 * 32 × 32 grid fits a 1280 × 800 window without scrolling. Offers to compute an atlas when the server
 * can and has none.
 */
import { h, fill, formatNumber } from '../dom.js';
import { api, waitForJob } from '../client.js';
import { headGrid, metricLegend, type HeadCell } from '../charts/headGrid.js';
import { go, headName } from '../route.js';
import { isKvMetric, metricNames, state } from '../state.js';
import { errorBox, jobProgress } from './common.js';
import { exportButtons, mainSvg } from '../charts/export.js';
import { metricDisplay } from '../../../atlas/metricDisplay.js';

export function atlasView(root: HTMLElement, metricFromRoute?: string): () => void {
  const { model } = state;
  const names = metricNames(state.atlas);
  if (metricFromRoute && names.includes(metricFromRoute)) state.metric = metricFromRoute;
  if (!state.metric || !names.includes(state.metric)) state.metric = names[0] ?? null;

  const gridBox = h('div', { class: 'grid-box', 'data-testid': 'atlas-grid' });
  const hover = h('div', { class: 'hover-readout', 'data-testid': 'hover-readout' }, 'Hover a cell for its exact value; click to open the head.');
  const side = h('aside', { class: 'side' });
  const title = h('h2', {});
  const hint = h('p', { class: 'muted small hint' });
  root.append(h('section', { class: 'view atlas-view' }, h('div', { class: 'grid-panel' }, h('div', { class: 'title-row' }, title, hint), gridBox), side));

  const metric = state.metric;
  const atlas = state.atlas;
  const kv = atlas && metric ? isKvMetric(atlas, metric, model) : false;
  const values: (number | null)[][] =
    atlas && metric ? atlas.metrics[metric] : Array.from({ length: model.layers }, () => new Array<number | null>(model.heads).fill(null));
  const info = atlas && metric ? atlas.metricInfo?.[metric] : undefined;
  const disp = metric ? metricDisplay(metric) : null;
  fill(hint, kv ? `Each cell is one KV head, shared by ${model.heads / model.kvHeads} query heads. Hover for the exact value; click to open its first query head.` : 'Each cell is one attention head. Hover for the exact value; click to open the head.');
  fill(title, atlas && metric ? `${disp!.title} — ${model.layers} layers × ${kv ? `${model.kvHeads} KV heads` : `${model.heads} heads`}` : `${model.name}: ${model.layers} layers × ${model.heads} heads (no atlas yet)`);
  if (metric) title.title = `code name: ${metric}`;

  const onHover = (c: HeadCell | null) => {
    if (!c) return fill(hover, 'Hover a cell for its exact value; click to open the head.');
    fill(hover, h('strong', {}, kv ? `L${c.layer} KV${c.head}` : headName(c)), ` ${disp?.title ?? ''} = `, h('span', { class: 'mono' }, formatNumber(c.value, 4)), disp?.unit ? h('span', { class: 'muted' }, ` ${disp.unit}`) : null, h('span', { class: 'muted small', title: 'code name' }, ` (${metric})`));
  };
  const onClick = (c: HeadCell) => go({ view: 'head', head: { layer: c.layer, head: kv ? c.head * (model.heads / model.kvHeads) : c.head } });

  const draw = () => {
    const { element } = headGrid({
      values,
      metric: metric ?? 'no atlas',
      width: gridBox.clientWidth,
      height: gridBox.clientHeight,
      columnLabel: kv ? 'KV head' : 'head',
      maxCell: 100,
      onHover,
      onClick,
    });
    fill(gridBox, element);
  };
  draw();
  const observer = new ResizeObserver(() => draw());
  observer.observe(gridBox);

  // Side panel: metric switcher, legend, readout, top heads, atlas job.
  if (atlas && metric) {
    const select = h(
      'select',
      { id: 'metric-select', 'data-testid': 'metric-select', onchange: (e: Event) => go({ view: 'atlas', metric: (e.target as HTMLSelectElement).value }) },
      names.map((n) => h('option', { value: n, selected: n === metric, title: `code name: ${n}` }, `${metricDisplay(n).title}`)),
    );
    const top = values
      .flatMap((row, layer) => row.map((value, head) => ({ layer, head, value })))
      .filter((c): c is { layer: number; head: number; value: number } => c.value !== null && Number.isFinite(c.value))
      .sort((a, b) => b.value - a.value)
      .slice(0, 8);
    side.append(
      h('label', { class: 'field', for: 'metric-select' }, 'Metric'),
      select,
      h('p', { class: 'muted small', title: 'code name in the atlas JSON' }, h('code', {}, metric), disp!.unit ? ` · unit: ${disp!.unit}` : ''),
      h('p', { class: 'muted' }, info?.description ?? ''),
      h('div', { class: 'legend' }, metricLegend(values, metric, 260)),
      h('div', { class: 'row' }, h('span', { class: 'muted small grow' }, 'Export the grid:'), exportButtons(`atlas-${metric}`, () => mainSvg(gridBox))),
      hover,
      h('h3', {}, `Top heads by ${disp!.title.toLowerCase()}`),
      h(
        'ol',
        { class: 'top-heads' },
        top.map((c) =>
          h('li', {}, h('a', { href: kv ? `#/head/${c.layer}/${c.head * (model.heads / model.kvHeads)}` : `#/head/${c.layer}/${c.head}` }, kv ? `L${c.layer} KV${c.head}` : headName(c)), ' ', h('span', { class: 'mono muted' }, formatNumber(c.value, 4))),
        ),
      ),
      atlasMeta(),
    );
  } else {
    side.append(
      h('p', {}, 'No atlas is loaded. Start the server with ', h('code', {}, 'headwise serve --atlas atlas.json'), model.jobs.atlas ? ' or compute one here.' : '.'),
      h('p', { class: 'muted' }, 'Every head can still be opened: click a cell to see its attention pattern.'),
      hover,
    );
  }
  if (model.jobs.atlas) side.append(atlasJob());
  return () => observer.disconnect();
}

function atlasMeta(): HTMLElement {
  const a = state.atlas!;
  const rows: [string, string][] = [
    ['model', a.model.name],
    ['source', a.source === 'file' ? 'file given at startup' : 'computed in this session'],
  ];
  if (a.createdAt) rows.push(['created', a.createdAt.replace('T', ' ').slice(0, 16)]);
  for (const [k, v] of Object.entries(a.settings ?? {}).slice(0, 6)) if (typeof v !== 'object') rows.push([k, String(v)]);
  return h('details', { class: 'meta' }, h('summary', {}, 'About this atlas'), h('dl', {}, rows.flatMap(([k, v]) => [h('dt', {}, k), h('dd', {}, v)])));
}

function atlasJob(): HTMLElement {
  const box = h('div', { class: 'job' });
  const status = h('div', {});
  const button = h('button', {
    onclick: async () => {
      button.disabled = true;
      try {
        const done = await waitForJob(await api.startJob('atlas', true), (s) => fill(status, jobProgress(s)));
        if (done.state === 'done') {
          // The new atlas changes the example prompts too (their suggested heads come from it).
          [state.atlas, state.examples, state.status] = await Promise.all([api.atlas(), api.examples(), api.status()]);
          go({ view: 'atlas' });
          window.dispatchEvent(new HashChangeEvent('hashchange'));
        }
      } catch (e) {
        fill(status, errorBox(e));
      } finally {
        button.disabled = false;
      }
    },
  }, state.atlas ? 'Recompute atlas (quick)' : 'Compute atlas (quick)');
  box.append(button, status);
  return box;
}
