// The district tree: loaded lazily, one level per expansion; each node
// shows its camera count, online count and online rate coloured against
// its target. Keyboard: Up/Down move, Right opens or enters, Left closes or
// goes up, Home/End, Enter or Space selects (WAI-ARIA tree pattern).

import { h, pct, rateClass } from './dom.js';
import { t } from './i18n.js';
import { api, qs } from './api.js';
import { session } from './app.js';

/** Builds a tree in `box`. `onSelect(district)` gets the chosen node's
 * district ({code, name, level, ...}). `selected` is a code to open up to
 * and select. Returns {refresh(), select(code)}. */
export function districtTree(box, { selected, onSelect }) {
  const root = h('ul', { role: 'tree', 'aria-label': t('tree.label') });
  box.replaceChildren(root);
  const nodes = new Map(); // code -> {li, d, loaded, childUl}
  let current = null;

  function label(d) {
    const rate = d.online_rate;
    return [
      h('span', { class: 'name', title: `${d.name} (${d.code})` }, d.name),
      h('span', { class: 'count', title: t('tree.count_title') }, `${d.online_count}/${d.camera_count}`),
      h('span', { class: 'rate ' + rateClass(rate, d.target), title: d.target != null ? t('tree.target', { target: pct(d.target) }) : '' }, pct(rate)),
    ];
  }

  function node(d, level) {
    const expandable = d.camera_count > 0 && d.level < 5;
    const twisty = h('span', { class: 'twisty', 'aria-hidden': 'true' }, expandable ? '▸' : '');
    const row = h('div', { class: 'row' }, twisty, label(d));
    const li = h('li', {
      role: 'treeitem',
      tabindex: '-1',
      'aria-level': level,
      'aria-selected': 'false',
      'aria-expanded': expandable ? 'false' : null,
      dataset: { code: d.code },
    }, row);
    const n = { li, d, row, twisty, loaded: false, childUl: null, expandable };
    nodes.set(d.code, n);
    row.addEventListener('click', () => {
      choose(n);
      if (n.expandable) toggle(n);
    });
    return li;
  }

  async function children(code) {
    const r = await api('/districts' + qs({ parent: code }));
    return r.items.filter((d) => d.camera_count > 0);
  }

  async function expand(n) {
    if (!n.expandable) return;
    if (!n.loaded) {
      const kids = await children(n.d.code);
      n.loaded = true;
      if (!kids.length) {
        n.expandable = false;
        n.twisty.textContent = '';
        n.li.removeAttribute('aria-expanded');
        return;
      }
      n.childUl = h('ul', { role: 'group' }, kids.map((k) => node(k, Number(n.li.getAttribute('aria-level')) + 1)));
      n.li.append(n.childUl);
    }
    n.childUl.hidden = false;
    n.li.setAttribute('aria-expanded', 'true');
    n.twisty.textContent = '▾';
  }

  function collapse(n) {
    if (!n.childUl) return;
    n.childUl.hidden = true;
    n.li.setAttribute('aria-expanded', 'false');
    n.twisty.textContent = '▸';
  }

  function toggle(n) {
    if (n.li.getAttribute('aria-expanded') === 'true') collapse(n);
    else expand(n);
  }

  function focus(n) {
    for (const x of nodes.values()) x.li.tabIndex = -1;
    n.li.tabIndex = 0;
    n.li.focus();
  }

  function choose(n) {
    if (current) current.li.setAttribute('aria-selected', 'false');
    current = n;
    n.li.setAttribute('aria-selected', 'true');
    focus(n);
    onSelect(n.d);
  }

  function visible() {
    return [...root.querySelectorAll('[role=treeitem]')].filter((li) => !li.closest('ul[hidden]'));
  }

  root.addEventListener('keydown', (ev) => {
    const li = ev.target.closest('[role=treeitem]');
    if (!li) return;
    const n = nodes.get(li.dataset.code);
    const items = visible();
    const i = items.indexOf(li);
    const to = (el) => el && focus(nodes.get(el.dataset.code));
    switch (ev.key) {
      case 'ArrowDown': to(items[i + 1]); break;
      case 'ArrowUp': to(items[i - 1]); break;
      case 'Home': to(items[0]); break;
      case 'End': to(items[items.length - 1]); break;
      case 'ArrowRight':
        if (n.expandable && li.getAttribute('aria-expanded') !== 'true') expand(n);
        else if (n.childUl && !n.childUl.hidden) to(n.childUl.querySelector('[role=treeitem]'));
        break;
      case 'ArrowLeft':
        if (li.getAttribute('aria-expanded') === 'true') collapse(n);
        else to(li.parentElement.closest('[role=treeitem]'));
        break;
      case 'Enter':
      case ' ':
        choose(n);
        break;
      default:
        return;
    }
    ev.preventDefault();
  });

  /** Loads the roots (the user's scope, or the provinces with cameras)
   * and opens the path to `code`. */
  async function load(code) {
    root.replaceChildren();
    nodes.clear();
    const scope = session.me && session.me.scope;
    let tops;
    if (scope) tops = [await api('/districts/' + encodeURIComponent(scope))];
    else tops = (await api('/districts')).items.filter((d) => d.camera_count > 0);
    root.append(...tops.map((d) => node(d, 1)));
    if (code) await select(code);
    else if (tops.length === 1) {
      await expand(nodes.get(tops[0].code));
      choose(nodes.get(tops[0].code));
    }
    const first = root.querySelector('[role=treeitem]');
    if (first && !current) first.tabIndex = 0;
  }

  /** Opens the path to `code` and selects it. */
  async function select(code) {
    const d = await api('/districts/' + encodeURIComponent(code));
    for (const p of d.path || []) {
      const n = nodes.get(p.code);
      if (n && p.code !== d.code) await expand(n);
    }
    const n = nodes.get(d.code);
    if (n) choose(n);
    else onSelect(d);
  }

  /** Re-reads the counts of every loaded level. */
  async function refresh() {
    const parents = [...nodes.values()].filter((n) => n.loaded && n.childUl).map((n) => n.d.code);
    for (const code of parents) {
      const kids = await children(code);
      for (const k of kids) {
        const n = nodes.get(k.code);
        if (n) {
          n.d = k;
          n.row.replaceChildren(n.twisty, ...label(k));
        }
      }
    }
  }

  const ready = load(selected);
  return { ready, refresh, select };
}
