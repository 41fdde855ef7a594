// The catalogue: the district tree beside a table of the selected
// subtree's cameras, one page at a time (cursor paging), with search and
// filters; camera states update live from the health event stream.

import { h, mount, debounce } from '../dom.js';
import { t } from '../i18n.js';
import { api, qs } from '../api.js';
import { go, href, errorText } from '../app.js';
import { districtTree } from '../tree.js';

export const PAGE = 50;
const STATES = ['online', 'degraded', 'offline', 'connecting', 'unknown', 'disabled'];

/** A state badge. */
export function stateBadge(state, reason) {
  return h('span', { class: 'state ' + state, title: reason ? t('reason.' + reason) : '' }, t('state.' + state));
}

/** Opens the health event stream for `district`; `onChange(transition)`,
 * `onLagged()`. Returns a close function. */
export function watchStates(district, onChange, onLagged) {
  const es = new EventSource('/api/v1/health/stream' + qs({ district }));
  es.addEventListener('transition', (ev) => onChange(JSON.parse(ev.data)));
  es.addEventListener('lagged', () => onLagged && onLagged());
  return () => es.close();
}

export function show(view, r) {
  const p = r.params;
  const filters = {
    district: p.d || '',
    q: p.q || '',
    state: p.state || '',
    point_type: p.pt || '',
    ownership: p.own || '',
    checkpoint: p.cp || '',
    tag: p.tag || '',
  };
  let cursors = [null]; // the cursor of each page shown so far
  let pageNo = 0;
  let closeStream = null;
  const rows = new Map(); // camera id -> state cell

  const treeBox = h('div', { class: 'tree card' });
  const crumbs = h('div', { class: 'crumbs', 'aria-live': 'polite' });
  const tbody = h('tbody');
  const status = h('span', { class: 'muted', id: 'page-status' });
  const prev = h('button', { type: 'button', id: 'prev', onclick: () => turn(-1) }, t('page.prev'));
  const next = h('button', { type: 'button', id: 'next', onclick: () => turn(1) }, t('page.next'));
  const exportLink = h('a', { id: 'export', href: '#' }, t('catalogue.export'));

  const search = h('input', {
    type: 'search', id: 'search', value: filters.q, placeholder: t('catalogue.search'),
    'aria-label': t('catalogue.search'),
    oninput: debounce(() => set('q', search.value.trim()), 300),
  });
  const select = (key, id, options, label) => {
    const s = h('select', { id, 'aria-label': label, onchange: () => set(key, s.value) },
      h('option', { value: '' }, label),
      options.map(([v, text]) => h('option', { value: v, selected: String(filters[key]) === String(v) }, text)));
    return s;
  };
  const checkpointSel = h('select', { id: 'f-checkpoint', 'aria-label': t('catalogue.checkpoint'), onchange: () => set('checkpoint', checkpointSel.value) });
  const tagInput = h('input', {
    id: 'f-tag', value: filters.tag, placeholder: t('catalogue.tag'), 'aria-label': t('catalogue.tag'), size: 14,
    onchange: () => set('tag', tagInput.value.trim()),
  });
  const error = h('p', { class: 'error', role: 'alert' });

  mount(
    view,
    h('div', { class: 'split' },
      treeBox,
      h('section', { 'aria-label': t('catalogue.cameras') },
        crumbs,
        h('div', { class: 'filters' },
          search,
          select('state', 'f-state', STATES.map((s) => [s, t('state.' + s)]), t('catalogue.state')),
          select('point_type', 'f-point-type', [1, 2, 3, 9].map((n) => [n, t('point_type.' + n)]), t('catalogue.point_type')),
          select('ownership', 'f-ownership', [['public', t('ownership.public')], ['social', t('ownership.social')]], t('catalogue.ownership')),
          checkpointSel,
          tagInput,
          exportLink),
        error,
        h('table', { class: 'grid', id: 'cameras' },
          h('thead', {}, h('tr', {},
            ['col.state', 'col.name', 'col.id', 'col.district', 'col.address', 'col.point_type'].map((k) => h('th', { scope: 'col' }, t(k))))),
          tbody),
        h('div', { class: 'pager' }, prev, next, status))),
  );

  function set(key, value) {
    filters[key] = value;
    cursors = [null];
    pageNo = 0;
    // Keep the selection in the address, so reload and back work.
    const params = { d: filters.district, q: filters.q, state: filters.state, pt: filters.point_type, own: filters.ownership, cp: filters.checkpoint, tag: filters.tag };
    history.replaceState(null, '', href('catalogue', null, Object.fromEntries(Object.entries(params).filter(([, v]) => v))));
    if (key === 'district') loadCheckpoints();
    loadPage();
  }

  function query(cursor) {
    return { ...filters, limit: PAGE, cursor };
  }

  async function loadCheckpoints() {
    const cps = filters.district ? await api('/checkpoints' + qs({ district: filters.district, limit: 200 })).catch(() => ({ items: [] })) : { items: [] };
    mount(checkpointSel, h('option', { value: '' }, t('catalogue.checkpoint')),
      cps.items.map((c) => h('option', { value: c.id, selected: c.id === filters.checkpoint }, c.name)));
  }

  // One page request at a time: a newer one cancels the one in flight.
  let loading = 0;
  let inflight = null;
  async function loadPage() {
    const mine = ++loading;
    if (inflight) inflight.abort();
    inflight = new AbortController();
    error.textContent = '';
    const { cursor, ...exportFilters } = query(null);
    delete exportFilters.limit;
    exportLink.href = '/api/v1/cameras/export' + qs({ ...exportFilters, format: 'csv', lang: 'zh' });
    let page;
    try {
      page = await api('/cameras' + qs(query(cursors[pageNo])), { signal: inflight.signal });
    } catch (e) {
      if (mine === loading && e.name !== 'AbortError') error.textContent = errorText(e);
      return;
    }
    if (mine !== loading) return; // a newer request replaced this one
    rows.clear();
    mount(tbody, page.items.map((c) => {
      const cell = h('td', {}, stateBadge(c.state, c.reason));
      rows.set(c.id, cell);
      const tr = h('tr', {
        tabindex: '0', dataset: { id: c.id },
        onclick: () => go('camera', c.id),
        onkeydown: (ev) => {
          if (ev.key === 'Enter') go('camera', c.id);
          else if (ev.key === 'ArrowDown' && tr.nextElementSibling) { tr.nextElementSibling.focus(); ev.preventDefault(); }
          else if (ev.key === 'ArrowUp' && tr.previousElementSibling) { tr.previousElementSibling.focus(); ev.preventDefault(); }
        },
      },
        cell,
        h('td', {}, h('a', { href: href('camera', c.id), tabindex: '-1' }, c.name)),
        h('td', { class: 'id' }, c.id),
        h('td', {}, c.district_name || c.district),
        h('td', {}, c.address || ''),
        h('td', {}, t('point_type.' + c.point_type)));
      return tr;
    }));
    if (!page.items.length) mount(tbody, h('tr', {}, h('td', { colspan: 6, class: 'muted' }, t('catalogue.empty'))));
    cursors[pageNo + 1] = page.next_cursor || null;
    prev.disabled = pageNo === 0;
    next.disabled = !page.next_cursor;
    status.textContent = t('page.status', { page: pageNo + 1, count: page.items.length });
    tbody.dataset.loads = String(mine); // pages shown so far (the tests time them)
  }

  function turn(d) {
    if (d > 0 && !cursors[pageNo + 1]) return;
    pageNo = Math.max(0, pageNo + d);
    loadPage();
  }

  function stream() {
    if (closeStream) closeStream();
    closeStream = watchStates(filters.district, (tr) => {
      const cell = rows.get(tr.camera_id);
      if (cell) mount(cell, stateBadge(tr.to, tr.reason));
      refreshTree();
    }, () => loadPage());
  }
  const refreshTree = debounce(() => tree.refresh().catch(() => {}), 3000);

  const tree = districtTree(treeBox, {
    selected: filters.district || null,
    onSelect: (d) => {
      mount(crumbs, (d.path || [d]).map((x, i, a) => [h('span', {}, x.name), i < a.length - 1 ? ' › ' : '']));
      if (filters.district !== d.code) {
        set('district', d.code);
        stream();
      }
    },
  });
  tree.ready.catch((e) => { error.textContent = errorText(e); });
  loadCheckpoints();
  loadPage();
  stream();
  return () => closeStream && closeStream();
}
