// Import: choose a CSV, see the dry run's report (each bad row's line,
// column and message), then confirm to import. Imports are all or nothing.
// Also the template (Chinese headers) and an export of the catalogue.

import { h, mount } from '../dom.js';
import { t } from '../i18n.js';
import { api } from '../api.js';
import { errorText, href, problemText } from '../app.js';

export function show(view) {
  const file = h('input', { type: 'file', id: 'csv-file', accept: '.csv,text/csv', 'aria-label': t('import.file') });
  const report = h('div', { id: 'import-report', 'aria-live': 'polite' });
  const confirm = h('button', { type: 'button', id: 'import-confirm', class: 'primary', disabled: true }, t('import.confirm'));
  let body = null;

  mount(view,
    h('h1', {}, t('import.title')),
    h('p', {}, t('import.intro')),
    h('div', { class: 'filters' },
      h('a', { id: 'template', href: '/api/v1/cameras/export?format=csv&lang=zh&template=true' }, t('import.template')),
      ' · ',
      h('a', { id: 'export-all', href: '/api/v1/cameras/export?format=csv&lang=zh' }, t('import.export')),
      ' · ',
      h('a', { href: href('catalogue') }, t('import.export_selection'))),
    h('div', { class: 'dropzone' }, h('label', { for: 'csv-file' }, t('import.choose')), ' ', file),
    report,
    confirm);

  file.addEventListener('change', async () => {
    confirm.disabled = true;
    const f = file.files[0];
    if (!f) return;
    body = await f.arrayBuffer();
    mount(report, h('p', { class: 'loading' }, t('import.checking')));
    try {
      const r = await api('/cameras/import?dry_run=true', { method: 'POST', body, contentType: 'text/csv' });
      show_report(r);
    } catch (e) {
      mount(report, h('p', { class: 'error' }, errorText(e)));
    }
  });

  confirm.addEventListener('click', async () => {
    confirm.disabled = true;
    mount(report, h('p', { class: 'loading' }, t('import.importing')));
    try {
      const r = await api('/cameras/import', { method: 'POST', body, contentType: 'text/csv' });
      mount(report, h('p', { class: 'ok', id: 'import-done' }, t('import.done', { created: r.created, updated: r.updated })));
      file.value = '';
    } catch (e) {
      if (e.body && e.body.error && e.body.error.report) show_report(e.body.error.report);
      else mount(report, h('p', { class: 'error' }, errorText(e)));
    }
  });

  function show_report(r) {
    const bad = new Set(r.errors.map((e) => e.line)).size;
    if (!r.errors.length) {
      mount(report, h('p', { id: 'import-ok' }, t('import.dry_ok', { rows: r.rows, created: r.created, updated: r.updated })));
      confirm.disabled = false;
      return;
    }
    mount(report,
      h('p', { class: 'error', id: 'import-bad' }, t('import.dry_bad', { rows: r.rows, bad, problems: r.errors.length })),
      h('table', { class: 'grid report', id: 'import-errors' },
        h('thead', {}, h('tr', {}, ['import.line', 'import.column', 'import.message'].map((k) => h('th', { scope: 'col' }, t(k))))),
        h('tbody', {}, r.errors.map((e) => h('tr', {},
          h('td', {}, String(e.line)),
          h('td', {}, e.column ? `${e.column}${e.column_index ? ` (${e.column_index})` : ''}` : '–'),
          h('td', { class: 'msg' }, problemText(e.code, null, e.message)))))));
  }
}
