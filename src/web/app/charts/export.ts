/**
 * SVG and PNG export of a figure: an SVG chart is serialised as is (PNG: drawn onto a canvas at 2×),
 * a canvas heatmap is saved as PNG directly and as SVG through the figure's own SVG writer. Each
 * figure gets two small buttons; the file name says what it shows.
 */
import { h } from '../dom.js';

function download(name: string, blob: Blob): void {
  const a = document.createElement('a');
  a.href = URL.createObjectURL(blob);
  a.download = name;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(a.href), 1000);
}

function svgText(svg: SVGSVGElement): string {
  const copy = svg.cloneNode(true) as SVGSVGElement;
  copy.setAttribute('xmlns', 'http://www.w3.org/2000/svg');
  if (!copy.getAttribute('width')) copy.setAttribute('width', String(svg.getBoundingClientRect().width));
  if (!copy.getAttribute('height')) copy.setAttribute('height', String(svg.getBoundingClientRect().height));
  // Plot styles its svg with a class; inline a white background and the font so the file stands alone.
  copy.setAttribute('style', `${copy.getAttribute('style') ?? ''};background:white;font-family:system-ui,sans-serif`);
  return new XMLSerializer().serializeToString(copy);
}

export function saveSvg(svg: SVGSVGElement | string, name: string): void {
  download(`${name}.svg`, new Blob([typeof svg === 'string' ? svg : svgText(svg)], { type: 'image/svg+xml' }));
}

export async function savePng(source: SVGSVGElement | HTMLCanvasElement | string, name: string): Promise<void> {
  if (source instanceof HTMLCanvasElement) {
    source.toBlob((b) => b && download(`${name}.png`, b), 'image/png');
    return;
  }
  const text = typeof source === 'string' ? source : svgText(source);
  const img = new Image();
  img.src = 'data:image/svg+xml;charset=utf-8,' + encodeURIComponent(text);
  await img.decode();
  const canvas = document.createElement('canvas');
  canvas.width = img.width * 2;
  canvas.height = img.height * 2;
  const ctx = canvas.getContext('2d')!;
  ctx.fillStyle = 'white';
  ctx.fillRect(0, 0, canvas.width, canvas.height);
  ctx.drawImage(img, 0, 0, canvas.width, canvas.height);
  canvas.toBlob((b) => b && download(`${name}.png`, b), 'image/png');
}

/** The first svg of a Plot figure (a legend figure holds several). */
export function mainSvg(el: Element): SVGSVGElement | null {
  if (el instanceof SVGSVGElement) return el;
  const all = Array.from(el.querySelectorAll('svg'));
  return (all.find((s) => !s.closest('[class$="-swatches"]') && s.querySelector('g[aria-label]')) ?? all[all.length - 1] ?? null) as SVGSVGElement | null;
}

/** "SVG" and "PNG" buttons for a figure; `svg` and `png` produce what they save when clicked. */
export function exportButtons(name: string, svg: () => SVGSVGElement | string | null, png?: () => HTMLCanvasElement | SVGSVGElement | string | null): HTMLElement {
  return h(
    'span',
    { class: 'export', 'data-testid': 'export' },
    h('button', { class: 'mini', title: `save ${name}.svg`, onclick: () => { const s = svg(); if (s) saveSvg(s, name); } }, 'SVG'),
    h('button', { class: 'mini', title: `save ${name}.png`, onclick: () => { const s = (png ?? svg)(); if (s) void savePng(s, name); } }, 'PNG'),
  );
}
