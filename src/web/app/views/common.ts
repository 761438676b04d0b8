/** Pieces several views use: an error box with the server's message, a job progress bar, a busy note. */
import type { JobStatus } from '../../api.js';
import { h } from '../dom.js';

export function errorBox(e: unknown): HTMLElement {
  return h('div', { class: 'error', role: 'alert', 'data-testid': 'error' }, (e as Error)?.message ?? String(e));
}

export function jobProgress(s: JobStatus): HTMLElement {
  if (s.state === 'failed') return errorBox(new Error(s.error ?? 'the job failed'));
  return h(
    'div',
    { class: 'progress', 'data-testid': 'job-progress' },
    h('progress', { max: 1, value: s.progress }),
    h('span', { class: 'muted' }, ` ${Math.round(s.progress * 100)}% — ${s.message}`),
  );
}

/** Disables `button` and shows `label` on it while `task` runs. */
export async function busy<T>(button: HTMLButtonElement, label: string, task: () => Promise<T>): Promise<T> {
  const old = button.textContent;
  button.disabled = true;
  button.textContent = label;
  try {
    return await task();
  } finally {
    button.disabled = false;
    button.textContent = old;
  }
}
