// The operator UI: a hash router over the views in views/, the header with
// navigation for the user's role, the language switch and the session.

import { h, mount } from './dom.js';
import { t, has, initI18n, setLang, currentLang } from './i18n.js';
import { api, setUnauthorizedHandler } from './api.js';

const VIEWS = {
  login: () => import('./views/login.js'),
  catalogue: () => import('./views/catalogue.js'),
  camera: () => import('./views/camera.js'),
  checkpoints: () => import('./views/checkpoints.js'),
  checkpoint: () => import('./views/checkpoints.js'),
  wall: () => import('./views/wall.js'),
  health: () => import('./views/health.js'),
  import: () => import('./views/import.js'),
};

/** The signed-in principal ({principal, role, scope}) or null. */
export const session = { me: null };

const RANK = { viewer: 1, operator: 2, admin: 3 };
/** Whether the user has at least `role`. */
export function can(role) {
  return !!session.me && RANK[session.me.role] >= RANK[role];
}

/** The current route: {name, arg, params}. `#/camera/ID?x=1` gives
 * {name: 'camera', arg: 'ID', params: {x: '1'}}. */
export function route() {
  const raw = location.hash.replace(/^#\/?/, '');
  const [path, query] = raw.split('?');
  const [name, ...rest] = path.split('/');
  return {
    name: name || 'catalogue',
    arg: rest.length ? decodeURIComponent(rest.join('/')) : null,
    params: Object.fromEntries(new URLSearchParams(query || '')),
  };
}

/** Navigates to `#/name/arg?params`. */
export function go(name, arg, params) {
  let s = '#/' + name;
  if (arg) s += '/' + encodeURIComponent(arg);
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params || {})) if (v !== null && v !== undefined && v !== '') q.set(k, v);
  if ([...q].length) s += '?' + q.toString();
  if (location.hash === s) render();
  else location.hash = s;
}

/** A link to a route. */
export function href(name, arg, params) {
  let s = '#/' + name;
  if (arg) s += '/' + encodeURIComponent(arg);
  const q = new URLSearchParams(params || {});
  if ([...q].length) s += '?' + q.toString();
  return s;
}

/** A short message at the bottom of the screen. */
export function toast(text, kind = 'info') {
  const el = document.getElementById('toast');
  mount(el, h('div', { class: 'toast ' + kind }, text));
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => el.replaceChildren(), 5000);
}

/** A field's problem (an import row's, or a failed validation's): the
 * field's name and the code's translation, then the server's details
 * (which name the values at fault, in English). */
export function problemText(code, field, message) {
  const label = has('rowerr.' + code) ? t('rowerr.' + code) : null;
  const name = field && has('col.' + field) ? t('col.' + field) : null;
  const head = name && label ? t('problem.field', { name, label }) : name || label;
  return head ? t('problem.detail', { head, detail: message }) : message;
}

/** The message for an API error: its code's translation when there is
 * one, else the server's message. */
export function errorText(e) {
  const key = 'error.' + (e.code || '');
  const s = t(key);
  return s === key ? e.message : s;
}

let current = null; // the mounted view's cleanup function

function header() {
  const top = document.getElementById('top');
  const r = route();
  const nav = [
    ['catalogue', 'nav.catalogue', 'viewer'],
    ['checkpoints', 'nav.checkpoints', 'viewer'],
    ['wall', 'nav.wall', 'viewer'],
    ['health', 'nav.health', 'viewer'],
    ['import', 'nav.import', 'operator'],
  ];
  const active = (n) => r.name === n || (n === 'catalogue' && r.name === 'camera') || (n === 'checkpoints' && r.name === 'checkpoint');
  mount(
    top,
    h('div', { class: 'brand' }, t('app.title')),
    session.me &&
      h(
        'nav',
        { 'aria-label': t('nav.label') },
        nav
          .filter(([, , role]) => can(role))
          .map(([name, key]) =>
            h('a', { href: href(name), class: active(name) ? 'active' : null, 'aria-current': active(name) ? 'page' : null, dataset: { nav: name } }, t(key)),
          ),
      ),
    h(
      'div',
      { class: 'who' },
      session.me &&
        h('span', { class: 'me', title: session.me.principal }, `${session.me.principal.replace(/^user:/, '')} · ${t('role.' + session.me.role)}${session.me.scope ? ' · ' + session.me.scope : ''}`),
      h(
        'button',
        {
          type: 'button',
          id: 'lang',
          lang: currentLang() === 'en' ? 'zh-CN' : 'en',
          onclick: async () => {
            await setLang(currentLang() === 'en' ? 'zh-CN' : 'en');
            render();
          },
        },
        currentLang() === 'en' ? '中文' : 'English',
      ),
      session.me &&
        h(
          'button',
          {
            type: 'button',
            id: 'logout',
            onclick: async () => {
              try {
                await api('/auth/logout', { method: 'POST' });
              } finally {
                session.me = null;
                go('login');
              }
            },
          },
          t('nav.logout'),
        ),
    ),
  );
}

/** Renders the current route. */
export async function render() {
  if (current) {
    try {
      current();
    } catch (e) {
      console.error(e);
    }
    current = null;
  }
  const r = route();
  if (!session.me && r.name !== 'login') {
    try {
      session.me = await api('/auth/me');
    } catch {
      location.replace('#/login?next=' + encodeURIComponent(location.hash));
      return;
    }
  }
  header();
  const view = document.getElementById('view');
  const load = VIEWS[r.name];
  if (!load) {
    mount(view, h('p', { class: 'error' }, t('error.no_page')));
    return;
  }
  const mod = await load();
  document.title = `${t('title.' + r.name)} · camgate`;
  view.replaceChildren();
  current = (await mod.show(view, r)) || null;
}

setUnauthorizedHandler(() => {
  session.me = null;
  if (route().name !== 'login') location.replace('#/login?next=' + encodeURIComponent(location.hash));
});

async function start() {
  await initI18n();
  window.addEventListener('hashchange', render);
  await render();
}

start();
