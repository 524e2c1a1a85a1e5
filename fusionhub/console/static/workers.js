// The admin's view of the analytics hub: model, worker pool and counts (GET /api/v1/analytics/workers).

import { api, errorText } from "./api.js";
import { fill, h } from "./dom.js";
import { t } from "./i18n.js";

const REFRESH_MS = 10_000; // while the page is open: a worker dying or rejoining shows within this

/** A table of the analytics workers the hub knows, a one-line summary of what it did, and whether
 * it keeps up (over the last minute): a hub past its capacity analyses each camera less often and
 * flags late, which nothing else would show. `nameOf(id)` names a camera. */
export class WorkerStatus {
  constructor(parent, nameOf = (id) => `#${id}`) {
    this.status = null;
    this.nameOf = nameOf;
    this.error = h("p", { class: "error", role: "alert" });
    this.loadLine = h("p", { dataset: { testid: "analytics-load" } });
    this.summary = h("p", { class: "muted", dataset: { testid: "analytics-summary" } });
    this.table = h("table", { class: "table", dataset: { testid: "worker-table" } });
    this.root = h("div", { class: "workers" },
      h("h2", {}, t("workers.title")), this.error, this.loadLine, this.summary, h("div", { class: "table-wrap" }, this.table));
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
      this.loadLine.textContent = "";
      fill(this.table);
      return;
    }
    this.renderLoad(s.load);
    const c = s.counts;
    this.summary.textContent = t("workers.summary", {
      model: s.model, imgsz: s.imgsz, precision: s.precision, ready: s.workers.filter((w) => w.ready).length,
      workers: s.workers.length, cameras: s.cameras, waiting: s.cameras_waiting, analysed: c.frames_analysed,
      gated: c.frames_gated, retried: c.jobs_retried, lost: c.jobs_lost, flags: c.flags_raised,
    });
    const head = [
      "workers.worker", "workers.host", "workers.runtime", "workers.state", "workers.answered", "workers.rtt", "workers.batch",
    ];
    const rows = s.workers.map((w) => {
      const state = !w.ready ? "loading" : w.busy ? "busy" : "idle";
      return h("tr", { dataset: { testid: "worker-row", state } },
        h("td", { class: "mono" }, w.label),
        h("td", {}, w.host),
        h("td", { class: "mono" }, w.runtime || t("none")),
        h("td", {}, t(`workers.${state}`)),
        h("td", {}, String(w.answered)),
        h("td", {}, w.rtt_ms === null ? t("none") : `${Math.round(w.rtt_ms)} ms`),
        h("td", {}, t("workers.batch_of", { mean: w.batch_mean === null ? "–" : w.batch_mean.toFixed(1), most: w.batch })));
    });
    fill(
      this.table,
      h("thead", {}, h("tr", {}, head.map((k) => h("th", { scope: "col" }, t(k))))),
      h("tbody", {}, rows.length ? rows : [h("tr", {}, h("td", { colspan: String(head.length), class: "empty" }, t("workers.none")))]),
    );
  }

  renderLoad(load) {
    const seconds = Math.round(load.window_s);
    let text;
    if (load.state === "behind") {
      const reasons = load.reasons.map((r) => t(`workers.load.${r}`, {
        share: Math.round(load.superseded_share * 100), p99: load.sample_age_p99_s, failed: load.failed, sampled: load.sampled,
      }));
      const slowest = load.slowest.map((c) => t("workers.load.camera", {
        name: this.nameOf(c.camera_id), analysed: c.analysed_per_s.toFixed(2), sampled: c.sampled_per_s.toFixed(2),
      }));
      text = t("workers.load.behind", { seconds, reasons: reasons.join("; "), slowest: slowest.join(", ") });
    } else {
      text = t(`workers.load.${load.state}`, {
        seconds, sampled: load.sampled, share: Math.round(load.superseded_share * 100), p99: load.sample_age_p99_s ?? t("none"),
      });
    }
    this.loadLine.textContent = text;
    this.loadLine.dataset.state = load.state;
    this.loadLine.className = load.state === "behind" || load.state === "no_workers" ? "error" : "muted";
  }

  close() {
    clearInterval(this.timer);
  }
}
