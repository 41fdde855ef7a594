// The login page: username and password for a session cookie.

import { h } from '../dom.js';
import { t } from '../i18n.js';
import { api } from '../api.js';
import { session, errorText, render } from '../app.js';

export function show(view, r) {
  const user = h('input', { id: 'username', name: 'username', autocomplete: 'username', required: true });
  const pass = h('input', { id: 'password', name: 'password', type: 'password', autocomplete: 'current-password', required: true });
  const msg = h('p', { class: 'error', role: 'alert', id: 'login-error' });
  const form = h(
    'form',
    {
      class: 'login card',
      onsubmit: async (ev) => {
        ev.preventDefault();
        msg.textContent = '';
        try {
          await api('/auth/login', { method: 'POST', json: { username: user.value, password: pass.value } });
          session.me = await api('/auth/me');
          const next = r.params.next && r.params.next.startsWith('#/') && !r.params.next.startsWith('#/login') ? r.params.next : '#/catalogue';
          if (location.hash === next) render();
          else location.hash = next;
        } catch (e) {
          msg.textContent = e.code === 'bad_credentials' ? t('login.bad') : errorText(e);
          pass.select();
        }
      },
    },
    h('h1', {}, t('login.title')),
    h('label', { for: 'username' }, t('login.username')),
    user,
    h('label', { for: 'password' }, t('login.password')),
    pass,
    msg,
    h('button', { type: 'submit', class: 'primary' }, t('login.submit')),
  );
  view.append(form);
  user.focus();
}
