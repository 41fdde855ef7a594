// SVG charts for rates in [0, 1] against a target: grouped bars and a
// line over days. No library: a few dozen elements each.

import { pct } from './dom.js';

const NS = 'http://www.w3.org/2000/svg';
function el(tag, attrs, text) {
  const e = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  if (text !== undefined) e.textContent = text;
  return e;
}

export const COLORS = ['#1a73e8', '#e8710a', '#137333', '#a142f4'];

/** Scale of the y axis: from a floor under the lowest value (rates near
 * 100 % would otherwise all look alike) to 100 %. */
function floorOf(values) {
  const lo = Math.min(1, ...values.filter((v) => v !== null && v !== undefined));
  return Math.max(0, Math.floor((lo - 0.05) * 10) / 10);
}

function frame(svg, w, h, pad, floor) {
  for (let i = 0; i <= 4; i++) {
    const v = floor + ((1 - floor) * i) / 4;
    const y = pad.top + (h - pad.top - pad.bottom) * (1 - i / 4);
    svg.append(el('line', { x1: pad.left, x2: w - pad.right, y1: y, y2: y, stroke: '#e0e3e7' }));
    svg.append(el('text', { x: pad.left - 4, y: y + 4, 'text-anchor': 'end' }, pct(v)));
  }
}

/** Grouped bars: `groups` [{label, values: [v per series], target}],
 * `series` names. The target is a dark tick across each group. */
export function barChart({ title, groups, series }) {
  const w = 560, hgt = 240, pad = { top: 24, right: 8, bottom: 46, left: 48 };
  const svg = el('svg', { viewBox: `0 0 ${w} ${hgt}`, class: 'chart', role: 'img', 'aria-label': title });
  svg.append(el('title', {}, title));
  const all = groups.flatMap((g) => [...g.values, g.target]);
  const floor = floorOf(all);
  frame(svg, w, hgt, pad, floor);
  const y = (v) => pad.top + (hgt - pad.top - pad.bottom) * (1 - (v - floor) / (1 - floor));
  const gw = (w - pad.left - pad.right) / Math.max(1, groups.length);
  const bw = Math.min(24, (gw * 0.8) / series.length);
  groups.forEach((g, i) => {
    const x0 = pad.left + gw * i + (gw - bw * series.length) / 2;
    g.values.forEach((v, s) => {
      if (v === null || v === undefined) return;
      const top = y(Math.max(floor, v));
      const r = el('rect', { x: x0 + bw * s, y: top, width: bw - 2, height: hgt - pad.bottom - top, fill: COLORS[s % COLORS.length] });
      r.append(el('title', {}, `${g.label} · ${series[s]}: ${pct(v)}`));
      svg.append(r);
    });
    if (g.target !== null && g.target !== undefined) {
      svg.append(el('line', { x1: x0 - 3, x2: x0 + bw * series.length + 1, y1: y(g.target), y2: y(g.target), stroke: '#202124', 'stroke-width': 2 }));
    }
    const label = g.label.length > 6 ? g.label.slice(0, 6) + '…' : g.label;
    svg.append(el('text', { x: pad.left + gw * i + gw / 2, y: hgt - pad.bottom + 14, 'text-anchor': 'middle' }, label));
  });
  return svg;
}

/** A line per series over `labels` (days), with the target dashed. */
export function lineChart({ title, labels, series, target }) {
  const w = 560, hgt = 240, pad = { top: 24, right: 8, bottom: 30, left: 48 };
  const svg = el('svg', { viewBox: `0 0 ${w} ${hgt}`, class: 'chart', role: 'img', 'aria-label': title });
  svg.append(el('title', {}, title));
  const floor = floorOf([...series.flatMap((s) => s.values), target]);
  frame(svg, w, hgt, pad, floor);
  const x = (i) => pad.left + ((w - pad.left - pad.right) * (i + 0.5)) / labels.length;
  const y = (v) => pad.top + (hgt - pad.top - pad.bottom) * (1 - (Math.max(floor, v) - floor) / (1 - floor));
  if (target !== null && target !== undefined) {
    svg.append(el('line', { x1: pad.left, x2: w - pad.right, y1: y(target), y2: y(target), stroke: '#202124', 'stroke-dasharray': '5 4' }));
  }
  series.forEach((s, k) => {
    const pts = s.values.map((v, i) => (v === null || v === undefined ? null : [x(i), y(v)])).filter(Boolean);
    if (pts.length > 1) svg.append(el('polyline', { points: pts.map((p) => p.join(',')).join(' '), fill: 'none', stroke: COLORS[k % COLORS.length], 'stroke-width': 2 }));
    s.values.forEach((v, i) => {
      if (v === null || v === undefined) return;
      const c = el('circle', { cx: x(i), cy: y(v), r: 3.5, fill: COLORS[k % COLORS.length] });
      c.append(el('title', {}, `${labels[i]} · ${s.name}: ${pct(v)}`));
      svg.append(c);
    });
  });
  labels.forEach((l, i) => svg.append(el('text', { x: x(i), y: hgt - 10, 'text-anchor': 'middle' }, l)));
  return svg;
}
