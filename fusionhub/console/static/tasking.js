// One-click tasking for the command centre: a commander composes an instruction (patrol,
// emergency, notice) for several teams and named people at once; every instruction's recipients
// are shown live: who acknowledged, who reported, who has not answered yet, who was escalated.

import { api, errorText } from "./api.js";
import { busy, cue, fill, h, loadAuthImage, notify, releaseImages } from "./dom.js";
import { formatDuration, formatTime, t, tr } from "./i18n.js";

export const KINDS = ["patrol", "emergency", "notice"];
// what the hub assumes when the sender does not say (kept in step with dispatch/instructions.py)
const ACK_MINUTES = { emergency: 5, patrol: 15, notice: 60 };
const DEADLINE_CHOICES_S = [1800, 3600, 7200, 14400, 28800, 86400];
const DEFAULT_DEADLINE_S = { emergency: 3600, patrol: 7200, notice: 86400 };
const LIST_LIMIT = 100;

/** A recipient's display name: its team, or the named person. */
export function recipientName(r) {
  return r.kind === "team" ? r.team_name || `#${r.team_id}` : r.user_name || `#${r.user_id}`;
}

function stateBadge(state) {
  return h("span", { class: `badge istate-${state}`, dataset: { testid: "instruction-state" } }, tr("istate", state));
}

export function recipientBadge(status) {
  return h("span", { class: `badge rstatus-${status}` }, tr("rstatus", status));
}

/** The tasking panel of the console. */
export class TaskingPanel {
  constructor(panel, { user, onCount = () => {} }) {
    this.user = user;
    this.onCount = onCount;
    this.canSend = user.role === "commander";
    this.instructions = new Map(); // id -> Instruction
    this.directory = { teams: [], people: [] };
    this.draft = { kind: "patrol", text: "", teams: new Set(), people: new Set(), caseId: "", deadline: null, ack: "" };
    this.composeEl = h("section", { class: "card tasking-compose", dataset: { testid: "tasking-compose" } });
    this.error = h("p", { class: "error", role: "alert" });
    this.list = h("div", { class: "instruction-list", dataset: { testid: "instruction-list" }, "aria-live": "polite" });
    this.listHead = h("h2", {});
    fill(panel, h("div", { class: "tasking" }, this.canSend ? this.composeEl : null,
      h("section", { class: "tasking-live" }, this.listHead, this.error, this.list)));
    this.render();
  }

  async load() {
    try {
      const [items, directory] = await Promise.all([
        api(`/api/v1/instructions?limit=${LIST_LIMIT}`),
        this.canSend ? api("/api/v1/tasking/directory") : null,
      ]);
      this.instructions = new Map(items.map((i) => [Number(i.id), i]));
      if (directory) this.directory = directory;
      this.error.textContent = "";
      this.render(this.canSend);
    } catch (err) {
      this.error.textContent = errorText(err);
    }
  }

  /** `dispatch.instruction_changed`. */
  onChanged(instr) {
    this.instructions.set(Number(instr.id), instr);
    this.renderList();
  }

  /** `dispatch.instruction_escalated`: tell the commander at once, with sound. */
  onEscalated(data) {
    cue();
    const name = recipientName(data.recipient || {});
    notify(t("tasking.escalated", { name, text: (data.text || "").slice(0, 40) }), "error");
  }

  render(full = true) {
    this.listHead.textContent = t("tasking.list");
    if (full && this.canSend) this.renderCompose();
    this.renderList();
  }

  renderCompose() {
    const d = this.draft;
    const kindChips = h("div", { class: "filters", role: "radiogroup", "aria-label": t("tasking.kind") },
      KINDS.map((kind) => h("button", {
        type: "button", class: "chip", role: "radio", "aria-checked": String(d.kind === kind),
        dataset: { testid: "tasking-kind", kind },
        onclick: () => {
          d.kind = kind;
          d.deadline = null;
          this.renderCompose();
        },
      }, tr("kind", kind))));
    const text = h("textarea", {
      id: "tasking-text", class: "input", rows: 3, maxLength: 2000, placeholder: t("tasking.text_ph"),
      dataset: { testid: "tasking-text" },
    });
    text.value = d.text;
    text.addEventListener("input", () => {
      d.text = text.value;
    });
    const pickList = (items, chosen, testid, label) => h("div", { class: "pick-list", dataset: { testid } },
      items.length ? items.map((item) => {
        const box = h("input", { type: "checkbox", value: String(item.id), checked: chosen.has(item.id) });
        box.addEventListener("change", () => (box.checked ? chosen.add(item.id) : chosen.delete(item.id)));
        return h("label", { class: "pick", dataset: { name: label(item) } }, box, h("span", {}, label(item)));
      }) : h("span", { class: "muted" }, t("none")));
    const teams = pickList(this.directory.teams, d.teams, "tasking-teams", (team) => team.name);
    const people = pickList(this.directory.people, d.people, "tasking-people",
      (p) => `${p.display_name || p.username}${p.team_name ? ` · ${p.team_name}` : ` · ${t("tasking.no_team")}`}`);
    const deadline = h("select", { id: "tasking-deadline", class: "input", dataset: { testid: "tasking-deadline" } },
      DEADLINE_CHOICES_S.map((s) => h("option", { value: String(s) }, t("tasking.deadline_in", { d: formatDuration(s) }))));
    deadline.value = String(d.deadline || DEFAULT_DEADLINE_S[d.kind]);
    deadline.addEventListener("change", () => {
      d.deadline = Number(deadline.value);
    });
    const ack = h("input", {
      id: "tasking-ack", type: "number", class: "input", min: 1, max: 1440, placeholder: String(ACK_MINUTES[d.kind]),
      value: d.ack, dataset: { testid: "tasking-ack" },
    });
    ack.addEventListener("input", () => {
      d.ack = ack.value;
    });
    const caseNo = h("input", {
      id: "tasking-case", type: "number", class: "input", min: 1, value: d.caseId, dataset: { testid: "tasking-case" },
    });
    caseNo.addEventListener("input", () => {
      d.caseId = caseNo.value;
    });
    const error = h("p", { class: "error", role: "alert", dataset: { testid: "tasking-error" } });
    const send = h("button", { type: "button", class: "btn btn-primary", dataset: { testid: "tasking-send" } }, t("tasking.send"));
    send.onclick = () => this._send(send, error, Number(deadline.value));
    fill(this.composeEl,
      h("h2", {}, t("tasking.compose")),
      kindChips,
      h("label", { for: "tasking-text" }, t("tasking.text")), text,
      h("div", { class: "pick-columns" },
        h("div", {}, h("h3", {}, t("tasking.teams")), teams),
        h("div", {}, h("h3", {}, t("tasking.people")), people)),
      h("div", { class: "tasking-fields" },
        h("label", { for: "tasking-deadline" }, t("tasking.deadline")), deadline,
        h("label", { for: "tasking-ack" }, t("tasking.ack_within")), ack,
        h("label", { for: "tasking-case" }, t("tasking.case")), caseNo),
      h("div", { class: "row" }, send), error);
  }

  async _send(button, error, deadlineS) {
    const d = this.draft;
    const text = d.text.trim();
    if (!text) {
      error.textContent = t("tasking.need_text");
      return;
    }
    if (!d.teams.size && !d.people.size) {
      error.textContent = t("tasking.need_recipient");
      return;
    }
    const body = {
      kind: d.kind, text, deadline_at: Date.now() / 1000 + deadlineS,
      team_ids: [...d.teams], user_ids: [...d.people],
    };
    if (d.ack) body.ack_within_min = Number(d.ack);
    if (d.caseId) body.case_id = Number(d.caseId);
    const sent = await busy(button, () => api("/api/v1/instructions", { method: "POST", body }), error);
    if (!sent) return;
    notify(t("tasking.sent"));
    this.draft = { ...this.draft, text: "", teams: new Set(), people: new Set(), caseId: "", ack: "" };
    this.onChanged(sent);
    this.renderCompose();
  }

  renderList() {
    const items = [...this.instructions.values()].sort((a, b) => (b.created_at || 0) - (a.created_at || 0));
    const escalated = items.filter((i) => i.state === "open" || i.state === "overdue")
      .reduce((n, i) => n + (i.counts?.escalated || 0), 0);
    this.onCount(escalated);
    releaseImages(this.list);
    if (!items.length) {
      fill(this.list, h("p", { class: "empty" }, t("tasking.empty")));
      return;
    }
    fill(this.list, items.map((i) => this._card(i)));
  }

  _card(i) {
    const counts = i.counts || {};
    const acked = (counts.acknowledged || 0) + (counts.reported || 0);
    const waiting = (i.recipients || []).filter((r) => r.status === "pending" || r.status === "escalated");
    const error = h("p", { class: "error", role: "alert" });
    let cancel = null;
    if (this.canSend && (i.state === "open" || i.state === "overdue")) {
      cancel = h("button", { type: "button", class: "btn btn-danger", dataset: { testid: "instruction-cancel" } }, t("tasking.cancel"));
      cancel.onclick = () => busy(cancel, async () => {
        this.onChanged(await api(`/api/v1/instructions/${i.id}/cancel`, { method: "POST", body: {} }));
        notify(t("tasking.cancelled"));
      }, error);
    }
    return h("article", { class: `card instruction kind-${i.kind}`, dataset: { testid: "instruction-item", id: String(i.id), state: i.state } },
      h("header", { class: "instruction-head" },
        h("span", { class: `badge kind-${i.kind}` }, tr("kind", i.kind)),
        h("strong", { class: "instruction-text" }, i.text),
        stateBadge(i.state)),
      h("p", { class: "muted" },
        t("tasking.from", { who: i.created_by_name || "" }), " · ", formatTime(i.created_at), " · ",
        t("tasking.deadline"), t("colon"), formatTime(i.deadline_at),
        i.case_id ? ` · ${t("tasking.case_link", { id: i.case_id })}` : ""),
      h("p", { class: "instruction-progress", dataset: { testid: "instruction-progress" } },
        t("tasking.progress", { acked, reported: counts.reported || 0, total: counts.total || 0 })),
      h("p", { class: waiting.length ? "waiting" : "muted", dataset: { testid: "instruction-waiting" } },
        waiting.length ? t("tasking.waiting", { names: waiting.map(recipientName).join(t("tasking.sep")) }) : t("tasking.all_acked")),
      h("table", { class: "recipients" },
        h("tbody", {}, (i.recipients || []).map((r) => this._row(i, r)))),
      cancel, error);
  }

  _row(i, r) {
    const notes = [];
    if (r.escalated_at) notes.push(t("tasking.escalated_at", { t: formatTime(r.escalated_at) }));
    if (r.acknowledged_at) notes.push(t("case.task_acked_at", { t: formatTime(r.acknowledged_at) }) + (r.acknowledged_by_name ? ` (${r.acknowledged_by_name})` : ""));
    if (r.reported_at) notes.push(t("tasking.reported_at", { t: formatTime(r.reported_at) }));
    let photo = null;
    if (r.photo_url) {
      photo = h("img", { class: "attachment", alt: t("att.photo") });
      loadAuthImage(photo, r.photo_url);
      photo.onclick = () => photo.classList.toggle("zoom");
    }
    return h("tr", { dataset: { testid: "recipient-row", status: r.status, name: recipientName(r) } },
      h("td", {}, recipientName(r)),
      h("td", {}, recipientBadge(r.status)),
      h("td", { class: "muted" }, notes.join(" · ")),
      h("td", {}, r.report_note ? h("q", { class: "note" }, r.report_note) : null, photo));
  }

  close() {
    releaseImages(this.list);
  }
}
