/**
 * The app's entry: loads the model's shape, what the server holds (`/api/status`), the atlas and the
 * research results when there are any (so an empty server logs no 404s), and the example prompts;
 * draws the header with the views, and mounts the view the URL hash names (each returns its cleanup).
 */
import { api } from './client.js';
import { fill, h } from './dom.js';
import { href, parseRoute, type Route } from './route.js';
import { metricNames, state } from './state.js';
import { atlasView } from './views/atlas.js';
import { errorBox } from './views/common.js';
import { headView } from './views/head.js';
import { needlesView } from './views/needles.js';
import { playgroundView } from './views/playground.js';
import { modelView } from './views/model.js';
import { compareView } from './views/compare.js';
import { resultsView } from './views/results.js';
import { parseResults } from '../../atlas/researchResult.js';

const TABS: { view: Route['view']; label: string }[] = [
  { view: 'atlas', label: 'Atlas' },
  { view: 'model', label: 'Model' },
  { view: 'head', label: 'Head' },
  { view: 'compare', label: 'Compare' },
  { view: 'playground', label: 'Playground' },
  { view: 'needles', label: 'Needles & KV' },
  { view: 'results', label: 'Patching' },
];

async function start(): Promise<void> {
  const app = document.getElementById('app')!;
  try {
    const [model, status, examples] = await Promise.all([api.model(), api.status(), api.examples()]);
    const [atlas, results] = await Promise.all([status.atlas ? api.atlas() : null, status.results > 0 ? api.results().then((r) => parseResults(r.results)) : []]);
    Object.assign(state, { model, status, atlas, examples, results, metric: metricNames(atlas)[0] ?? null, headPrompt: examples[0]?.prompt ?? '', playPrompt: examples[0]?.prompt ?? '', playHeads: [], bins: 256, comparePrompt: '' });
  } catch (e) {
    fill(app, errorBox(e));
    return;
  }
  const nav = h('nav', { class: 'tabs' });
  const main = h('main', { id: 'view' });
  const m = state.model;
  fill(
    app,
    h('header', {}, h('a', { class: 'brand', href: '#/atlas' }, 'headwise'), nav, h('span', { class: 'model-info', title: `context ${m.contextTokens} tokens, vocabulary ${m.vocab}` }, `${m.name} · ${m.layers} layers × ${m.heads} heads${m.kvHeads !== m.heads ? ` (${m.kvHeads} KV)` : ''}`)),
    main,
  );
  let cleanup: () => void = () => undefined;
  const mount = () => {
    cleanup();
    const route = parseRoute(location.hash);
    fill(nav, TABS.map((t) => h('a', { href: href({ view: t.view } as Route), class: t.view === route.view ? 'active' : '', 'data-testid': `tab-${t.view}` }, t.label)));
    main.replaceChildren();
    document.title = `headwise · ${TABS.find((t) => t.view === route.view)!.label}`;
    switch (route.view) {
      case 'atlas':
        cleanup = atlasView(main, route.metric);
        break;
      case 'model':
        cleanup = modelView(main);
        break;
      case 'head':
        cleanup = headView(main, route.head);
        break;
      case 'compare':
        cleanup = compareView(main, route.head);
        break;
      case 'results':
        cleanup = resultsView(main);
        break;
      case 'playground':
        cleanup = playgroundView(main);
        break;
      case 'needles':
        cleanup = needlesView(main);
        break;
    }
  };
  window.addEventListener('hashchange', mount);
  mount();
}

void start();
