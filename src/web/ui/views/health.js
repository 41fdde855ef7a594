// The health dashboard of a district: the online rate now and the
// availability of each of the last 7 days against target, per child
// district and per point class, as charts; the cameras offline longest and
// the districts furthest below target, linked to their pages.

import { h, mount, pct, rateClass, when } from '../dom.js';
import { t } from '../i18n.js';
import { api, qs } from '../api.js';
import { href, errorText } from '../app.js';
import { districtTree } from '../tree.js';
import { barChart, lineChart, COLORS } from '../charts.js';

const DAYS = 7;

/** `YYYY-MM-DD` minus `n` days (calendar arithmetic in UTC). */
function minusDays(day, n) {
  const d = new Date(day + 'T00:00:00Z');
  d.setUTCDate(d.getUTCDate() - n);
  return d.toISOString().slice(0, 10);
}

/** Availability over several days: up time over observed time. */
function overDays(groups) {
  let up = 0, seen = 0;
  for (const g of groups) {
    if (g && g.availability !== null && g.availability !== undefined) {
      up += g.availability * g.observed_secs;
      seen += g.observed_secs;
    }
  }
  return seen > 0 ? up / seen : null;
}

export function show(view, r) {
  const treeBox = h('div', { class: 'tree card' });
  const board = h('section', { id: 'dashboard', 'aria-live': 'polite' }, h('p', { class: 'loading' }, t('loading')));
  mount(view, h('div', { class: 'split' }, treeBox, board));
  let shown = null;

  async function load(d) {
    shown = d.code;
    mount(board, h('h1', {}, t('health.title', { name: d.name })), h('p', { class: 'loading' }, t('loading')));
    let today, days;
    try {
      today = await api('/health/summary' + qs({ district: d.code }));
      const past = await Promise.all(
        Array.from({ length: DAYS - 1 }, (_, i) => api('/health/summary' + qs({ district: d.code, day: minusDays(today.day, DAYS - 1 - i) }))),
      );
      days = [...past, today];
    } catch (e) {
      mount(board, h('p', { class: 'error' }, errorText(e)));
      return;
    }
    if (shown !== d.code) return;
    const s = today.district;
    const kpi = (key, value, cls) => h('div', { class: 'kpi' }, h('span', { class: 'muted' }, t(key)), h('b', { class: cls || '' }, value));
    const labels = days.map((x) => x.day.slice(5));

    // Per child district and per point class: now, and over the 7 days.
    const byCode = (list, key) => new Map(list.map((g) => [g[key], g]));
    const childDays = days.map((x) => byCode(x.children, 'code'));
    const children = today.children.filter((c) => c.total > 0).map((c) => ({
      ...c, week: overDays(childDays.map((m) => m.get(c.code))),
    }));
    const classDays = days.map((x) => byCode(x.point_classes, 'point_type'));
    const classes = today.point_classes.filter((c) => c.total > 0).map((c) => ({
      ...c, week: overDays(classDays.map((m) => m.get(c.point_type))),
    }));
    const below = children.filter((c) => c.week !== null && c.target !== null && c.week < c.target)
      .sort((a, b) => (a.week - a.target) - (b.week - b.target));
    const series = [t('health.online_now'), t('health.availability_7d')];
    const legend = h('div', { class: 'legend' },
      series.map((n, i) => h('span', {}, h('i', { style: { background: COLORS[i] } }), n)),
      h('span', {}, h('i', { style: { background: '#202124' } }), t('health.target')));

    mount(board,
      h('h1', {}, t('health.title', { name: s.name || t('health.all') })),
      h('div', { class: 'kpis' },
        kpi('health.cameras', `${s.total}`),
        kpi('health.online', `${s.online} / ${s.enabled}`),
        kpi('health.online_rate', pct(s.online_rate), 'rate ' + rateClass(s.online_rate, s.target)),
        kpi('health.availability_today', pct(s.availability), 'rate ' + rateClass(s.availability, s.target))),
      legend,
      h('div', { class: 'charts' },
        h('figure', { id: 'chart-days' }, h('figcaption', {}, t('health.by_day')),
          lineChart({ title: t('health.by_day'), labels, target: s.target, series: [{ name: t('health.availability'), values: days.map((x) => x.district.availability) }] })),
        h('figure', { id: 'chart-classes' }, h('figcaption', {}, t('health.by_class')),
          barChart({ title: t('health.by_class'), series, groups: classes.map((c) => ({ label: t('point_type.' + c.point_type), values: [c.online_rate, c.week], target: c.target })) })),
        children.length > 0 && h('figure', { id: 'chart-children', class: 'wide' }, h('figcaption', {}, t('health.by_child')),
          barChart({ title: t('health.by_child'), series, groups: children.map((c) => ({ label: c.name, values: [c.online_rate, c.week], target: c.target })) }))),
      h('div', { class: 'charts' },
        h('section', {}, h('h2', {}, t('health.offline_longest', { count: today.offline_total })),
          h('table', { class: 'grid', id: 'offline-longest' },
            h('thead', {}, h('tr', {}, ['col.name', 'col.district', 'health.since', 'col.reason'].map((k) => h('th', { scope: 'col' }, t(k))))),
            h('tbody', {}, today.offline_longest.length
              ? today.offline_longest.map((c) => h('tr', {},
                h('td', {}, h('a', { href: href('camera', c.camera_id) }, c.name)),
                h('td', {}, c.district), h('td', {}, when(c.since)), h('td', {}, c.reason ? t('reason.' + c.reason) : '')))
              : h('tr', {}, h('td', { colspan: 4, class: 'muted' }, t('health.none_offline')))))),
        h('section', {}, h('h2', {}, t('health.below_target')),
          h('table', { class: 'grid', id: 'below-target' },
            h('thead', {}, h('tr', {}, ['col.district', 'health.availability_7d', 'health.target'].map((k) => h('th', { scope: 'col' }, t(k))))),
            h('tbody', {}, below.length
              ? below.map((c) => h('tr', {},
                h('td', {}, h('a', { href: href('health', null, { d: c.code }) }, c.name)),
                h('td', {}, h('span', { class: 'rate ' + rateClass(c.week, c.target) }, pct(c.week))), h('td', {}, pct(c.target))))
              : h('tr', {}, h('td', { colspan: 3, class: 'muted' }, t('health.none_below'))))))),
      h('p', { class: 'muted' }, t('health.note', { offset: today.utc_offset, until: when(today.observed_until) })));
  }

  const tree = districtTree(treeBox, { selected: r.params.d || null, onSelect: load });
  tree.ready
    .then(() => shown === null && load({ code: '', name: t('health.all') }))
    .catch((e) => mount(board, h('p', { class: 'error' }, errorText(e))));
}
