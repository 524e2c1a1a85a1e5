// The admin's view of the analytics hub: model, worker pool and counts (GET /api/v1/analytics/workers).

import { api, errorText } from "./api.js";
import { fill, h } from "./dom.js";
import { t } from "./i18n.js";

const REFRESH_MS = 10_000; // while the page is open: a worker dying or rejoining shows within this

/** A table of the analytics workers the hub knows, with a one-line summary of what it did. */
export class WorkerStatus {
  constructor(parent) {
    this.status = null;
    this.error = h("p", { class: "error", role: "alert" });
    this.summary = h("p", { class: "muted", dataset: { testid: "analytics-summary" } });
    this.table = h("table", { class: "table", dataset: { testid: "worker-table" } });
    this.root = h("div", { class: "workers" },
      h("h2", {}, t("workers.title")), this.error, this.summary, h("div", { class: "table-wrap" }, this.table));
    parent.append(this.root);
    this.timer = setInterval(() => {
      if (document.visibilityState === "visible" && !this.root.closest("[hidden]")) this.load();
    }, REFRESH_MS);
  }

  async load() {
    try {
      this.status = await api("/api/v1/analytics/workers");
      this.error.textContent = "";
    } catch (err) {
      this.error.textContent = errorText(err);
    }
    this.render();
  }

  render() {
    this.root.querySelector("h2").textContent = t("workers.title");
    const s = this.status;
    if (!s) {
      this.summary.textContent = "";
      fill(this.table);
      return;
    }
    const c = s.counts;
    this.summary.textContent = t("workers.summary", {
      model: s.model, imgsz: s.imgsz, precision: s.precision, ready: s.workers.filter((w) => w.ready).length,
      workers: s.workers.length, cameras: s.cameras, waiting: s.cameras_waiting, analysed: c.frames_analysed,
      gated: c.frames_gated, retried: c.jobs_retried, lost: c.jobs_lost, flags: c.flags_raised,
    });
    const head = ["workers.worker", "workers.host", "workers.runtime", "workers.state", "workers.answered", "workers.rtt"];
    const rows = s.workers.map((w) => {
      const state = !w.ready ? "loading" : w.busy ? "busy" : "idle";
      return h("tr", { dataset: { testid: "worker-row", state } },
        h("td", { class: "mono" }, w.label),
        h("td", {}, w.host),
        h("td", { class: "mono" }, w.runtime || t("none")),
        h("td", {}, t(`workers.${state}`)),
        h("td", {}, String(w.answered)),
        h("td", {}, w.rtt_ms === null ? t("none") : `${Math.round(w.rtt_ms)} ms`));
    });
    fill(
      this.table,
      h("thead", {}, h("tr", {}, head.map((k) => h("th", { scope: "col" }, t(k))))),
      h("tbody", {}, rows.length ? rows : [h("tr", {}, h("td", { colspan: String(head.length), class: "empty" }, t("workers.none")))]),
    );
  }

  close() {
    clearInterval(this.timer);
  }
}
