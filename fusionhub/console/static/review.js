// The review queue: pending flags newest first, confirmed into cases or dismissed with a reason.

import { api, errorText } from "./api.js";
import { busy, cue, fill, h, loadAuthImage, notify } from "./dom.js";
import { formatPercent, formatTime, t, tr } from "./i18n.js";
import { flagClip, releaseClips } from "./clip.js";

function flagTitle(flag) {
  return `${tr("rule", flag.rule)} · ${tr("label", flag.label)}`;
}

/** The review queue panel. `canReview` (duty) shows Confirm and Dismiss; others read only. */
export class ReviewQueue {
  constructor(panel, { canReview, onCount = () => {} }) {
    this.panel = panel;
    this.canReview = canReview;
    this.onCount = onCount;
    this.flags = new Map(); // id -> Flag, pending only
    this.images = new Map(); // id -> <img> (kept across re-renders so evidence is fetched once)
    this.fresh = new Set(); // ids that arrived live and are still highlighted
    this.items = new Map(); // id -> <li>
    this.note = h("p", { class: "muted" });
    this.error = h("p", { class: "error", role: "alert" });
    this.empty = h("p", { class: "empty", dataset: { testid: "review-empty" } });
    this.list = h("ul", { class: "flag-list", "aria-live": "polite" });
    // per-rule precision from reviews: what review teaches about the analytics
    this.precision = h("p", { class: "precision muted", dataset: { testid: "precision" } });
    this.precisionRows = null;
    this.precisionTimer = null;
    // whether analytics keeps up: flags may come late, or not at all, and the reviewer should know.
    // Fetched when the queue loads (and after every reconnect), then again each time the hub says
    // its verdict changed (`analytics.load`).
    this.analytics = h("p", { class: "error", role: "status", hidden: true, dataset: { testid: "analytics-behind" } });
    this.loadFetch = null; // the fetch in flight, if any
    this.loadAgain = false; // another verdict came while it ran: fetch once more after it
    fill(panel, this.note, this.analytics, this.precision, this.error, this.empty, this.list);
    this.render();
  }

  /** `analytics.load`: the hub's verdict on whether analytics keeps up changed; the details
   * (which cameras lose most, named where this user may see them) come over REST. */
  onLoad() {
    this.loadAnalytics();
  }

  /** Fetches the load verdict; calls that come while one runs are folded into one more fetch. */
  loadAnalytics() {
    if (this.loadFetch) {
      this.loadAgain = true;
      return this.loadFetch;
    }
    this.loadFetch = this._fetchLoad().finally(() => {
      this.loadFetch = null;
      if (this.loadAgain) {
        this.loadAgain = false;
        this.loadAnalytics();
      }
    });
    return this.loadFetch;
  }

  async _fetchLoad() {
    let load;
    try {
      load = await api("/api/v1/analytics/load");
    } catch {
      return; // the queue works without it; the next verdict or reconnect tries again
    }
    const trouble = load.state === "behind" || load.state === "no_workers";
    this.analytics.hidden = !trouble;
    this.analytics.dataset.state = load.state;
    if (!trouble) return;
    if (load.state === "no_workers") {
      this.analytics.textContent = t("review.load.no_workers");
      return;
    }
    const cameras = load.slowest.map((c) => c.name);
    this.analytics.textContent = t("review.load.behind", { seconds: Math.round(load.window_s) })
      + (cameras.length ? ` ${t("review.load.cameras", { cameras: cameras.join(", ") })}` : "");
  }

  async loadPrecision() {
    try {
      const reply = await api("/api/v1/analytics/precision");
      this.precisionRows = reply.rules;
    } catch {
      this.precisionRows = null; // the queue works without it
    }
    this._renderPrecision();
  }

  _renderPrecision() {
    const rows = this.precisionRows;
    this.precision.hidden = rows === null;
    if (rows === null) return;
    const parts = rows
      .filter((r) => r.reviewed > 0)
      .map((r) => t("review.precision_rule", {
        rule: tr("rule", r.rule), pct: formatPercent(r.precision), confirmed: r.confirmed, reviewed: r.reviewed,
      }));
    this.precision.title = t("review.precision_title");
    this.precision.textContent = `${t("review.precision")}${t("colon")}${parts.length ? parts.join(" · ") : t("review.precision_none")}`;
  }

  async load() {
    this.loadPrecision();
    this.loadAnalytics();
    try {
      const flags = await api("/api/v1/flags?status=pending");
      this.flags = new Map(flags.map((f) => [String(f.id), f]));
      this.error.textContent = "";
      this.render();
    } catch (err) {
      this.error.textContent = errorText(err);
    }
  }

  /** `dispatch.flag_created`: a new flag appears at the top with a cue. */
  onCreated(flag) {
    const id = String(flag.id);
    if (flag.status && flag.status !== "pending") return;
    const isNew = !this.flags.has(id);
    this.flags.set(id, flag);
    if (!isNew && this.items.has(id)) {
      this.items.get(id).remove(); // rebuilt from the newer copy below
      this.items.delete(id);
    }
    if (isNew) {
      this.fresh.add(id);
      setTimeout(() => {
        this.fresh.delete(id);
        const el = this.list.querySelector(`[data-flag-id="${CSS.escape(id)}"]`);
        if (el) el.classList.remove("fresh");
      }, 8000);
      cue();
      notify(t("review.new", { camera: flag.camera_name || flag.camera_id, rule: tr("rule", flag.rule) }));
    }
    this.render();
  }

  /** `dispatch.flag_clip`: the flag's clip is ready (or missing); its item shows it. */
  onClip(flag) {
    const id = String(flag.id);
    if (!this.flags.has(id)) return;
    this.flags.set(id, { ...this.flags.get(id), ...flag });
    const li = this.items.get(id);
    if (li) {
      releaseClips(li);
      li.remove();
      this.items.delete(id);
    }
    this.render();
  }

  /** `dispatch.flag_reviewed`: someone confirmed or dismissed it; it leaves the queue. */
  onReviewed(flag) {
    this._remove(String(flag.id));
    // a burst of reviews refreshes the figures once
    clearTimeout(this.precisionTimer);
    this.precisionTimer = setTimeout(() => this.loadPrecision(), 500);
  }

  _remove(id) {
    if (this.flags.delete(id)) this.render();
  }

  _image(flag) {
    const id = String(flag.id);
    let img = this.images.get(id);
    if (!img) {
      img = h("img", { class: "evidence", dataset: { testid: "flag-evidence" }, alt: "" });
      this.images.set(id, img);
      loadAuthImage(img, flag.evidence_url || `/api/v1/flags/${encodeURIComponent(id)}/evidence.jpg`);
    }
    img.alt = `${t("flag.evidence")}: ${flagTitle(flag)}`;
    return img;
  }

  _item(flag) {
    const id = String(flag.id);
    const fields = h(
      "dl",
      { class: "fields" },
      h("dt", {}, t("flag.camera")), h("dd", { dataset: { testid: "flag-camera" } }, flag.camera_name || `#${flag.camera_id}`),
      h("dt", {}, t("flag.zone")), h("dd", {}, flag.zone_name || t("none")),
      h("dt", {}, t("flag.label")), h("dd", {}, tr("label", flag.label)),
      h("dt", {}, t("flag.confidence")), h("dd", {}, formatPercent(flag.confidence)),
      h("dt", {}, t("flag.time")), h("dd", {}, h("time", {}, formatTime(flag.raised_at))),
    );
    const body = h("div", { class: "flag-body" }, h("h3", {}, flagTitle(flag)), fields, flagClip(flag));
    if (this.canReview) body.append(this._actions(id));
    return h(
      "li",
      { class: `flag card${this.fresh.has(id) ? " fresh" : ""}`, dataset: { testid: "flag-item", flagId: id } },
      this._image(flag),
      body,
    );
  }

  _actions(id) {
    const error = h("p", { class: "error", role: "alert", dataset: { testid: "flag-error" } });
    const reason = h("input", {
      type: "text",
      maxLength: 2000,
      class: "input",
      dataset: { testid: "dismiss-reason" },
      "aria-label": t("flag.dismiss_reason"),
      placeholder: t("flag.dismiss_reason"),
    });
    const submit = h("button", { type: "submit", class: "btn btn-danger", dataset: { testid: "dismiss-submit" } }, t("flag.dismiss_submit"));
    const form = h("form", { class: "dismiss-form", hidden: true }, reason, submit);
    form.addEventListener("submit", (ev) => {
      ev.preventDefault();
      const text = reason.value.trim();
      if (!text) {
        error.textContent = t("flag.reason_required");
        reason.focus();
        return;
      }
      busy(submit, async () => {
        await api(`/api/v1/flags/${encodeURIComponent(id)}/dismiss`, { method: "POST", body: { reason: text } });
        notify(t("flag.dismissed"));
        this._remove(id);
      }, error);
    });
    const confirm = h("button", { type: "button", class: "btn btn-primary", dataset: { testid: "flag-confirm" } }, t("flag.confirm"));
    confirm.addEventListener("click", () =>
      busy(confirm, async () => {
        const reply = await api(`/api/v1/flags/${encodeURIComponent(id)}/confirm`, { method: "POST", body: {} });
        notify(t("flag.confirmed", { id: reply.case ? reply.case.id : "?" }));
        this._remove(id);
      }, error),
    );
    const dismiss = h("button", { type: "button", class: "btn", dataset: { testid: "flag-dismiss" }, "aria-expanded": "false" }, t("flag.dismiss"));
    dismiss.addEventListener("click", () => {
      form.hidden = !form.hidden;
      dismiss.setAttribute("aria-expanded", String(!form.hidden));
      error.textContent = "";
      if (!form.hidden) reason.focus();
    });
    return h("div", { class: "flag-actions" }, h("div", { class: "row" }, confirm, dismiss), form, error);
  }

  /** Sync the list with the flags; `full` rebuilds every item (language change). */
  render(full = false) {
    if (full) this._renderPrecision();
    this.note.textContent = this.canReview ? "" : t("review.readonly");
    this.note.hidden = this.canReview;
    this.empty.textContent = t("review.empty");
    this.empty.hidden = this.flags.size > 0;
    const flags = [...this.flags.values()].sort((a, b) => (b.raised_at || 0) - (a.raised_at || 0));
    for (const [id, li] of this.items) {
      if (full || !this.flags.has(id)) {
        li.remove();
        this.items.delete(id);
      }
      if (!this.flags.has(id) && this.images.has(id)) {
        const img = this.images.get(id);
        if (img.dataset.blob) URL.revokeObjectURL(img.dataset.blob);
        this.images.delete(id);
      }
    }
    // existing items are only moved when out of place, so a reason being typed keeps its focus
    flags.forEach((flag, i) => {
      const id = String(flag.id);
      let li = this.items.get(id);
      if (!li) {
        li = this._item(flag);
        this.items.set(id, li);
      }
      li.classList.toggle("fresh", this.fresh.has(id));
      if (this.list.children[i] !== li) this.list.insertBefore(li, this.list.children[i] || null);
    });
    this.onCount(this.flags.size);
  }

  close() {
    clearTimeout(this.precisionTimer);
    for (const img of this.images.values()) if (img.dataset.blob) URL.revokeObjectURL(img.dataset.blob);
    this.images.clear();
  }
}
