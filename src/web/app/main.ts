/**
 * The app's entry: loads the model's shape, the atlas and the example prompts once, draws the header
 * with the four views, and mounts the view the URL hash names (each view returns its cleanup).
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

const TABS: { view: Route['view']; label: string }[] = [
  { view: 'atlas', label: 'Atlas' },
  { view: 'head', label: 'Head' },
  { view: 'playground', label: 'Playground' },
  { view: 'needles', label: 'Needles & KV' },
];

async function start(): Promise<void> {
  const app = document.getElementById('app')!;
  try {
    const [model, atlas, examples] = await Promise.all([api.model(), api.atlas(), api.examples()]);
    Object.assign(state, { model, atlas, examples, metric: metricNames(atlas)[0] ?? null, headPrompt: examples[0]?.prompt ?? '', playPrompt: examples[0]?.prompt ?? '', playHeads: [] });
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
      case 'head':
        cleanup = headView(main, route.head);
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
