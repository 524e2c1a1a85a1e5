// The statistics tab: counters and rates for a range of days in the user's region, the daily
// trend, a breakdown by the chosen grouping, the status mix and the problems that keep coming back.

import { api, errorText } from "./api.js";
import { barChart, lineChart } from "./charts.js";
import { fill, h } from "./dom.js";
import { formatPercent, formatTime, getLang, t, tr } from "./i18n.js";

const GROUPS = ["category", "source", "status", "region", "team"];
const TILES = ["filed", "dispatched", "handled", "closed", "closure_rate", "on_time_rate", "overdue", "overdue_open"];
const REFRESH_AFTER_CHANGE_MS = 5000; // case changes arrive in bursts: refresh at most this often

function isoDay(d) {
  return d.toISOString().slice(0, 10);
}

/** The statistics panel. */
export class StatsPanel {
  constructor(panel) {
    this.panel = panel;
    this.data = null;
    this.top = null;
    this.categories = new Map();
    this.query = { from: "", to: "", group_by: "category" };
    this.refreshTimer = null;
    this.error = h("p", { class: "error", role: "alert", dataset: { testid: "stats-error" } });
    this.controls = h("form", { class: "row stats-controls", dataset: { testid: "stats-controls" } });
    this.body = h("div", { class: "stats-body", dataset: { testid: "stats-body" } });
    fill(panel, h("div", { class: "stats" }, this.controls, this.error, this.body));
    this.render();
  }

  async load() {
    const q = new URLSearchParams({ group_by: this.query.group_by });
    if (this.query.from) q.set("from", this.query.from);
    if (this.query.to) q.set("to", this.query.to);
    try {
      const [data, top, categories] = await Promise.all([
        api(`/api/v1/stats?${q}`),
        api(`/api/v1/stats/top?${q}`),
        this.categories.size ? null : api("/api/v1/categories").catch(() => []),
      ]);
      if (categories) this.categories = new Map(categories.map((c) => [c.code, c]));
      this.data = data;
      this.top = top;
      this.query.from = data.from;
      this.query.to = data.to;
      this.error.textContent = "";
      this.render();
    } catch (err) {
      this.error.textContent = errorText(err);
    }
  }

  /** A case changed somewhere: the numbers are stale; refresh soon (once per burst). */
  onCaseChanged() {
    if (this.refreshTimer || this.panel.hidden) return;
    this.refreshTimer = setTimeout(() => {
      this.refreshTimer = null;
      this.load();
    }, REFRESH_AFTER_CHANGE_MS);
  }

  _name(key) {
    const g = this.data ? this.data.group_by : this.query.group_by;
    if (g === "category") {
      const cat = this.categories.get(key);
      if (cat) return getLang() === "en" ? cat.name_en : cat.name_zh;
      return tr("category", key);
    }
    if (g === "source") return tr("source", key);
    if (g === "status") return tr("status", key);
    if (g === "team") {
      const group = (this.data?.groups || []).find((x) => x.key === key);
      return key === "-" ? t("stats.no_team") : (group && group.name) || `#${key}`;
    }
    return key;
  }

  render() {
    this._renderControls();
    if (!this.data) {
      fill(this.body, h("p", { class: "muted" }, t("loading")));
      return;
    }
    const d = this.data;
    const totals = d.totals;
    const tiles = h("div", { class: "stat-tiles" }, TILES.map((key) => {
      const v = totals[key];
      const shown = key.endsWith("_rate") ? (v === null ? t("none") : formatPercent(v)) : String(v);
      return h("div", { class: "stat-tile", dataset: { testid: `stats-total-${key}`, value: String(v) } },
        h("span", { class: "stat-value" }, shown), h("span", { class: "stat-label" }, t(`stats.${key}`)));
    }));
    const labels = d.daily.map((x) => x.day.slice(5));
    const trend = lineChart(labels, ["filed", "dispatched", "closed"].map((name) => ({
      name, label: t(`stats.${name}`), values: d.daily.map((x) => x[name]),
    })), { title: t("stats.daily") });
    const grouped = d.group_by === "status"
      ? barChart(d.groups.map((g) => ({ label: this._name(g.key), values: { cases: g.cases } })),
        [{ name: "cases", label: t("stats.cases") }], { title: t("stats.by_group") })
      : barChart(d.groups.map((g) => ({ label: this._name(g.key), values: g })),
        ["filed", "closed", "overdue"].map((name) => ({ name, label: t(`stats.${name}`) })), { title: t("stats.by_group") });
    const statusRows = Object.entries(d.by_status).sort((a, b) => b[1] - a[1])
      .map(([status, n]) => ({ label: tr("status", status), values: { cases: n } }));
    const empty = totals.filed === 0 && totals.dispatched === 0 && totals.closed === 0 && !statusRows.length;
    fill(this.body,
      h("p", { class: "muted" }, t("stats.range", { from: d.from, to: d.to })),
      tiles,
      empty ? h("p", { class: "empty" }, t("stats.empty")) : null,
      h("section", { class: "card stats-card", dataset: { testid: "stats-trend" } }, h("h3", {}, t("stats.daily")), trend),
      h("section", { class: "card stats-card", dataset: { testid: "stats-groups" } }, h("h3", {}, t("stats.by_group")), grouped,
        this._table(d)),
      h("section", { class: "card stats-card", dataset: { testid: "stats-status" } }, h("h3", {}, t("stats.by_status")),
        statusRows.length ? barChart(statusRows, [{ name: "cases", label: t("stats.cases") }], { title: t("stats.by_status") })
          : h("p", { class: "muted" }, t("none"))),
      h("section", { class: "card stats-card", dataset: { testid: "stats-top" } }, h("h3", {}, t("stats.top")), this._top()));
  }

  _renderControls() {
    const from = h("input", { type: "date", class: "input", value: this.query.from, dataset: { testid: "stats-from" }, "aria-label": t("stats.from") });
    const to = h("input", { type: "date", class: "input", value: this.query.to, dataset: { testid: "stats-to" }, "aria-label": t("stats.to") });
    const group = h("select", { class: "input", dataset: { testid: "stats-group" }, "aria-label": t("stats.group_by") },
      GROUPS.map((g) => h("option", { value: g, selected: g === this.query.group_by }, t(`group.${g}`))));
    const quick = (days) => h("button", { type: "button", class: "chip", onclick: () => {
      const end = new Date();
      this.query.to = isoDay(end);
      this.query.from = isoDay(new Date(end.getTime() - (days - 1) * 86400000));
      this.load();
    } }, t("stats.last_days", { n: days }));
    const show = h("button", { type: "submit", class: "btn btn-primary", dataset: { testid: "stats-apply" } }, t("stats.apply"));
    fill(this.controls, h("label", { class: "row" }, h("span", {}, t("stats.from")), from),
      h("label", { class: "row" }, h("span", {}, t("stats.to")), to),
      h("label", { class: "row" }, h("span", {}, t("stats.group_by")), group), show, quick(7), quick(30), quick(365));
    this.controls.onsubmit = (ev) => {
      ev.preventDefault();
      this.query = { from: from.value, to: to.value, group_by: group.value };
      this.load();
    };
  }

  _table(d) {
    const cols = d.group_by === "status" ? ["cases", "overdue_open"]
      : ["filed", "dispatched", "handled", "closed", "closure_rate", "on_time_rate", "overdue"];
    const cell = (g, c) => (c.endsWith("_rate") ? (g[c] === null ? t("none") : formatPercent(g[c])) : String(g[c] ?? 0));
    return h("table", { class: "stats-table", dataset: { testid: "stats-table" } },
      h("thead", {}, h("tr", {}, h("th", {}, t(`group.${d.group_by}`)), cols.map((c) => h("th", {}, t(`stats.${c}`))))),
      h("tbody", {}, d.groups.map((g) => h("tr", { dataset: { testid: "stats-row", key: g.key } },
        h("td", {}, this._name(g.key)), cols.map((c) => h("td", { dataset: { col: c } }, cell(g, c)))))));
  }

  _top() {
    const problems = (this.top && this.top.problems) || [];
    if (!problems.length) return h("p", { class: "muted" }, t("stats.top_empty"));
    const cat = (code) => {
      const c = this.categories.get(code);
      return c ? (getLang() === "en" ? c.name_en : c.name_zh) : tr("category", code);
    };
    return h("ol", { class: "top-problems" }, problems.map((p) => h("li", { dataset: { testid: "stats-top-item" } },
      h("strong", {}, cat(p.category)), " · ",
      p.camera_id ? `${t("stats.camera", { id: p.camera_id })} ${p.location || ""}` : p.location || t("none"), " · ",
      t("stats.top_row", { n: p.cases, open: p.open }), " · ", formatTime(p.last_at))));
  }

  close() {
    clearTimeout(this.refreshTimer);
    this.refreshTimer = null;
  }
}
