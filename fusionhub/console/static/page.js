// What both pages share around the login: static strings, the language switch, the login form,
// and the live-connection indicator.

import { errorText, login } from "./api.js";
import { getLang, onLangChange, setLang, t } from "./i18n.js";

/** Fill elements marked data-i18n (text), data-i18n-label (aria-label), data-i18n-placeholder. */
export function applyStatic(root = document) {
  for (const el of root.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
  for (const el of root.querySelectorAll("[data-i18n-label]")) el.setAttribute("aria-label", t(el.dataset.i18nLabel));
  for (const el of root.querySelectorAll("[data-i18n-placeholder]")) el.placeholder = t(el.dataset.i18nPlaceholder);
}

/** The language button toggles zh-CN/en (kept in localStorage) and re-renders via `onChange`. */
export function setupLangSwitch(button, titleKey, onChange) {
  button.addEventListener("click", () => setLang(getLang() === "en" ? "zh-CN" : "en"));
  onLangChange(() => {
    applyStatic();
    document.title = t(titleKey);
    onChange();
  });
  document.title = t(titleKey);
}

/** Wire the login form: on success `onLoggedIn(reply)`; errors shown in `errorEl`, translated. */
export function setupLoginForm(form, errorEl, onLoggedIn) {
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const username = form.elements.username.value.trim();
    const password = form.elements.password.value;
    if (!username || !password) {
      errorEl.textContent = t("login.missing");
      return;
    }
    const button = form.querySelector("button[type=submit]");
    button.disabled = true;
    button.textContent = t("login.busy");
    errorEl.textContent = "";
    try {
      const reply = await login(username, password);
      form.elements.password.value = "";
      await onLoggedIn(reply);
    } catch (err) {
      errorEl.textContent = errorText(err);
    } finally {
      button.disabled = false;
      button.textContent = t("login.submit");
    }
  });
}

/** Show the websocket state ("live", "connecting", "lost") in an indicator element. */
export function showConnection(el, state) {
  el.hidden = false;
  el.dataset.state = state;
  el.textContent = t(state === "live" ? "conn.live" : state === "lost" ? "conn.lost" : "conn.connecting");
}
