/**
 * Needles & KV view: pass-key accuracy over context length × depth, and accuracy against the KV
 * bytes each cache policy keeps. Shows what the server holds; offers to run the (quick) sweep.
 */
import { api, waitForJob } from '../client.js';
import { kvCurveChart, niahGridChart } from '../charts/niah.js';
import type { NiahView } from '../../api.js';
import { fill, formatBytes, h } from '../dom.js';
import { state } from '../state.js';
import { errorBox, jobProgress } from './common.js';

export function needlesView(root: HTMLElement): () => void {
  const body = h('div', { class: 'needles-body' });
  const status = h('div', {});
  const runBtn = h('button', { class: 'primary', 'data-testid': 'run-niah' }, 'Run needle sweep (quick)');
  root.append(
    h(
      'section',
      { class: 'view needles-view' },
      h('div', { class: 'controls' }, h('h2', {}, 'Needles & KV'), state.model.jobs.niah ? runBtn : null, status),
      body,
    ),
  );
  const show = async () => {
    try {
      const niah = await api.niah();
      if (!niah) {
        fill(body, h('p', { class: 'muted' }, 'No needle results yet.', state.model.jobs.niah ? ' Run the quick sweep: needle prompts at a few context lengths and depths, then the same prompts under full, streaming and duo KV caches.' : ''));
        return;
      }
      const w = Math.max(320, Math.floor((body.clientWidth - 40) / 2));
      fill(
        body,
        h('div', { class: 'panel' }, h('h3', {}, niah.source === 'atlas' ? "Needle accuracy on the atlas's prompts, full attention" : 'Needle accuracy, full attention'), niah.grid ? niahGridChart(niah.grid, w) : h('p', { class: 'muted' }, 'No grid in these results.'), niah.grid ? h('p', { class: 'muted small' }, `${niah.grid.samplesPerCell} samples per cell; greedy decoding, exact match of the value. Needles: one in three a pass key, the rest multi-key retrieval.`) : null),
        h('div', { class: 'panel' }, h('h3', {}, 'Accuracy vs KV-cache bytes'), niah.kv ? kvCurveChart(niah.kv, w) : h('p', { class: 'muted' }, 'No KV sweep yet.', state.model.jobs.niah ? ' Run the needle sweep to compare full, streaming and duo caches.' : ''), niah.kv ? kvTable(niah.kv) : null, niah.kv?.[0] ? h('p', { class: 'muted small' }, `Needle prompts of ${niah.kv[0].contextTokens} tokens. Streaming keeps 4 sink tokens + the window on every head; duo keeps everything on the top KV heads (${String(niah.settings?.duo ?? '')}) and 4 + 32 on the rest.`) : null),
      );
    } catch (e) {
      fill(body, errorBox(e));
    }
  };
  runBtn.addEventListener('click', async () => {
    runBtn.disabled = true;
    try {
      const done = await waitForJob(await api.startJob('niah', true), (s) => fill(status, jobProgress(s)));
      if (done.state === 'done') {
        fill(status);
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
    h('thead', {}, h('tr', {}, h('th', {}, 'policy'), h('th', {}, 'setting'), h('th', { class: 'num' }, 'KV held'), h('th', { class: 'num' }, 'of full'), h('th', { class: 'num' }, 'accuracy'))),
    h(
      'tbody',
      {},
      kv.map((p) =>
        h('tr', {}, h('td', {}, p.policy), h('td', {}, p.setting), h('td', { class: 'num mono' }, formatBytes(p.kvBytes)), h('td', { class: 'num mono' }, `${Math.round((100 * p.kvBytes) / p.kvBytesFull)}%`), h('td', { class: 'num mono' }, `${Math.round(p.accuracy * 100)}%`)),
      ),
    ),
  );
}
