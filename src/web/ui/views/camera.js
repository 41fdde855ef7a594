// A camera's page: its fields (editable by operators), the live view (the
// embed player), a snapshot, current stats, its state over 24 hours and 7
// days, recent transitions with reasons, and an embed link with its iframe
// snippet.

import { h, mount, pct, when } from '../dom.js';
import { t } from '../i18n.js';
import { api } from '../api.js';
import { can, href, errorText, problemText, toast } from '../app.js';
import { stateBadge, watchStates } from './catalogue.js';

export async function show(view, r) {
  const id = r.arg;
  let cam;
  try {
    cam = await api('/cameras/' + encodeURIComponent(id));
  } catch (e) {
    mount(view, h('h1', {}, t('camera.title')), h('p', { class: 'error', id: 'camera-error' }, e.status === 404 ? t('camera.not_found') : errorText(e)));
    return;
  }
  const stateBox = h('span', { id: 'camera-state' }, stateBadge(cam.state, cam.reason));
  const statsBox = h('div', { class: 'stats', id: 'stats' });
  const day = h('div', { id: 'timeline-24h' });
  const week = h('div', { id: 'timeline-7d' });
  const transitions = h('tbody');
  const fieldsBox = h('div', {});
  const snapBox = h('div', {});
  const linkBox = h('div', { id: 'embed-link' });

  mount(
    view,
    h('p', { class: 'crumbs' }, h('a', { href: href('catalogue', null, { d: cam.district }) }, cam.district_name || cam.district), ' › ', cam.name),
    h('h1', {}, cam.name, ' ', stateBox),
    h('div', { class: 'camera-grid' },
      h('div', {},
        h('iframe', { class: 'player', id: 'player', src: '/embed/' + encodeURIComponent(id), title: t('camera.live'), allow: 'autoplay; fullscreen' }),
        h('h2', {}, t('camera.stats')), statsBox,
        h('h2', {}, t('camera.timeline_24h')), day,
        h('h2', {}, t('camera.timeline_7d')), week),
      h('div', {},
        h('section', { class: 'card' }, h('h2', {}, t('camera.fields')), fieldsBox),
        h('section', { class: 'card' },
          h('h2', {}, t('camera.snapshot')),
          h('button', { type: 'button', id: 'snapshot', onclick: snapshot }, t('camera.take_snapshot')), snapBox),
        can('operator') && h('section', { class: 'card' }, h('h2', {}, t('camera.embed')), linkForm(), linkBox),
        h('section', {}, h('h2', {}, t('camera.transitions')),
          h('table', { class: 'grid', id: 'transitions' },
            h('thead', {}, h('tr', {}, ['col.at', 'col.from', 'col.to', 'col.reason'].map((k) => h('th', { scope: 'col' }, t(k))))),
            transitions)))),
  );
  renderFields();

  function renderFields() {
    const rows = [
      ['col.id', cam.id],
      ['col.district', `${cam.district_name} (${cam.district})`],
      ['col.address', cam.address],
      ['col.point_type', t('point_type.' + cam.point_type)],
      ['col.ownership', t('ownership.' + cam.ownership)],
      ['col.checkpoint', cam.checkpoint || '–'],
      ['col.industry', cam.industry_code],
      ['col.coords', cam.longitude != null ? `${cam.longitude}, ${cam.latitude}` : '–'],
      ['col.rtsp_url', cam.rtsp_url],
      ['col.username', cam.username || '–'],
      ['col.password', cam.has_password ? t('camera.password_set') : '–'],
      ['col.transport', cam.transport],
      ['col.pull_mode', t('pull_mode.' + cam.pull_mode)],
      ['col.enabled', cam.enabled ? t('yes') : t('no')],
      ['col.tags', Object.entries(cam.tags || {}).map(([k, v]) => `${k}:${v}`).join(', ') || '–'],
      ['col.updated_at', when(cam.updated_at)],
    ];
    mount(fieldsBox,
      h('dl', { class: 'fields' }, rows.map(([k, v]) => [h('dt', {}, t(k)), h('dd', {}, v)])),
      can('operator') && h('button', { type: 'button', id: 'edit', onclick: editForm }, t('camera.edit')));
  }

  function editForm() {
    const input = (name, value, attrs = {}) => h('input', { id: 'e-' + name, name, value: value ?? '', ...attrs });
    const sel = (name, options, value) => h('select', { id: 'e-' + name, name },
      options.map(([v, text]) => h('option', { value: v, selected: String(v) === String(value) }, text)));
    const fields = {
      name: input('name', cam.name, { required: true, maxlength: 100 }),
      address: input('address', cam.address, { maxlength: 200 }),
      point_type: sel('point_type', [1, 2, 3, 9].map((n) => [n, t('point_type.' + n)]), cam.point_type),
      ownership: sel('ownership', [['public', t('ownership.public')], ['social', t('ownership.social')]], cam.ownership),
      pull_mode: sel('pull_mode', [['always', t('pull_mode.always')], ['on_demand', t('pull_mode.on_demand')]], cam.pull_mode),
      enabled: sel('enabled', [['true', t('yes')], ['false', t('no')]], String(cam.enabled)),
      rtsp_url: input('rtsp_url', cam.rtsp_url, { size: 40 }),
    };
    const msg = h('p', { class: 'error', role: 'alert' });
    const form = h('form', {
      class: 'edit',
      onsubmit: async (ev) => {
        ev.preventDefault();
        const body = {
          name: fields.name.value,
          address: fields.address.value,
          point_type: Number(fields.point_type.value),
          ownership: fields.ownership.value,
          pull_mode: fields.pull_mode.value,
          enabled: fields.enabled.value === 'true',
          rtsp_url: fields.rtsp_url.value,
        };
        try {
          cam = await api('/cameras/' + encodeURIComponent(id), { method: 'PATCH', json: body });
          toast(t('camera.saved'));
          renderFields();
        } catch (e) {
          msg.textContent = e.field ? problemText(e.code, e.field, e.message) : errorText(e);
          if (e.field && fields[e.field]) fields[e.field].focus();
        }
      },
    },
    Object.entries(fields).map(([k, el]) => [h('label', { for: el.id }, t('col.' + k)), el]),
    h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'primary' }, t('save')), h('button', { type: 'button', onclick: renderFields }, t('cancel'))),
    msg);
    mount(fieldsBox, form);
    fields.name.focus();
  }

  async function snapshot() {
    const img = new Image();
    img.className = 'snapshot';
    img.alt = t('camera.snapshot');
    const url = `/api/v1/cameras/${encodeURIComponent(id)}/snapshot.jpg?t=${Date.now()}`;
    const resp = await fetch(url, { credentials: 'same-origin' });
    if (!resp.ok) {
      const body = await resp.json().catch(() => ({}));
      mount(snapBox, h('p', { class: 'error' }, (body.error && body.error.message) || `HTTP ${resp.status}`));
      return;
    }
    img.src = URL.createObjectURL(await resp.blob());
    mount(snapBox, img);
  }

  function linkForm() {
    const ttl = h('select', { id: 'link-ttl', 'aria-label': t('camera.link_ttl') },
      [[3600, t('ttl.hour')], [86400, t('ttl.day')], [604800, t('ttl.week')], [2592000, t('ttl.month')]].map(([v, text]) => h('option', { value: v, selected: v === 86400 }, text)));
    const note = h('input', { id: 'link-note', placeholder: t('camera.link_note'), 'aria-label': t('camera.link_note'), maxlength: 200 });
    return h('div', { class: 'filters' }, ttl, note,
      h('button', {
        type: 'button', id: 'make-link', class: 'primary',
        onclick: async () => {
          try {
            const link = await api('/embed-links', { method: 'POST', json: { camera_id: id, ttl_secs: Number(ttl.value), note: note.value } });
            const snippet = h('textarea', { class: 'snippet', id: 'iframe-snippet', readonly: true, 'aria-label': t('camera.snippet') }, link.urls.iframe);
            mount(linkBox,
              h('p', {}, t('camera.link_made', { expires: when(link.expires_at) })),
              snippet,
              h('button', { type: 'button', onclick: () => { snippet.select(); navigator.clipboard && navigator.clipboard.writeText(snippet.value); toast(t('camera.copied')); } }, t('camera.copy')),
              h('p', { class: 'muted' }, t('camera.hls_url'), ' ', h('code', {}, link.urls.hls)));
          } catch (e) {
            mount(linkBox, h('p', { class: 'error' }, errorText(e)));
          }
        },
      }, t('camera.make_link')));
  }

  function timeline(box, tl) {
    const start = Date.parse(tl.from), end = Date.parse(tl.until);
    const span = end - start;
    mount(box,
      h('div', { class: 'timeline', role: 'img', 'aria-label': t('camera.availability', { value: pct(tl.availability) }) },
        tl.segments.map((s) => {
          const w = ((Date.parse(s.to) - Date.parse(s.from)) / span) * 100;
          const el = h('span', { class: s.state, title: `${t('state.' + s.state)} ${when(s.from)} – ${when(s.to)}${s.reason ? ' · ' + t('reason.' + s.reason) : ''}` });
          el.style.width = w + '%';
          return el;
        })),
      h('div', { class: 'axis' }, h('span', {}, when(tl.from)), h('span', {}, t('camera.availability', { value: pct(tl.availability) }) + ' · ' + t('camera.target', { value: pct(tl.target) })), h('span', {}, when(tl.until))));
  }

  async function refreshHealth() {
    try {
      const [hl, d, w] = await Promise.all([
        api(`/cameras/${encodeURIComponent(id)}/health`),
        api(`/cameras/${encodeURIComponent(id)}/timeline?hours=24`),
        api(`/cameras/${encodeURIComponent(id)}/timeline?hours=168`),
      ]);
      mount(stateBox, stateBadge(hl.state, hl.reason));
      const s = hl.stats || {};
      const stat = (key, value) => h('div', { class: 'stat' }, h('span', { class: 'muted' }, t(key)), h('b', {}, value ?? '–'));
      mount(statsBox,
        stat('stats.frame_rate', s.frame_rate != null ? s.frame_rate.toFixed(1) + ' fps' : null),
        stat('stats.bitrate', s.bitrate_bps != null ? (s.bitrate_bps / 1e6).toFixed(2) + ' Mbit/s' : null),
        stat('stats.gop', s.key_frame_interval_secs != null ? s.key_frame_interval_secs.toFixed(1) + ' s' : null),
        stat('stats.codec', s.codec),
        stat('stats.resolution', s.width ? `${s.width}×${s.height}` : null),
        stat('stats.viewers', String(hl.viewers)));
      timeline(day, d);
      timeline(week, w);
      mount(transitions, hl.transitions.slice(0, 20).map((x) => h('tr', {},
        h('td', {}, when(x.at)), h('td', {}, t('state.' + x.from)), h('td', {}, t('state.' + x.to)), h('td', {}, x.reason ? t('reason.' + x.reason) : ''))));
    } catch (e) {
      toast(errorText(e), 'error');
    }
  }

  refreshHealth();
  const timer = setInterval(refreshHealth, 10000);
  const close = watchStates(cam.district, (tr) => {
    if (tr.camera_id === id) refreshHealth();
  });
  return () => {
    clearInterval(timer);
    close();
  };
}
