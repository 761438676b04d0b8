/**
 * A few DOM helpers so views read as markup: `h('button', {onclick}, 'Run')`. No framework; each view
 * builds its own elements and re-renders the parts that change.
 */

type Attrs = Record<string, string | number | boolean | null | undefined | EventListener>;
type Child = Node | string | number | null | undefined | false;

export function h<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Attrs = {}, ...children: (Child | Child[])[]): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith('on') && typeof value === 'function') el.addEventListener(key.slice(2), value);
    else if (key === 'class') el.className = String(value);
    else if (key === 'value' && 'value' in el) (el as unknown as HTMLInputElement).value = String(value);
    else if (value === true) el.setAttribute(key, '');
    else el.setAttribute(key, String(value));
  }
  append(el, children);
  return el;
}

export function append(el: Element, children: (Child | Child[])[]): void {
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : String(c));
  }
}

/** Replaces the children of `el`. */
export function fill(el: Element, ...children: (Child | Child[])[]): void {
  el.replaceChildren();
  append(el, children);
}

/** Shows a token's text readably: spaces as ·, newlines as ⏎, empty as ∅. */
export function showToken(t: string): string {
  if (t === '') return '∅';
  return t.replace(/ /g, '·').replace(/\n/g, '⏎').replace(/\t/g, '⇥');
}

export function formatNumber(x: number | null | undefined, digits = 3): string {
  if (x === null || x === undefined || !Number.isFinite(x)) return '–';
  if (x !== 0 && Math.abs(x) < 10 ** -digits) return x.toExponential(1);
  return x.toFixed(digits);
}

/** Bytes in MiB, always (one unit across the app, so columns compare at a glance). */
export function formatMiB(n: number): string {
  const mib = n / 1024 ** 2;
  return `${mib < 0.1 ? mib.toFixed(3) : mib < 10 ? mib.toFixed(2) : mib.toFixed(1)} MiB`;
}
