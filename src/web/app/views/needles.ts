/**
 * Needles & KV view: needle accuracy over context length × depth, and accuracy against the KV
 * MiB each cache policy keeps, every accuracy with its n and 95% Wilson interval. Shows what the
 * server holds (asked for only when `/api/status` says there is something, so nothing 404s) and offers
 * the sweep as a job, quick (seconds) or full (every context length the model takes, more prompts).
 */
import { api, waitForJob } from '../client.js';
import { kvCurveChart, niahGridChart } from '../charts/niah.js';
import { exportButtons, mainSvg } from '../charts/export.js';
import type { NiahView } from '../../api.js';
import { accuracyText } from '../../../atlas/metricDisplay.js';
import { fill, formatMiB, h } from '../dom.js';
import { state } from '../state.js';
import { errorBox, jobProgress } from './common.js';

export function needlesView(root: HTMLElement): () => void {
  const body = h('div', { class: 'needles-body' });
  const status = h('div', {});
  const full = h('input', { type: 'checkbox', id: 'niah-full', 'data-testid': 'niah-full' });
  const runBtn = h('button', { class: 'primary', 'data-testid': 'run-niah' }, 'Run needle sweep');
  root.append(
    h(
      'section',
      { class: 'view needles-view' },
      h(
        'div',
        { class: 'controls' },
        h('h2', {}, 'Needles & KV'),
        state.model.jobs.niah ? [runBtn, h('label', { for: 'niah-full', class: 'small', title: 'quick: 3 lengths × 3 depths × 6 prompts and 10 prompts per KV setting; full: up to 4 lengths × 5 depths × 20 prompts and 40 per KV setting' }, full, ' full sweep (minutes, not seconds)')] : null,
        status,
      ),
      body,
    ),
  );
  const empty = () => fill(body, h('p', { class: 'muted', 'data-testid': 'niah-empty' }, 'No needle results yet.', state.model.jobs.niah ? ' Run the sweep: needle prompts at a few context lengths and depths, then the same prompts under full, streaming and duo KV caches.' : ' Start the server with an atlas that carries a needle grid.'));
  const show = async () => {
    if (!state.status.niah) return empty();
    try {
      const niah = await api.niah();
      if (!niah) return empty();
      const w = Math.max(320, Math.floor((body.clientWidth - 40) / 2));
      const gridFig = niah.grid ? niahGridChart(niah.grid, w) : null;
      const kvFig = niah.kv ? kvCurveChart(niah.kv, w) : null;
      fill(
        body,
        h(
          'div',
          { class: 'panel' },
          h('div', { class: 'row' }, h('h3', { class: 'grow' }, niah.source === 'atlas' ? "Needle accuracy on the atlas's prompts, full attention" : 'Needle accuracy, full attention'), gridFig ? exportButtons('needle-grid', () => mainSvg(gridFig)) : null),
          gridFig ?? h('p', { class: 'muted' }, 'No grid in these results.'),
          niah.grid ? h('p', { class: 'muted small', 'data-testid': 'niah-n' }, `n = ${cellCounts(niah.grid)} prompts per cell; brackets: 95% Wilson interval. Greedy decoding, exact match of the value. Needles: one in three a pass key, the rest multi-key retrieval.`) : null,
        ),
        h(
          'div',
          { class: 'panel' },
          h('div', { class: 'row' }, h('h3', { class: 'grow' }, 'Accuracy vs KV-cache size'), kvFig ? exportButtons('kv-curve', () => mainSvg(kvFig)) : null),
          kvFig ?? h('p', { class: 'muted' }, 'No KV sweep yet.', state.model.jobs.niah ? ' Run the needle sweep to compare full, streaming and duo caches.' : ''),
          niah.kv ? kvTable(niah.kv) : null,
          niah.kv?.[0] ? h('p', { class: 'muted small' }, `Needle prompts of ${niah.kv[0].contextTokens} tokens. Streaming keeps 4 sink tokens + the window on every head; duo keeps everything on the top KV heads (${String(niah.settings?.duo ?? '')}) and 4 + 32 on the rest.`) : null,
        ),
      );
    } catch (e) {
      fill(body, errorBox(e));
    }
  };
  runBtn.addEventListener('click', async () => {
    runBtn.disabled = true;
    try {
      const done = await waitForJob(await api.startJob('niah', !full.checked), (s) => fill(status, jobProgress(s)));
      if (done.state === 'done') {
        fill(status);
        state.status = await api.status();
        await show();
      }
    } catch (e) {
      fill(status, errorBox(e));
    } finally {
      runBtn.disabled = false;
    }
  });
  void show();
  return () => undefined;
}

function kvTable(kv: NonNullable<NiahView['kv']>): HTMLElement {
  return h(
    'table',
    { class: 'score-table kv-table', 'data-testid': 'kv-table' },
    h('thead', {}, h('tr', {}, h('th', {}, 'policy'), h('th', {}, 'setting'), h('th', { class: 'num' }, 'KV held'), h('th', { class: 'num' }, 'of full'), h('th', { class: 'num' }, 'accuracy (n, 95% CI)'))),
    h(
      'tbody',
      {},
      kv.map((p) =>
        h('tr', {}, h('td', {}, p.policy), h('td', {}, p.setting), h('td', { class: 'num mono' }, formatMiB(p.kvBytes)), h('td', { class: 'num mono' }, `${Math.round((100 * p.kvBytes) / p.kvBytesFull)}%`), h('td', { class: 'num mono' }, p.samples ? accuracyText(p.accuracy, p.samples) : `${Math.round(p.accuracy * 100)}% (n not recorded)`)),
      ),
    ),
  );
}

/** "2" or "2–3": the prompts per cell of a grid. */
function cellCounts(grid: NonNullable<NiahView['grid']>): string {
  const ns = grid.counts?.flat() ?? [grid.samplesPerCell];
  const lo = Math.min(...ns);
  const hi = Math.max(...ns);
  return lo === hi ? String(lo) : `${lo}–${hi}`;
}
