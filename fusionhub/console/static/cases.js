// The case board: cases filterable by status, live from the websocket; a detail pane with the
// timeline, attachments, deadline and the workflow actions the user's role may take.

import { api, errorText } from "./api.js";
import { busy, cue, fill, h, loadAuthImage, notify, releaseImages } from "./dom.js";
import { formatDuration, formatTime, getLang, t, tr } from "./i18n.js";
import { alertText, branchActions, clockText, exportButton, keepTyped, newCaseForm } from "./caseactions.js";
import { burstPlayer } from "./intercom.js";
import { clipPlayer, releaseClips } from "./clip.js";

export const CASE_STATUSES = [
  "reported", "filed", "dispatched", "handling", "handled", "closed", "evaluated", "returned", "suspended", "refused",
];
const WARN_BEFORE_S = 3600; // a deadline this close shows as "due soon"

/** The deadline as text plus a state for styling: none, ok, soon, overdue, done. */
export function deadlineState(c, now = Date.now() / 1000) {
  if (!c.deadline_at) {
    return { text: c.status === "filed" ? t("case.no_deadline") : t("none"), state: "none" };
  }
  const at = formatTime(c.deadline_at);
  if (c.status === "closed") return { text: at, state: "done" };
  const left = c.deadline_at - now;
  if (left < 0) return { text: `${at} · ${t("case.overdue", { t: formatDuration(-left) })}`, state: "overdue" };
  return {
    text: `${at} · ${t("case.time_left", { t: formatDuration(left) })}`,
    state: left < WARN_BEFORE_S ? "soon" : "ok",
  };
}

/** A `<span>` that the board's ticker keeps current. */
function deadlineEl(c, testid) {
  const el = h("span", { class: "deadline", dataset: { testid } });
  el._case = c;
  updateDeadline(el);
  return el;
}

function updateDeadline(el) {
  const { text, state } = deadlineState(el._case);
  el.textContent = text;
  el.dataset.state = state;
}

function statusBadge(status) {
  return h("span", { class: `badge case-${status}`, dataset: { testid: "case-status" } }, tr("status", status));
}

/** The case board panel for one logged-in user. */
export class CaseBoard {
  constructor(panel, { user }) {
    this.user = user;
    this.cases = new Map(); // id -> Case (list shape)
    this.filter = "all";
    this.teams = [];
    this.categories = new Map();
    this.openId = null;
    this.detailCase = null;
    this.refreshTimer = null;
    this.actionError = null; // {id, text}: the last refused action, shown until the next one

    this.filters = h("div", { class: "filters", role: "group", "aria-label": t("cases.filter") });
    this.error = h("p", { class: "error", role: "alert" });
    this.empty = h("p", { class: "empty" });
    this.list = h("ul", { class: "case-list" });
    this.detail = h("section", { class: "case-detail", dataset: { testid: "case-detail" }, "aria-live": "polite" });
    fill(
      panel,
      h("div", { class: "case-board" },
        h("div", { class: "case-side" }, this.newCase = h("div"), this.filters, this.error, this.empty, this.list),
        this.detail),
    );
    this.ticker = setInterval(() => {
      for (const el of panel.querySelectorAll(".deadline")) updateDeadline(el);
    }, 1000);
    this.render();
  }

  async load() {
    try {
      const [cases, categories, teams] = await Promise.all([
        api("/api/v1/cases"),
        this.categories.size ? null : api("/api/v1/categories").catch(() => []),
        this.user.role === "commander" ? api("/api/v1/teams") : null,
      ]);
      this.cases = new Map(cases.map((c) => [Number(c.id), c]));
      if (categories) this.categories = new Map(categories.map((c) => [c.code, c]));
      if (["duty", "commander"].includes(this.user.role) && !this.newCase.firstChild && this.categories.size) {
        const cats = [...this.categories.values()].map((c) => ({ code: c.code, label: getLang() === "en" ? c.name_en : c.name_zh }));
        fill(this.newCase, newCaseForm(cats, (created) => this.onChanged(created)));
      }
      if (teams) this.teams = teams;
      this.error.textContent = "";
      this.render();
      if (this.openId !== null) this._refreshDetail();
    } catch (err) {
      this.error.textContent = errorText(err);
    }
  }

  categoryName(c) {
    const cat = this.categories.get(c.category);
    if (cat) return getLang() === "en" ? cat.name_en : cat.name_zh;
    if (getLang() === "en" && c.category_name_en) return c.category_name_en;
    return c.category_name || tr("category", c.category);
  }

  /** `dispatch.case_alert`: a deadline warning, supervision reminder or penalty, shown as a notice. */
  onAlert(alert) {
    notify(alertText(alert));
    if (alert.kind !== "warning") cue();
    if (Number(alert.case_id) === this.openId) this.onChanged({ id: alert.case_id });
  }

  /** `dispatch.case_changed`: update the row, and the open detail (its timeline grew). */
  onChanged(c) {
    const id = Number(c.id);
    this.cases.set(id, { ...(this.cases.get(id) || {}), ...c });
    this.render();
    if (id === this.openId) {
      clearTimeout(this.refreshTimer);
      this.refreshTimer = setTimeout(() => this._refreshDetail(), 150);
    }
  }

  /** Redraw the list; `full` (language change) redraws the open detail too. */
  render(full = false) {
    this._renderFilters();
    const shown = [...this.cases.values()]
      .filter((c) => this.filter === "all" || c.status === this.filter)
      .sort((a, b) => (b.created_at || 0) - (a.created_at || 0));
    this.empty.textContent = t("cases.empty");
    this.empty.hidden = shown.length > 0;
    fill(this.list, shown.map((c) => this._row(c)));
    if (this.openId === null) fill(this.detail, h("p", { class: "empty" }, t("cases.pick")));
    else if (full && this.detailCase) this._renderDetail();
  }

  _renderFilters() {
    const counts = { all: this.cases.size };
    for (const c of this.cases.values()) counts[c.status] = (counts[c.status] || 0) + 1;
    this.filters.setAttribute("aria-label", t("cases.filter"));
    fill(
      this.filters,
      ["all", ...CASE_STATUSES].map((status) =>
        h(
          "button",
          {
            type: "button",
            class: "chip",
            dataset: { testid: "case-filter", status },
            "aria-pressed": String(this.filter === status),
            onclick: () => {
              this.filter = status;
              this.render();
            },
          },
          status === "all" ? t("cases.all") : tr("status", status),
          h("span", { class: "count" }, String(counts[status] || 0)),
        ),
      ),
    );
  }

  _row(c) {
    const id = Number(c.id);
    const button = h(
      "button",
      { type: "button", class: "case-row", "aria-current": id === this.openId ? "true" : false, onclick: () => this.open(id) },
      h("span", { class: "case-no" }, `#${id}`),
      h("span", { class: "case-title" }, c.title || this.categoryName(c)),
      statusBadge(c.status),
      h("span", { class: "case-meta" }, c.team_name || c.location || ""),
      deadlineEl(c, "case-row-deadline"),
    );
    return h("li", { class: "case-item", dataset: { testid: "case-item", caseId: String(id), status: c.status } }, button);
  }

  /** Show one case's detail (fetched fresh, with its timeline). */
  async open(id) {
    this.openId = Number(id);
    this.actionError = null;
    this.detailCase = null;
    releaseImages(this.detail);
    releaseClips(this.detail);
    fill(this.detail, h("p", { class: "muted" }, t("loading")));
    for (const row of this.list.querySelectorAll(".case-row")) row.removeAttribute("aria-current");
    this.list.querySelector(`[data-case-id="${this.openId}"] .case-row`)?.setAttribute("aria-current", "true");
    await this._refreshDetail();
  }

  async _refreshDetail() {
    const id = this.openId;
    if (id === null) return;
    try {
      const c = await api(`/api/v1/cases/${id}`);
      if (id !== this.openId) return;
      this.detailCase = c;
      this.cases.set(id, { ...(this.cases.get(id) || {}), ...c });
      this._renderDetail();
    } catch (err) {
      if (id !== this.openId) return;
      fill(this.detail, h("p", { class: "error", role: "alert", dataset: { testid: "case-error" } }, errorText(err)));
    }
  }

  close() {
    clearInterval(this.ticker);
    clearTimeout(this.refreshTimer);
    releaseImages(this.detail);
    releaseClips(this.detail);
  }

  _renderDetail() {
    const c = this.detailCase;
    const typed = this.detail.querySelector("[data-testid=reject-note]")?.value || "";
    const restoreTyped = keepTyped(this.detail);
    const images = new Map(
      [...this.detail.querySelectorAll("img[data-att-id]")].map((img) => [img.dataset.attId, img]),
    );
    const fields = [
      ["case.status", statusBadge(c.status)],
      ["case.category", this.categoryName(c)],
      ["case.source", tr("source", c.source)],
      ["case.location", c.location || t("none")],
      ["case.region", c.region || t("none")],
      ["case.team", c.team_name || t("none")],
      ["case.created", formatTime(c.created_at)],
      ["case.updated", formatTime(c.updated_at)],
      ["case.deadline", deadlineEl(c, "case-deadline")],
      ["case.supervision", h("span", { dataset: { testid: "case-clock" } }, clockText(c.clock))],
      ...(c.description ? [["case.description", c.description]] : []),
      ...(c.contact ? [["case.contact", c.contact]] : []),
      ...(c.satisfaction ? [["case.satisfaction", `${c.satisfaction} / 5`]] : []),
    ];
    const detailChildren = [
      h("header", { class: "detail-head" },
        h("h2", {}, `#${c.id} ${c.title || ""}`),
        this.user.role === "commander"
          ? h("button", { type: "button", class: "btn", dataset: { testid: "case-channel" },
              // the console opens its intercom tab on the case's channel (app.js listens)
              onclick: () => document.dispatchEvent(new CustomEvent("fh:case-channel", { detail: { caseId: c.id } })) },
            t("ptt.case_channel"))
          : null,
        this.user.role === "commander"
          ? h("button", { type: "button", class: "btn", dataset: { testid: "case-call" },
              // the call dock (call.js) picks whom to call among the teams and rings them
              onclick: () => document.dispatchEvent(new CustomEvent("fh:case-call", { detail: { caseId: c.id, teams: this.teams } })) },
            t("call.button"))
          : null,
        h("button", { type: "button", class: "btn btn-ghost", "aria-label": t("close"), onclick: () => this._close() }, "×")),
      h("dl", { class: "fields" }, fields.flatMap(([k, v]) => [h("dt", {}, t(k)), h("dd", {}, v)])),
      h("h3", {}, t("case.actions")),
      this._actions(c, typed),
      h("h3", {}, t("case.attachments")),
      this._attachments(c, images),
      h("h3", {}, t("case.timeline")),
      this._timeline(c),
    ];
    if (c.tasks && c.tasks.length) detailChildren.push(h("h3", {}, t("case.tasks")), this._tasks(c));
    // images not reused are released; reused ones keep their blob URL
    for (const [attId, img] of images) {
      if (!(c.attachments || []).some((a) => String(a.id) === attId) && img.dataset.blob) {
        URL.revokeObjectURL(img.dataset.blob);
      }
    }
    releaseClips(this.detail);
    fill(this.detail, detailChildren);
    restoreTyped();
  }

  _close() {
    this.openId = null;
    this.detailCase = null;
    releaseImages(this.detail);
    releaseClips(this.detail);
    this.render();
  }

  _attachments(c, images) {
    const atts = c.attachments || [];
    if (!atts.length) return h("p", { class: "muted" }, t("case.no_attachments"));
    return h(
      "div",
      { class: "attachments" },
      atts.map((a) => {
        const key = String(a.id);
        if (a.kind === "clip" || a.kind === "recording") {
          return h("figure", { dataset: { testid: "case-attachment", kind: a.kind } },
            clipPlayer(a.url || `/api/v1/cases/${c.id}/attachments/${a.id}`, { testid: "case-clip" }),
            h("figcaption", {}, `${tr("att", a.kind)} · ${formatTime(a.created_at)}`));
        }
        let img = images.get(key);
        if (!img) {
          img = h("img", { class: "attachment", dataset: { attId: key }, alt: "" });
          loadAuthImage(img, a.url || `/api/v1/cases/${c.id}/attachments/${a.id}`);
        }
        img.alt = tr("att", a.kind);
        img.onclick = () => img.classList.toggle("zoom");
        return h("figure", { dataset: { testid: "case-attachment", kind: a.kind || "" } }, img,
          h("figcaption", {}, `${tr("att", a.kind)} · ${formatTime(a.created_at)}`));
      }),
    );
  }

  _timeline(c) {
    const entries = [...(c.timeline || [])].sort((a, b) => (a.seq || 0) - (b.seq || 0));
    return h(
      "ol",
      { class: "timeline" },
      entries.map((e) => {
        const who = e.actor ? `${e.actor.display_name || e.actor.username} (${tr("role", e.actor.role)})` : t("none");
        const move = e.from_status && e.to_status && e.from_status !== e.to_status
          ? `${tr("status", e.from_status)} → ${tr("status", e.to_status)}`
          : e.to_status ? tr("status", e.to_status) : "";
        return h(
          "li",
          { dataset: { testid: "timeline-entry", action: e.action } },
          h("time", {}, formatTime(e.at)),
          h("span", { class: "who" }, who),
          h("strong", { class: "what" }, tr("action", e.action)),
          move ? h("span", { class: "move" }, move) : null,
          e.note ? h("q", { class: "note" }, e.note) : null,
          e.action === "still_present" && e.data && e.data.seen_at
            ? h("span", { class: "note", dataset: { testid: "still-present" } },
              t("timeline.still_present_at", { t: formatTime(e.data.seen_at, false).slice(0, 5) }))
            : null,
          e.action === "ptt_burst" && e.data && e.data.url ? burstPlayer(e.data) : null,
          e.action === "call_recording" && e.data
            ? h("span", { class: "note", dataset: { testid: "call-recording" } },
              t("timeline.call_recording", { name: e.data.name || "", s: Math.round(e.data.duration_s || 0), sha: String(e.data.sha256 || "").slice(0, 12) }))
            : null,
        );
      }),
    );
  }

  _tasks(c) {
    return h(
      "ul",
      { class: "tasks" },
      c.tasks.map((task) =>
        h("li", {}, `${task.team_name || ""} · ${tr("task", task.status)}`,
          task.acknowledged_at ? ` · ${t("case.task_acked_at", { t: formatTime(task.acknowledged_at) })}` : "",
          task.done_at ? ` · ${t("case.task_done_at", { t: formatTime(task.done_at) })}` : ""),
      ),
    );
  }

  /** The workflow actions this role may take on a case in this status. */
  _actions(c, typed) {
    const error = h("p", { class: "error", role: "alert", dataset: { testid: "case-error" } });
    if (this.actionError && this.actionError.id === Number(c.id)) error.textContent = this.actionError.text;
    const role = this.user.role;
    const act = async (button, path, body, doneKey) => {
      this.actionError = null;
      const done = await busy(button, async () => {
        const updated = await api(`/api/v1/cases/${c.id}/${path}`, { method: "POST", body });
        this.cases.set(Number(c.id), { ...(this.cases.get(Number(c.id)) || {}), ...updated });
        notify(t(doneKey));
        this.render();
        return true;
      }, error);
      // refused (someone else moved the case on): keep the message and show the case as it is now
      if (!done) this.actionError = { id: Number(c.id), text: error.textContent };
      await this._refreshDetail();
    };
    const box = h("div", { class: "actions" });
    const more = branchActions(c, this.user, act, error);
    if (role === "commander" && (c.status === "filed" || c.status === "returned")) {
      const select = h(
        "select",
        { class: "input", dataset: { testid: "dispatch-team" }, "aria-label": t("case.dispatch_team") },
        this.teams.map((team) => h("option", { value: String(team.id) }, team.name)),
      );
      if (!this.teams.length) select.append(h("option", { value: "" }, t("case.pick_team")));
      const button = h("button", { type: "button", class: "btn btn-primary", dataset: { testid: "case-dispatch" } }, t("case.dispatch"));
      button.onclick = () => {
        if (!select.value) {
          error.textContent = t("case.team_required");
          return;
        }
        act(button, "dispatch", { team_id: Number(select.value) }, "case.done_dispatch");
      };
      box.append(h("label", { class: "row" }, h("span", {}, t("case.dispatch_team")), select), button);
    } else if (role === "duty" && c.status === "handled") {
      const verify = h("button", { type: "button", class: "btn btn-primary", dataset: { testid: "case-verify" } }, t("case.verify"));
      verify.onclick = () => act(verify, "verify", {}, "case.done_verify");
      const note = h("input", {
        type: "text", class: "input", maxLength: 2000, value: typed,
        dataset: { testid: "reject-note" }, "aria-label": t("case.reject_note"), placeholder: t("case.reject_note"),
      });
      const reject = h("button", { type: "button", class: "btn btn-danger", dataset: { testid: "case-reject" } }, t("case.reject"));
      reject.onclick = () => {
        const text = note.value.trim();
        if (!text) {
          error.textContent = t("case.note_required");
          note.focus();
          return;
        }
        act(reject, "reject", { note: text }, "case.done_reject");
      };
      box.append(verify, h("div", { class: "row" }, note, reject));
    } else {
      if (!more.length) box.append(h("p", { class: "muted" }, t("case.no_actions")));
    }
    box.append(...more, exportButton(c, error), error);
    return box;
  }
}
