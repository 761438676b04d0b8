/**
 * The prompt as token chips shaded by one query's attention, virtualised: tokens are laid out a fixed
 * number per line and only the lines in view (plus a few either side) exist in the DOM, so an 8K-token
 * prompt costs a few hundred chips, not 8K. A click on a chip makes it the query.
 */
import { formatNumber, h, showToken } from '../dom.js';

export const TOKENS_PER_LINE = 8;
const LINE_PX = 22;
const OVERSCAN = 4;

export interface TokenPanel {
  element: HTMLElement;
  /** Redraws with a new query row (exact weights over all keys). */
  update(row: number[], query: number): void;
  /** Scrolls so `position` is in view. */
  reveal(position: number): void;
}

export function tokenPanel(tokens: string[], pick: (q: number) => void): TokenPanel {
  const lines = Math.ceil(tokens.length / TOKENS_PER_LINE);
  const inner = h('div', { class: 'tokens-inner' });
  inner.style.height = `${lines * LINE_PX}px`;
  const element = h('div', { class: 'tokens virtual', 'data-testid': 'query-tokens' }, inner);
  let row: number[] = [];
  let query = tokens.length - 1;
  let max = 0;
  const draw = () => {
    const first = Math.max(0, Math.floor(element.scrollTop / LINE_PX) - OVERSCAN);
    const last = Math.min(lines, Math.ceil((element.scrollTop + (element.clientHeight || 220)) / LINE_PX) + OVERSCAN);
    const out: HTMLElement[] = [];
    for (let line = first; line < last; line++) {
      const chips: HTMLElement[] = [];
      for (let k = line * TOKENS_PER_LINE; k < Math.min(tokens.length, (line + 1) * TOKENS_PER_LINE); k++) {
        const w = k <= query ? row[k] ?? 0 : null;
        const alpha = w === null || max === 0 ? 0 : Math.sqrt(w / max);
        chips.push(
          h(
            'span',
            {
              class: `tok${k === query ? ' query' : ''}${w === null ? ' future' : ''}`,
              'data-pos': k,
              style: w === null ? '' : `background: rgba(33, 102, 172, ${alpha.toFixed(3)}); color: ${alpha > 0.55 ? '#fff' : 'inherit'}`,
              title: `${k}: ${JSON.stringify(tokens[k])}${w === null ? ' (after the query)' : ` — weight ${formatNumber(w, 4)}`}`,
              onclick: () => pick(k),
            },
            showToken(tokens[k]),
          ),
        );
      }
      const el = h('div', { class: 'tok-line' }, h('span', { class: 'tok-pos' }, String(line * TOKENS_PER_LINE)), chips);
      el.style.top = `${line * LINE_PX}px`;
      out.push(el);
    }
    inner.replaceChildren(...out);
  };
  element.addEventListener('scroll', () => requestAnimationFrame(draw));
  return {
    element,
    update(r, q) {
      row = r;
      query = q;
      max = 0;
      for (let k = 0; k <= q; k++) max = Math.max(max, r[k] ?? 0);
      draw();
    },
    reveal(position) {
      const top = Math.floor(position / TOKENS_PER_LINE) * LINE_PX;
      if (top < element.scrollTop || top > element.scrollTop + element.clientHeight - LINE_PX) element.scrollTop = Math.max(0, top - element.clientHeight / 2);
      draw();
    },
  };
}
