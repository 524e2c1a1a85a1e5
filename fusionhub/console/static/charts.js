// Plain SVG charts drawn by hand (no libraries): a line chart of daily series and a horizontal
// bar chart. Colours come from CSS classes (series-<name>), text from the caller (translated).

const NS = "http://www.w3.org/2000/svg";

function svg(tag, attrs = {}, ...children) {
  const el = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) if (v !== null && v !== undefined) el.setAttribute(k, String(v));
  for (const child of children) if (child) el.append(child);
  return el;
}

function text(x, y, content, attrs = {}) {
  const el = svg("text", { x, y, ...attrs });
  el.textContent = content;
  return el;
}

/** A "nice" upper bound for an axis (1, 2, 5 × 10^n) at or above `max`. */
export function niceMax(max) {
  if (!(max > 0)) return 1;
  const base = 10 ** Math.floor(Math.log10(max));
  for (const step of [1, 2, 5, 10]) if (step * base >= max) return step * base;
  return 10 * base;
}

/**
 * Daily series as lines: `labels` (x axis, e.g. "03-10"), `series` [{name, label, values}].
 * Returns an <svg> with a legend; each line carries data-series for tests and styling.
 */
export function lineChart(labels, series, { title = "", width = 640, height = 220 } = {}) {
  const pad = { l: 40, r: 12, t: 12, b: 36 };
  const w = width - pad.l - pad.r;
  const hgt = height - pad.t - pad.b;
  const top = niceMax(Math.max(0, ...series.flatMap((s) => s.values)));
  const x = (i) => pad.l + (labels.length <= 1 ? w / 2 : (i * w) / (labels.length - 1));
  const y = (v) => pad.t + hgt - (v / top) * hgt;
  const root = svg("svg", { viewBox: `0 0 ${width} ${height}`, class: "chart", role: "img", "aria-label": title });
  for (const frac of [0, 0.5, 1]) {
    root.append(svg("line", { x1: pad.l, x2: pad.l + w, y1: y(top * frac), y2: y(top * frac), class: "grid" }));
    root.append(text(pad.l - 6, y(top * frac) + 4, String(Math.round(top * frac)), { "text-anchor": "end", class: "tick" }));
  }
  const every = Math.max(1, Math.ceil(labels.length / 8));
  labels.forEach((label, i) => {
    // every n-th day, and the last one unless it would sit on top of the one before
    const last = i === labels.length - 1 && i % every >= every / 2;
    if (i % every === 0 || last) {
      root.append(text(x(i), height - pad.b + 16, label, { "text-anchor": "middle", class: "tick" }));
    }
  });
  series.forEach((s, n) => {
    const points = s.values.map((v, i) => `${x(i).toFixed(1)},${y(v).toFixed(1)}`).join(" ");
    root.append(svg("polyline", { points, class: `line series-${s.name}`, "data-series": s.name }));
    if (s.values.length === 1) root.append(svg("circle", { cx: x(0), cy: y(s.values[0]), r: 3, class: `dot series-${s.name}` }));
    const lx = pad.l + n * 110;
    root.append(svg("rect", { x: lx, y: height - 12, width: 10, height: 10, class: `swatch series-${s.name}` }));
    root.append(text(lx + 14, height - 3, s.label, { class: "legend" }));
  });
  return root;
}

/**
 * Horizontal bars, one row per item: `rows` [{label, values: {name: n}}], `series` [{name, label}]
 * drawn side by side in each row. Each bar carries data-series and data-value.
 */
export function barChart(rows, series, { title = "", width = 640, barH = 14 } = {}) {
  const labelW = 170;
  const pad = { t: 8, b: 24, r: 48 };
  const rowH = series.length * barH + 10;
  const height = pad.t + rows.length * rowH + pad.b;
  const w = width - labelW - pad.r;
  const top = niceMax(Math.max(0, ...rows.flatMap((r) => series.map((s) => r.values[s.name] || 0))));
  const root = svg("svg", { viewBox: `0 0 ${width} ${height}`, class: "chart", role: "img", "aria-label": title });
  rows.forEach((row, i) => {
    const y0 = pad.t + i * rowH;
    const name = row.label.length > 22 ? `${row.label.slice(0, 21)}…` : row.label;
    root.append(text(labelW - 8, y0 + rowH / 2 + 2, name, { "text-anchor": "end", class: "tick" }));
    series.forEach((s, k) => {
      const v = row.values[s.name] || 0;
      const bw = Math.max(v > 0 ? 1 : 0, (v / top) * w);
      const by = y0 + k * barH + 4;
      root.append(svg("rect", { x: labelW, y: by, width: bw.toFixed(1), height: barH - 2, class: `bar series-${s.name}`,
        "data-series": s.name, "data-value": v }));
      root.append(text(labelW + bw + 4, by + barH - 4, String(v), { class: "value" }));
    });
  });
  series.forEach((s, n) => {
    const lx = labelW + n * 110;
    root.append(svg("rect", { x: lx, y: height - 12, width: 10, height: 10, class: `swatch series-${s.name}` }));
    root.append(text(lx + 14, height - 3, s.label, { class: "legend" }));
  });
  return root;
}
