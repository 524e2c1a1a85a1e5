// The field-team page (mobile first): the team's tasks, pushed live; acknowledge, then report
// handled with a note and an optional photo.

import { ApiError, HubSocket, api, errorText, getToken, logout, me, onUnauthorized } from "./api.js";
import { deadlineState } from "./cases.js";
import { alertText, fieldBranches, newCaseForm } from "./caseactions.js";
import { busy, cue, fill, h, loadAuthImage, notify, releaseImages } from "./dom.js";
import { getLang, hasStoredLang, setLang, setTimeZone, t, tr } from "./i18n.js";
import { InstructionList } from "./instructions.js";
import { IntercomPanel } from "./intercom.js";
import { applyStatic, setupLangSwitch, setupLoginForm, showConnection } from "./page.js";
import { downscalePhoto } from "./photo.js";
import { LivePanel } from "./golive.js";
import { CallDock } from "./call.js";

const $ = (id) => document.getElementById(id);
const TASK_ORDER = { pending: 0, acknowledged: 1, done: 2 };

let session = null;
let connState = "connecting";

/** One task card; rebuilt only when its task or case changed, so typing is never interrupted. */
class TaskCard {
  constructor(task, board) {
    this.board = board;
    this.task = task;
    this.caseData = null;
    this.signature = "";
    this.draft = { note: "", photo: null };
    this.image = null;
    this.el = h("article", { class: "task card", dataset: { testid: "task-item" } });
  }

  update(task, caseData, force = false) {
    this.task = task;
    if (caseData) this.caseData = caseData;
    const c = this.caseData;
    const signature = JSON.stringify([task, c && c.status, c && c.updated_at, c && (c.attachments || []).length, getLang()]);
    if (!force && signature === this.signature) return;
    this.signature = signature;
    this.render();
  }

  render() {
    const task = this.task;
    const c = this.caseData || {};
    this.el.dataset.caseId = String(task.case_id);
    this.el.dataset.status = task.status;
    this.el.dataset.caseStatus = c.status || task.case_status || "";
    const deadline = h("span", { class: "deadline" });
    deadline._case = { deadline_at: task.deadline_at || c.deadline_at, status: c.status || task.case_status || "dispatched" };
    const { text, state } = deadlineState(deadline._case);
    deadline.textContent = text;
    deadline.dataset.state = state;

    const evidence = (c.attachments || []).find((a) => a.kind === "evidence") || (c.attachments || [])[0];
    if (evidence && (!this.image || this.image.dataset.attId !== String(evidence.id))) {
      if (this.image) releaseImages(this.el);
      this.image = h("img", { class: "evidence", dataset: { testid: "task-evidence", attId: String(evidence.id) }, alt: "" });
      loadAuthImage(this.image, evidence.url || `/api/v1/cases/${task.case_id}/attachments/${evidence.id}`);
    }
    if (this.image) this.image.alt = t("flag.evidence");

    const sentBack = [...(c.timeline || [])].reverse().find((e) => e.action === "rejected" || e.action === "reject");
    const error = h("p", { class: "error", role: "alert", dataset: { testid: "task-error" } });
    fill(
      this.el,
      h("header", { class: "task-head" },
        h("h2", {}, task.case_title || c.title || `#${task.case_id}`),
        h("span", { class: `badge task-${task.status}` }, tr("task", task.status))),
      c.location ? h("p", { class: "location" }, t("field.location", { v: c.location })) : null,
      this.image,
      h("p", { class: "task-deadline", dataset: { testid: "task-deadline" } }, t("field.deadline") + t("colon"), deadline),
      sentBack && c.status === "handling" ? h("p", { class: "sent-back" }, t("field.sent_back", { note: sentBack.note || "" })) : null,
      this._actions(task, c, error),
      error,
    );
  }

  _actions(task, c, error) {
    const main = this._mainActions(task, c, error);
    const more = fieldBranches(task, c, error, (id) => this.board.refresh(id));
    return more ? h("div", {}, main, more) : main;
  }

  _mainActions(task, c, error) {
    const status = c.status || task.case_status;
    if (task.status === "pending" && (!status || status === "dispatched")) {
      const ack = h("button", { type: "button", class: "btn btn-primary btn-block btn-big", dataset: { testid: "task-ack" } }, t("field.ack"));
      ack.onclick = () =>
        busy(ack, async () => {
          await api(`/api/v1/cases/${task.case_id}/acknowledge`, { method: "POST", body: {} });
          notify(t("field.acked"));
          await this.board.refresh(task.case_id);
        }, error);
      return ack;
    }
    if (status === "handling" || (!status && task.status === "acknowledged")) return this._reportForm(task, error);
    if (status === "handled") return h("p", { class: "muted" }, t("field.waiting_verify"));
    if (status === "closed") return h("p", { class: "muted" }, t("field.closed"));
    return null;
  }

  _reportForm(task, error) {
    const noteId = `note-${task.id}`;
    const photoId = `photo-${task.id}`;
    const note = h("textarea", {
      id: noteId, class: "input", rows: 3, maxLength: 2000, placeholder: t("field.report_note_ph"),
      dataset: { testid: "report-note" },
    });
    note.value = this.draft.note;
    note.addEventListener("input", () => {
      this.draft.note = note.value;
    });
    // the native file control cannot be translated: it is hidden visually behind a translated label
    const photo = h("input", {
      id: photoId, type: "file", accept: "image/*", capture: "environment", class: "visually-hidden",
      dataset: { testid: "report-photo" },
    });
    const pick = h("label", { for: photoId, class: "btn btn-block file-pick" }, t(this.draft.photo ? "field.photo_change" : "field.photo_pick"));
    const preview = h("div", { class: "photo-preview" });
    const showPreview = () => {
      pick.textContent = t(this.draft.photo ? "field.photo_change" : "field.photo_pick");
      if (!this.draft.photo) {
        fill(preview);
        return;
      }
      const remove = h("button", { type: "button", class: "btn btn-ghost" }, t("field.photo_remove"));
      remove.onclick = () => {
        this.draft.photo = null;
        photo.value = "";
        showPreview();
      };
      fill(preview, h("img", { src: this.draft.photo, alt: t("att.photo"), dataset: { testid: "report-photo-preview" } }), remove);
    };
    photo.addEventListener("change", async () => {
      const file = photo.files && photo.files[0];
      if (!file) return;
      submit.disabled = true;
      try {
        this.draft.photo = (await downscalePhoto(file)).dataUrl;
        error.textContent = "";
      } catch (err) {
        this.draft.photo = null;
        error.textContent = t("field.photo_failed");
      } finally {
        submit.disabled = false;
        showPreview();
      }
    });
    const submit = h("button", { type: "submit", class: "btn btn-primary btn-block btn-big", dataset: { testid: "task-report" } }, t("field.report"));
    const form = h("form", { class: "report-form" },
      h("label", { for: noteId }, t("field.report_note")), note,
      h("span", { class: "label" }, t("field.photo")), photo, pick, preview,
      submit);
    form.addEventListener("submit", (ev) => {
      ev.preventDefault();
      const text = note.value.trim();
      if (!text) {
        error.textContent = t("case.note_required");
        note.focus();
        return;
      }
      const body = { note: text };
      if (this.draft.photo) body.photo = this.draft.photo;
      submit.textContent = t("field.reporting");
      busy(submit, async () => {
        await api(`/api/v1/cases/${task.case_id}/report`, { method: "POST", body });
        this.draft = { note: "", photo: null };
        notify(t("field.reported"));
        await this.board.refresh(task.case_id);
      }, error).finally(() => {
        submit.textContent = t("field.report");
      });
    });
    showPreview();
    return form;
  }

  close() {
    releaseImages(this.el);
  }
}

/** The list of the team's task cards. */
class TaskBoard {
  constructor(listEl) {
    this.listEl = listEl;
    this.tasks = new Map(); // task id -> Task
    this.cases = new Map(); // case id -> Case (with timeline)
    this.cards = new Map(); // task id -> TaskCard
    this.loaded = false;
    this.ticker = setInterval(() => {
      for (const el of listEl.querySelectorAll(".deadline")) {
        const { text, state } = deadlineState(el._case);
        el.textContent = text;
        el.dataset.state = state;
      }
    }, 1000);
  }

  async load() {
    try {
      const tasks = await api("/api/v1/tasks");
      const known = new Set(this.tasks.keys());
      this.tasks = new Map(tasks.map((task) => [Number(task.id), task]));
      await Promise.all([...new Set(tasks.map((task) => Number(task.case_id)))].map((id) => this._fetchCase(id)));
      $("tasks-error").textContent = "";
      this.render();
      if (this.loaded) for (const task of tasks) if (!known.has(Number(task.id))) this._announce(task);
      this.loaded = true;
    } catch (err) {
      $("tasks-error").textContent = errorText(err);
    }
  }

  async _fetchCase(id) {
    try {
      this.cases.set(id, await api(`/api/v1/cases/${id}`));
    } catch (err) {
      if (err instanceof ApiError && err.status === 404) this.cases.delete(id);
      else throw err;
    }
  }

  /** Refetch the tasks and their cases (after an action). */
  async refresh() {
    await this.load();
  }

  _announce(task) {
    cue({ vibrate: true });
    notify(t("field.new_task", { title: task.case_title || `#${task.case_id}` }));
    const card = this.cards.get(Number(task.id));
    if (card) card.el.classList.add("fresh");
  }

  /** `dispatch.task_changed`. */
  async onTask(task) {
    const id = Number(task.id);
    const isNew = !this.tasks.has(id);
    this.tasks.set(id, { ...(this.tasks.get(id) || {}), ...task });
    try {
      await this._fetchCase(Number(task.case_id));
    } catch (err) {
      $("tasks-error").textContent = errorText(err);
    }
    this.render();
    if (isNew && task.status === "pending") this._announce(task);
  }

  /** `dispatch.case_alert`: a deadline warning or a supervision reminder for our team. */
  async onAlert(alert) {
    cue({ vibrate: alert.kind !== "warning" });
    notify(alertText(alert));
    await this.onCase({ id: alert.case_id, status: alert.status });
  }

  /** `dispatch.case_changed`: the case of one of our tasks moved on. */
  async onCase(c) {
    const id = Number(c.id);
    const ours = [...this.tasks.values()].some((task) => Number(task.case_id) === id);
    if (!ours) {
      // a case newly dispatched to us: its task_changed may come next, but do not depend on it
      if (c.status === "dispatched") await this.load();
      return;
    }
    try {
      await this._fetchCase(id);
    } catch (err) {
      $("tasks-error").textContent = errorText(err);
    }
    this.render();
  }

  render(force = false) {
    const tasks = [...this.tasks.values()].sort(
      (a, b) => (TASK_ORDER[a.status] ?? 3) - (TASK_ORDER[b.status] ?? 3) || (b.created_at || 0) - (a.created_at || 0),
    );
    $("tasks-empty").hidden = tasks.length > 0;
    for (const [id, card] of this.cards) {
      if (!this.tasks.has(id)) {
        card.close();
        card.el.remove();
        this.cards.delete(id);
      }
    }
    tasks.forEach((task, i) => {
      const id = Number(task.id);
      let card = this.cards.get(id);
      if (!card) {
        card = new TaskCard(task, this);
        this.cards.set(id, card);
      }
      card.update(task, this.cases.get(Number(task.case_id)), force);
      if (this.listEl.children[i] !== card.el) this.listEl.insertBefore(card.el, this.listEl.children[i] || null);
    });
  }

  close() {
    clearInterval(this.ticker);
    for (const card of this.cards.values()) card.close();
    this.cards.clear();
    this.listEl.replaceChildren();
  }
}

function showOnly(id) {
  for (const section of ["login", "wrong-role", "tasks-panel"]) $(section).hidden = section !== id;
  $("logout").hidden = id === "login";
}

function stopSession(keepalive = false) {
  if (!session) return;
  session.socket.close();
  session.board.close();
  session.instructions.close();
  session.intercom.close(keepalive);
  session.live.close(keepalive);
  session.call.close(keepalive);
  session = null;
}

function showLogin(message = "") {
  stopSession();
  $("conn").hidden = true;
  showOnly("login");
  $("login-error").textContent = message;
}

async function enter() {
  let info;
  try {
    info = await me();
  } catch (err) {
    if (!(err instanceof ApiError && err.status === 401)) showLogin(errorText(err));
    return;
  }
  const { user, hub } = info;
  setTimeZone(hub && hub.timezone);
  if (!hasStoredLang() && hub && hub.default_lang) setLang(hub.default_lang, false);
  stopSession();
  if (user.role !== "field") {
    showOnly("wrong-role");
    return;
  }
  showOnly("tasks-panel");
  const board = new TaskBoard($("tasks"));
  const instructions = new InstructionList($("instructions"), { user, error: $("tasks-error") });
  const socket = new HubSocket({
    onEvent: (topic, data) => {
      if (topic === "dispatch.task_changed") board.onTask(data);
      else if (topic === "dispatch.case_changed") board.onCase(data);
      else if (topic === "dispatch.case_alert") board.onAlert(data);
      else if (topic === "dispatch.instruction_changed") instructions.onChanged(data);
      else if (topic === "calls.call_changed") session?.call.onChanged(data);
    },
    onSync: () => Promise.all([board.load(), instructions.load(), session?.call.load()]),
    onState: (state) => {
      connState = state;
      showConnection($("conn"), state);
    },
  });
  const intercom = new IntercomPanel($("intercom-panel"), { user });
  const live = new LivePanel($("live-panel"), { user });
  const call = new CallDock({ user });
  session = { user, board, socket, intercom, live, instructions, call, teamName: "" };
  call.load();
  renderTeam();
  board.load();
  instructions.load();
  api("/api/v1/categories")
    .then((cats) => {
      const list = cats.map((c) => ({ code: c.code, label: getLang() === "en" ? c.name_en : c.name_zh }));
      fill($("patrol-panel"), newCaseForm(list, () => {}, ["patrol"]));
    })
    .catch((err) => {
      $("tasks-error").textContent = errorText(err);
    });
  intercom.load();
  socket.start();
  api("/api/v1/teams")
    .then((teams) => {
      const team = teams.find((tm) => tm.id === user.team_id);
      if (session && team) {
        session.teamName = team.name;
        renderTeam();
      }
    })
    .catch(() => {}); // the team name is a nicety; the tasks still show
}

function renderTeam() {
  if (!session) return;
  const name = session.teamName || session.user.display_name || session.user.username;
  $("team").textContent = t("field.team", { team: name });
}

function boot() {
  applyStatic();
  setupLangSwitch($("lang"), "app.field_title", () => {
    renderTeam();
    if (session) {
      showConnection($("conn"), connState);
      session.board.render(true);
      session.instructions.render(true);
      session.intercom.render(true);
      session.live.render();
    }
  });
  setupLoginForm($("login-form"), $("login-error"), enter);
  onUnauthorized(() => showLogin(t("login.expired")));
  $("logout").addEventListener("click", () => {
    logout();
    showLogin();
  });
  window.addEventListener("pagehide", () => stopSession(true));
  window.fh = {
    get intercom() {
      return session ? session.intercom : null;
    },
    get live() {
      return session ? session.live : null;
    },
  };
  window.addEventListener("pageshow", (ev) => {
    if (ev.persisted && !session && getToken()) enter();
  });
  if (getToken()) enter();
  else showLogin();
}

boot();
