/**
 * Hash routes, so a view can be linked and reloaded: `#/atlas`, `#/atlas/<metric>`, `#/model`,
 * `#/head/<layer>/<head>`, `#/compare/<layer>/<head>`, `#/playground`, `#/needles`, `#/results`.
 */

export interface HeadRef {
  layer: number;
  head: number;
}

export type Route =
  | { view: 'atlas'; metric?: string }
  | { view: 'model' }
  | { view: 'head'; head?: HeadRef }
  | { view: 'compare'; head?: HeadRef }
  | { view: 'results' }
  | { view: 'playground' }
  | { view: 'needles' };

export function parseRoute(hash: string): Route {
  const parts = hash.replace(/^#\/?/, '').split('/').map((p) => decodeURIComponent(p));
  switch (parts[0]) {
    case 'head':
    case 'compare': {
      const view = parts[0];
      const layer = Number(parts[1]);
      const head = Number(parts[2]);
      return Number.isInteger(layer) && Number.isInteger(head) && parts[1] !== '' && parts[2] !== '' && parts[1] !== undefined ? { view, head: { layer, head } } : { view };
    }
    case 'model':
      return { view: 'model' };
    case 'results':
      return { view: 'results' };
    case 'playground':
      return { view: 'playground' };
    case 'needles':
      return { view: 'needles' };
    default:
      return { view: 'atlas', metric: parts[1] || undefined };
  }
}

export function href(route: Route): string {
  switch (route.view) {
    case 'atlas':
      return route.metric ? `#/atlas/${encodeURIComponent(route.metric)}` : '#/atlas';
    case 'head':
    case 'compare':
      return route.head ? `#/${route.view}/${route.head.layer}/${route.head.head}` : `#/${route.view}`;
    default:
      return `#/${route.view}`;
  }
}

export function go(route: Route): void {
  location.hash = href(route);
}

export function headName(h: HeadRef): string {
  return `L${h.layer} H${h.head}`;
}
