// The case board's actions for the workflow's branches (file or refuse, auto-dispatch, suspend and
// resume, extension decisions, return visit), the new-case form, the printable export and the
// deadline alerts. cases.js builds the board; these build the pieces it shows.

import { api } from "./api.js";
import { busy, h, notify } from "./dom.js";
import { t, tr } from "./i18n.js";
import { downscalePhoto } from "./photo.js";

/** "2 working hours" for a `{type, amount}` limit. */
export function limitText(limit) {
  if (!limit) return t("none");
  return t(`limit.${limit.type}`, { n: Number(limit.amount) });
}

/** One line on the case's clock: stage, state, reminders. */
export function clockText(clock) {
  if (!clock) return t("none");
  return t("clock.summary", {
    stage: tr("clock.stage", clock.stage),
    state: tr("clock.state", clock.state),
    paused: clock.paused ? t("clock.paused") : "",
    n: clock.reminders || 0,
  });
}

/** A text input and a button that needs the text: the pattern of every "say why" action. */
function reasonRow(placeholderKey, buttonKey, testid, error, onGo, danger = true) {
  const input = h("input", {
    type: "text", class: "input", maxLength: 2000, placeholder: t(placeholderKey), "aria-label": t(placeholderKey),
    dataset: { testid: `${testid}-reason` },
  });
  const button = h("button", { type: "button", class: `btn ${danger ? "btn-danger" : ""}`, dataset: { testid } }, t(buttonKey));
  button.onclick = () => {
    const text = input.value.trim();
    if (!text) {
      error.textContent = t("case.note_required");
      input.focus();
      return;
    }
    onGo(button, text);
  };
  return h("div", { class: "row" }, input, button);
}

/** The branch actions this user may take on this case now (`act(button, path, body, doneKey)`). */
export function branchActions(c, user, act, error) {
  const role = user.role;
  const out = [];
  const button = (key, testid, onGo, kind = "btn-primary") => {
    const b = h("button", { type: "button", class: `btn ${kind}`, dataset: { testid } }, t(key));
    b.onclick = () => onGo(b);
    return b;
  };
  if ((role === "duty" || role === "commander") && c.status === "reported") {
    out.push(button("case.file", "case-file", (b) => act(b, "file", {}, "case.done_file")));
    out.push(reasonRow("case.refuse_reason", "case.refuse", "case-refuse", error,
      (b, reason) => act(b, "refuse", { reason }, "case.done_refuse")));
  }
  if (role === "commander" && (c.status === "filed" || c.status === "returned")) {
    out.push(button("case.auto_dispatch", "case-auto-dispatch", (b) => act(b, "dispatch", {}, "case.done_dispatch"), ""));
  }
  if (role === "commander" && ["filed", "returned", "dispatched", "handling"].includes(c.status)) {
    out.push(reasonRow("case.suspend_reason", "case.suspend", "case-suspend", error,
      (b, reason) => act(b, "suspend", { reason }, "case.done_suspend")));
  }
  const pending = (c.extensions || []).find((e) => e.status === "pending");
  if (role === "commander" && pending && ["dispatched", "handling"].includes(c.status)) {
    out.push(h("p", { dataset: { testid: "extension-pending" } },
      t("case.extension_pending", { limit: limitText(pending.limit), reason: pending.reason })));
    out.push(button("case.approve_extension", "case-approve-extension",
      (b) => act(b, "extension/approve", {}, "case.done_extension")));
    out.push(reasonRow("case.refuse_extension_reason", "case.refuse_extension", "case-refuse-extension", error,
      (b, reason) => act(b, "extension/refuse", { reason }, "case.done_extension")));
  }
  if (role === "commander" && c.status === "suspended") {
    out.push(button("case.resume", "case-resume", (b) => act(b, "resume", {}, "case.done_resume")));
  }
  if (role === "duty" && c.status === "closed") {
    const score = h("select", { class: "input", "aria-label": t("case.score"), dataset: { testid: "evaluate-score" } },
      [5, 4, 3, 2, 1].map((n) => h("option", { value: String(n) }, String(n))));
    const note = h("input", { type: "text", class: "input", maxLength: 2000, placeholder: t("case.evaluate_note"),
      "aria-label": t("case.evaluate_note"), dataset: { testid: "evaluate-note" } });
    const go = button("case.evaluate", "case-evaluate", (b) =>
      act(b, "evaluate", { score: Number(score.value), note: note.value.trim() || null }, "case.done_evaluate"));
    out.push(h("div", { class: "row" }, h("label", {}, t("case.score"), score), note, go));
  }
  return out;
}

/** A button that downloads the printable, self-contained HTML export of a case. */
export function exportButton(c, error) {
  const b = h("button", { type: "button", class: "btn btn-ghost", dataset: { testid: "case-export" } }, t("case.export"));
  b.onclick = () => busy(b, async () => {
    const response = await api(`/api/v1/cases/${c.id}/export.html`, { raw: true });
    const url = URL.createObjectURL(await response.blob());
    const link = h("a", { href: url, download: `case-${c.id}.html` });
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10_000);
  }, error);
  return b;
}

/** The form to register a case: duty officers and commanders (manual, hotline), field members on
 * patrol (`sources = ["patrol"]`, with a photo). */
export function newCaseForm(categories, onCreated, sources = ["hotline", "manual"]) {
  const error = h("p", { class: "error", role: "alert", dataset: { testid: "new-case-error" } });
  const source = h("select", { class: "input", "aria-label": t("case.new_source"), dataset: { testid: "new-case-source" } },
    sources.map((s) => h("option", { value: s }, tr("source", s))));
  let photoUrl = null;
  const photo = h("input", { type: "file", accept: "image/*", capture: "environment", class: "input",
    "aria-label": t("field.photo"), dataset: { testid: "new-case-photo" } });
  photo.addEventListener("change", async () => {
    const file = photo.files && photo.files[0];
    photoUrl = null;
    if (!file) return;
    try {
      photoUrl = (await downscalePhoto(file)).dataUrl;
    } catch {
      error.textContent = t("field.photo_failed");
    }
  });
  const category = h("select", { class: "input", "aria-label": t("case.new_category"), dataset: { testid: "new-case-category" } },
    categories.map((c) => h("option", { value: c.code }, c.label)));
  const field = (key, testid, tag = "input") => h(tag, {
    class: "input", maxLength: tag === "textarea" ? 4000 : 512, placeholder: t(key), "aria-label": t(key), dataset: { testid },
  });
  const location = field("case.new_location", "new-case-location");
  const description = field("case.new_description", "new-case-description", "textarea");
  const contact = field("case.new_contact", "new-case-contact");
  const submit = h("button", { type: "submit", class: "btn btn-primary", dataset: { testid: "new-case-submit" } }, t("case.new_submit"));
  const patrol = sources.includes("patrol");
  const form = h("form", { class: "new-case" }, source, category, location, description,
    patrol ? photo : contact, submit, error);
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    if (!location.value.trim()) {
      error.textContent = t("case.location_required");
      location.focus();
      return;
    }
    busy(submit, async () => {
      const created = await api("/api/v1/cases", {
        method: "POST",
        body: {
          source: source.value, category: category.value, location: location.value.trim(),
          description: description.value.trim() || null, contact: patrol ? null : contact.value.trim() || null,
          ...(patrol && photoUrl ? { photo: photoUrl } : {}),
        },
      });
      form.reset();
      photoUrl = null;
      notify(t("case.new_done"));
      onCreated(created);
    }, error);
  });
  const heading = t(patrol ? "field.patrol_report" : "case.new");
  return h("details", { class: "new-case-box", dataset: { testid: "new-case" } }, h("summary", {}, heading), form);
}

/** The notice for a `dispatch.case_alert` (warning, overdue, reminder, penalty). */
export function alertText(alert) {
  return t(`alert.${alert.kind}`, { id: alert.case_id, title: alert.title || "", n: alert.reminder || 0 });
}

/** The field team's branch actions on a case it handles: return it, report progress, ask for time. */
export function fieldBranches(task, c, error, refresh) {
  const status = c.status || task.case_status;
  if (!["dispatched", "handling"].includes(status) || !["pending", "acknowledged"].includes(task.status)) return null;
  const post = (b, path, body) => busy(b, async () => {
    await api(`/api/v1/cases/${task.case_id}/${path}`, { method: "POST", body });
    notify(t("field.branch_done"));
    await refresh(task.case_id);
  }, error);
  const noted = (key, placeholderKey, testid, path, extra = () => ({})) => {
    const input = h("input", { type: "text", class: "input", maxLength: 2000, placeholder: t(placeholderKey),
      "aria-label": t(placeholderKey), dataset: { testid: `${testid}-note` } });
    const b = h("button", { type: "button", class: "btn btn-block", dataset: { testid } }, t(key));
    b.onclick = () => {
      const text = input.value.trim();
      if (!text) {
        error.textContent = t("field.note_required");
        input.focus();
        return;
      }
      const body = extra(text);
      if (body) post(b, path, body);
    };
    return [input, b];
  };
  const amount = h("input", { type: "number", class: "input", min: "0.5", step: "0.5", value: "1",
    "aria-label": t("field.extension_amount"), title: t("field.extension_amount"), dataset: { testid: "extension-amount" } });
  const pending = (c.extensions || []).some((e) => e.status === "pending");
  return h("details", { class: "field-branches", dataset: { testid: "field-branches" } },
    h("summary", {}, `${t("field.progress")} · ${t("field.extension")} · ${t("field.return")}`),
    ...noted("field.progress", "field.progress_note", "field-progress", "progress", (note) => ({ note })),
    ...(pending ? [] : [amount, ...noted("field.extension", "field.extension_reason", "field-extension", "extension",
      (reason) => ({ amount: Number(amount.value), reason }))]),
    ...noted("field.return", "field.return_reason", "field-return", "return", (reason) => ({ reason })),
  );
}

/** What the user is typing in the detail's action inputs, put back after a live re-render. */
export function keepTyped(root) {
  const typed = new Map();
  for (const el of root.querySelectorAll(".actions input[data-testid], .actions select[data-testid]")) {
    if (el.value) typed.set(el.dataset.testid, el.value);
  }
  return () => {
    for (const [testid, value] of typed) {
      const el = root.querySelector(`.actions [data-testid="${testid}"]`);
      if (el && !el.value) el.value = value;
    }
  };
}
