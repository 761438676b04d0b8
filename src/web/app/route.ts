/**
 * Hash routes, so a view can be linked and reloaded: `#/atlas`, `#/atlas/<metric>`,
 * `#/head/<layer>/<head>`, `#/playground`, `#/needles`.
 */

export interface HeadRef {
  layer: number;
  head: number;
}

export type Route =
  | { view: 'atlas'; metric?: string }
  | { view: 'head'; head?: HeadRef }
  | { view: 'playground' }
  | { view: 'needles' };

export function parseRoute(hash: string): Route {
  const parts = hash.replace(/^#\/?/, '').split('/').map((p) => decodeURIComponent(p));
  switch (parts[0]) {
    case 'head': {
      const layer = Number(parts[1]);
      const head = Number(parts[2]);
      return Number.isInteger(layer) && Number.isInteger(head) && parts[1] !== '' && parts[2] !== '' ? { view: 'head', head: { layer, head } } : { view: 'head' };
    }
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
      return route.head ? `#/head/${route.head.layer}/${route.head.head}` : '#/head';
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
