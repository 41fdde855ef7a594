// The video wall: 1, 4, 9 or 16 tiles, each the embed player of a camera
// picked from the tree or a search; layouts are saved per user on the
// server. A tile that cannot play says why (offline, disabled, no
// permission).

import { h, mount, debounce } from '../dom.js';
import { t } from '../i18n.js';
import { api, qs } from '../api.js';
import { errorText, toast } from '../app.js';
import { districtTree } from '../tree.js';
import { watchStates } from './catalogue.js';

const SIZES = [1, 4, 9, 16];

/** A tile for `cam` (a camera as the API lists it), or an empty tile;
 * `why` overrides with a reason it cannot play. */
export function tile(cam, why) {
  const el = h('div', { class: 'tile', dataset: { camera: cam ? cam.id : '' } });
  if (!cam) {
    el.append(h('span', { class: 'why muted' }, why || t('wall.empty')));
    return el;
  }
  el.append(h('span', { class: 'label' }, cam.name));
  const reason = !cam.enabled || cam.state === 'disabled' ? t('wall.disabled') : cam.state === 'offline' ? t('wall.offline', { reason: cam.reason ? t('reason.' + cam.reason) : '' }) : null;
  if (reason) el.append(h('span', { class: 'why', dataset: { why: cam.state } }, reason));
  else el.append(h('iframe', { src: '/embed/' + encodeURIComponent(cam.id), title: cam.name, allow: 'autoplay; fullscreen' }));
  return el;
}

export async function show(view) {
  let layout = { name: t('wall.default_name'), tiles: 4, cameras: [null, null, null, null] };
  let selected = 0;
  const wall = h('div', { class: 'wall n4', id: 'wall', role: 'grid', 'aria-label': t('wall.title') });
  const sizeButtons = SIZES.map((n) => h('button', { type: 'button', dataset: { tiles: n }, 'aria-pressed': 'false', onclick: () => resize(n) }, t('wall.tiles', { n })));
  const nameInput = h('input', { id: 'wall-name', 'aria-label': t('wall.name'), size: 12, maxlength: 64 });
  const layouts = h('select', { id: 'wall-layouts', 'aria-label': t('wall.layouts'), onchange: () => open(layouts.value) });
  const results = h('ul', { class: 'results', id: 'wall-results' });
  const treeBox = h('div', { class: 'tree card' });
  const search = h('input', { type: 'search', id: 'wall-search', placeholder: t('catalogue.search'), 'aria-label': t('catalogue.search'), oninput: debounce(() => find({ q: search.value.trim() }), 300) });
  const picker = h('div', { class: 'picker' }, treeBox, h('div', {}, search, results));
  picker.hidden = true;

  mount(view,
    h('h1', {}, t('wall.title')),
    h('div', { class: 'wall-bar' },
      sizeButtons, layouts, nameInput,
      h('button', { type: 'button', id: 'wall-save', class: 'primary', onclick: save }, t('wall.save')),
      h('button', { type: 'button', id: 'wall-pick', onclick: () => { picker.hidden = !picker.hidden; if (!picker.hidden) search.focus(); } }, t('wall.pick'))),
    picker,
    wall);

  let tree = null;
  async function find(params) {
    if (!params.q && !params.district) return mount(results);
    const page = await api('/cameras' + qs({ ...params, limit: 20 })).catch((e) => { toast(errorText(e), 'error'); return { items: [] }; });
    mount(results, page.items.map((c) => h('li', {}, h('button', { type: 'button', dataset: { pick: c.id }, onclick: () => place(c) }, `${c.name} · ${c.district_name}`))));
  }

  function place(cam) {
    setTile(selected, cam.id);
    selected = (selected + 1) % layout.tiles;
    highlight();
  }

  function resize(n) {
    const cams = layout.cameras.slice(0, n);
    while (cams.length < n) cams.push(null);
    layout = { ...layout, tiles: n, cameras: cams };
    selected = Math.min(selected, n - 1);
    render();
  }

  function highlight() {
    [...wall.children].forEach((el, i) => el.classList.toggle('selected', i === selected));
  }

  /** The tile element for position `i` of the layout. */
  async function buildTile(i) {
    const id = layout.cameras[i];
    let el;
    if (!id) el = tile(null);
    else {
      try {
        el = tile(await api('/cameras/' + encodeURIComponent(id)));
      } catch (e) {
        el = tile(null, e.status === 404 ? t('wall.no_permission') : errorText(e));
      }
    }
    el.tabIndex = 0;
    el.setAttribute('role', 'gridcell');
    el.setAttribute('aria-label', t('wall.tile', { n: i + 1 }));
    el.addEventListener('click', () => { selected = i; highlight(); });
    el.addEventListener('keydown', (ev) => {
      if (ev.key === 'Enter') { selected = i; highlight(); picker.hidden = false; search.focus(); }
      if (ev.key === 'Delete') setTile(i, null);
    });
    if (id) {
      el.append(h('button', { type: 'button', class: 'clear', 'aria-label': t('wall.clear'), onclick: (ev) => { ev.stopPropagation(); setTile(i, null); } }, '×'));
    }
    return el;
  }

  /** Puts camera `id` (or nothing) on tile `i`; the other tiles keep playing. */
  async function setTile(i, id) {
    layout.cameras[i] = id;
    const el = await buildTile(i);
    if (wall.children[i]) wall.children[i].replaceWith(el);
    highlight();
  }

  async function render() {
    wall.className = 'wall n' + layout.tiles;
    for (const b of sizeButtons) b.setAttribute('aria-pressed', String(Number(b.dataset.tiles) === layout.tiles));
    const tiles = await Promise.all(layout.cameras.map((_, i) => buildTile(i)));
    wall.replaceChildren(...tiles);
    highlight();
  }

  async function loadLayouts(pick) {
    const list = await api('/me/walls');
    mount(layouts, h('option', { value: '' }, t('wall.layouts')), list.items.map((w) => h('option', { value: w.name, selected: w.name === pick }, w.name)));
    return list.items;
  }

  async function open(name) {
    const items = await loadLayouts(name);
    const w = items.find((x) => x.name === name);
    if (!w) return;
    layout = { name: w.name, tiles: w.tiles, cameras: w.cameras };
    localStorage.setItem('camgate.wall', w.name);
    nameInput.value = w.name;
    selected = 0;
    render();
  }

  async function save() {
    const name = nameInput.value.trim() || layout.name;
    try {
      await api('/me/walls/' + encodeURIComponent(name), { method: 'PUT', json: { tiles: layout.tiles, cameras: layout.cameras } });
      layout.name = name;
      localStorage.setItem('camgate.wall', name);
      await loadLayouts(name);
      toast(t('wall.saved', { name }));
    } catch (e) {
      toast(errorText(e), 'error');
    }
  }

  // The last layout used here, else the most recently saved one.
  try {
    const items = await loadLayouts(null);
    const last = localStorage.getItem('camgate.wall');
    const w = items.find((x) => x.name === last) || items.slice().sort((a, b) => (a.updated_at < b.updated_at ? 1 : -1))[0];
    if (w) {
      layout = { name: w.name, tiles: w.tiles, cameras: w.cameras };
      layouts.value = w.name;
    }
    nameInput.value = layout.name;
  } catch (e) {
    toast(errorText(e), 'error');
  }
  render();
  tree = districtTree(treeBox, { onSelect: (d) => find({ district: d.code }) });
  tree.ready.catch(() => {});
  // A camera going offline or back changes what its tile shows.
  const playable = (state) => state !== 'offline' && state !== 'disabled';
  const close = watchStates(null, (tr) => {
    if (playable(tr.from) === playable(tr.to)) return;
    layout.cameras.forEach((id, i) => { if (id === tr.camera_id) setTile(i, id); });
  });
  return close;
}
