// The field page's instructions from the command centre, beside the case tasks: pushed live,
// acknowledged with one tap (for the team, or for oneself when named), then reported with a note
// and an optional photo.

import { api, errorText } from "./api.js";
import { busy, cue, fill, h, notify } from "./dom.js";
import { formatTime, t, tr } from "./i18n.js";
import { downscalePhoto } from "./photo.js";
import { recipientBadge, recipientName } from "./tasking.js";

const OPEN_FIRST = { open: 0, overdue: 0, done: 1, cancelled: 2 };

/** Whether a recipient row is this user's to answer (their team's, or theirs by name). */
function mine(user, r) {
  return r.kind === "user" ? r.user_id === user.id : user.team_id != null && r.team_id === user.team_id;
}

/** The instruction cards of one field user; `error` shows load failures. */
export class InstructionList {
  constructor(listEl, { user, error }) {
    this.user = user;
    this.listEl = listEl;
    this.error = error;
    this.items = new Map(); // id -> Instruction
    this.drafts = new Map(); // id -> {note, photo}: survives re-rendering while typing
    this.cards = new Map(); // id -> {el, signature}
    this.loaded = false;
  }

  async load() {
    try {
      const items = await api("/api/v1/instructions?limit=50");
      const known = new Set(this.items.keys());
      this.items = new Map(items.map((i) => [Number(i.id), i]));
      this.error.textContent = "";
      this.render();
      if (this.loaded) for (const i of items) if (!known.has(Number(i.id))) this._announce(i);
      this.loaded = true;
    } catch (err) {
      this.error.textContent = errorText(err);
    }
  }

  /** `dispatch.instruction_changed` (the hub sends only instructions with a row of ours). */
  onChanged(instr) {
    const id = Number(instr.id);
    const isNew = !this.items.has(id);
    this.items.set(id, instr);
    this.render();
    if (isNew) this._announce(instr);
  }

  _announce(instr) {
    if (instr.state !== "open") return;
    cue({ vibrate: true });
    notify(t("field.instr_new", { text: instr.text.slice(0, 40) }));
    this.cards.get(Number(instr.id))?.el.classList.add("fresh");
  }

  render(force = false) {
    const items = [...this.items.values()].sort(
      (a, b) => (OPEN_FIRST[a.state] ?? 3) - (OPEN_FIRST[b.state] ?? 3) || (b.created_at || 0) - (a.created_at || 0),
    );
    this.listEl.hidden = items.length === 0;
    for (const [id, card] of this.cards) {
      if (!this.items.has(id)) {
        card.el.remove();
        this.cards.delete(id);
      }
    }
    items.forEach((instr, n) => {
      const id = Number(instr.id);
      const signature = JSON.stringify([instr, t("field.instr_ack")]);
      let card = this.cards.get(id);
      if (!card) {
        card = { el: h("article", { class: "task card instruction" }), signature: "" };
        this.cards.set(id, card);
      }
      if (force || card.signature !== signature) {
        card.signature = signature;
        this._fill(card.el, instr);
      }
      if (this.listEl.children[n] !== card.el) this.listEl.insertBefore(card.el, this.listEl.children[n] || null);
    });
  }

  _fill(el, instr) {
    const rows = (instr.recipients || []).filter((r) => mine(this.user, r));
    const status = rows.some((r) => r.status === "pending" || r.status === "escalated")
      ? "pending"
      : rows.some((r) => r.status === "acknowledged") ? "acknowledged" : "reported";
    el.dataset.testid = "instruction-card";
    el.dataset.id = String(instr.id);
    el.dataset.status = status;
    const error = h("p", { class: "error", role: "alert", dataset: { testid: "instruction-error" } });
    fill(el,
      h("header", { class: "task-head" },
        h("h2", {}, h("span", { class: `badge kind-${instr.kind}` }, tr("kind", instr.kind)), " ", instr.text),
        recipientBadge(status === "pending" && rows.some((r) => r.status === "escalated") ? "escalated" : status)),
      h("p", { class: "muted" }, t("tasking.from", { who: instr.created_by_name || "" }), " · ",
        t("field.deadline"), t("colon"), formatTime(instr.deadline_at)),
      h("p", { class: "muted" }, t("field.instr_for", { who: rows.map(recipientName).join(t("tasking.sep")) })),
      this._actions(instr, status, error),
      error);
  }

  _actions(instr, status, error) {
    if (instr.state === "cancelled") return h("p", { class: "muted" }, tr("istate", "cancelled"));
    if (status === "reported") return h("p", { class: "muted" }, t("field.instr_done"));
    const ack = status === "pending"
      ? h("button", { type: "button", class: "btn btn-primary btn-block btn-big", dataset: { testid: "instruction-ack" } }, t("field.instr_ack"))
      : null;
    if (ack) {
      ack.onclick = () => busy(ack, async () => {
        this.onChanged(await api(`/api/v1/instructions/${instr.id}/acknowledge`, { method: "POST", body: {} }));
        notify(t("field.instr_acked"));
      }, error);
    }
    return h("div", { class: "instruction-actions" }, ack, this._reportForm(instr, error));
  }

  _reportForm(instr, error) {
    const draft = this.drafts.get(instr.id) || { note: "", photo: null };
    this.drafts.set(instr.id, draft);
    const noteId = `instr-note-${instr.id}`;
    const photoId = `instr-photo-${instr.id}`;
    const note = h("textarea", { id: noteId, class: "input", rows: 2, maxLength: 2000, dataset: { testid: "instruction-note" } });
    note.value = draft.note;
    note.addEventListener("input", () => {
      draft.note = note.value;
    });
    const photo = h("input", { id: photoId, type: "file", accept: "image/*", capture: "environment", class: "visually-hidden" });
    const pick = h("label", { for: photoId, class: "btn btn-block file-pick" }, t(draft.photo ? "field.photo_change" : "field.photo_pick"));
    const submit = h("button", { type: "submit", class: "btn btn-block", dataset: { testid: "instruction-report" } }, t("field.instr_report"));
    photo.addEventListener("change", async () => {
      const file = photo.files && photo.files[0];
      if (!file) return;
      submit.disabled = true;
      try {
        draft.photo = (await downscalePhoto(file)).dataUrl;
        pick.textContent = t("field.photo_change");
      } catch {
        draft.photo = null;
        error.textContent = t("field.photo_failed");
      } finally {
        submit.disabled = false;
      }
    });
    const form = h("form", { class: "report-form" }, h("label", { for: noteId }, t("field.report_note")), note, photo, pick, submit);
    form.addEventListener("submit", (ev) => {
      ev.preventDefault();
      const text = note.value.trim();
      if (!text) {
        error.textContent = t("case.note_required");
        note.focus();
        return;
      }
      const body = { note: text };
      if (draft.photo) body.photo = draft.photo;
      busy(submit, async () => {
        this.onChanged(await api(`/api/v1/instructions/${instr.id}/report`, { method: "POST", body }));
        this.drafts.delete(instr.id);
        notify(t("field.instr_reported"));
      }, error);
    });
    return form;
  }

  close() {
    this.cards.clear();
    this.listEl.replaceChildren();
  }
}
