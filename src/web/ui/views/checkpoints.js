// Checkpoints (卡口): listed by district beside the tree; a checkpoint's page
// shows its cameras as a small video wall.

import { h, mount } from '../dom.js';
import { t } from '../i18n.js';
import { api, qs } from '../api.js';
import { go, href, errorText } from '../app.js';
import { districtTree } from '../tree.js';
import { tile } from './wall.js';

export function show(view, r) {
  if (r.name === 'checkpoint') return checkpoint(view, r.arg);
  const treeBox = h('div', { class: 'tree card' });
  const tbody = h('tbody');
  const error = h('p', { class: 'error', role: 'alert' });
  const title = h('h1', {}, t('checkpoints.title'));
  mount(view, h('div', { class: 'split' }, treeBox, h('section', {}, title, error,
    h('table', { class: 'grid', id: 'checkpoints' },
      h('thead', {}, h('tr', {}, ['col.name', 'col.kind', 'col.address', 'col.cameras'].map((k) => h('th', { scope: 'col' }, t(k))))),
      tbody))));

  async function load(d) {
    title.textContent = `${t('checkpoints.title')} · ${d.name}`;
    try {
      const page = await api('/checkpoints' + qs({ district: d.code, limit: 200 }));
      mount(tbody, page.items.map((c) => h('tr', {
        tabindex: '0', onclick: () => go('checkpoint', c.id),
        onkeydown: (ev) => ev.key === 'Enter' && go('checkpoint', c.id),
      },
      h('td', {}, h('a', { href: href('checkpoint', c.id), tabindex: '-1' }, c.name)),
      h('td', {}, t('checkpoint_kind.' + c.kind)),
      h('td', {}, c.address),
      h('td', {}, String(c.camera_count)))));
      if (!page.items.length) mount(tbody, h('tr', {}, h('td', { colspan: 4, class: 'muted' }, t('checkpoints.empty'))));
    } catch (e) {
      error.textContent = errorText(e);
    }
  }
  let chosen = false;
  const pick = (d) => { chosen = true; return load(d); };
  districtTree(treeBox, { selected: r.params.d || null, onSelect: pick }).ready
    .then(() => chosen || load({ code: '', name: t('health.all') }))
    .catch((e) => { error.textContent = errorText(e); });
}

async function checkpoint(view, id) {
  let cp;
  try {
    cp = await api('/checkpoints/' + encodeURIComponent(id));
  } catch (e) {
    mount(view, h('p', { class: 'error' }, e.status === 404 ? t('checkpoints.not_found') : errorText(e)));
    return;
  }
  const cams = await api('/cameras' + qs({ checkpoint: id, limit: 9 }));
  const n = cams.items.length <= 1 ? 1 : cams.items.length <= 4 ? 4 : 9;
  const wall = h('div', { class: 'wall n' + n, id: 'checkpoint-wall' });
  wall.style.height = '520px';
  for (let i = 0; i < n; i++) wall.append(tile(cams.items[i] || null));
  mount(view,
    h('p', { class: 'crumbs' }, h('a', { href: href('checkpoints', null, { d: cp.district }) }, t('checkpoints.title')), ' › ', cp.name),
    h('h1', {}, cp.name),
    h('p', { class: 'muted' }, `${t('checkpoint_kind.' + cp.kind)} · ${cp.address} · ${t('checkpoints.cameras', { count: cp.camera_count })}`),
    wall,
    cp.camera_count > 9 && h('p', {}, h('a', { href: href('catalogue', null, { cp: id, d: cp.district }) }, t('checkpoints.all_cameras'))));
}
