// Small DOM helpers shared by both pages: element builder, notices, cues, authenticated images.

import { blobUrl, errorText } from "./api.js";
import { t } from "./i18n.js";

/**
 * Build an element: h("button", {class: "x", dataset: {testid: "y"}, onclick: fn}, "text", child).
 * Keys starting with "on" become listeners; `dataset` fills data-* attributes; false/null skip.
 */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === false || value === null || value === undefined) continue;
    if (key === "dataset") Object.assign(el.dataset, value);
    else if (key.startsWith("on") && typeof value === "function") el.addEventListener(key.slice(2), value);
    else if (key === "class") el.className = value;
    else if (key in el && typeof value !== "string") el[key] = value;
    else el.setAttribute(key, value === true ? "" : value);
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** Replace an element's children. */
export function fill(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

/** A live-region notice at the top of the page; `kind` is "info" or "error". */
export function notify(text, kind = "info") {
  let box = document.getElementById("notices");
  if (!box) {
    box = h("div", { id: "notices", class: "notices", "aria-live": "polite" });
    document.body.append(box);
  }
  const item = h("div", { class: `notice notice-${kind}`, role: kind === "error" ? "alert" : "status" }, text);
  item.dataset.testid = kind === "error" ? "notice-error" : "notice";
  box.append(item);
  setTimeout(() => item.remove(), kind === "error" ? 8000 : 4000);
}

/** Show an error from the API as a readable message (never swallowed). */
export function notifyError(err) {
  console.warn(err);
  notify(errorText(err), "error");
}

let audio = null;

/** A short two-tone beep (and a vibration on phones) when something new arrives. */
export function cue({ vibrate = false } = {}) {
  if (vibrate && navigator.vibrate) {
    try {
      navigator.vibrate([200, 100, 200]);
    } catch {
      // some browsers refuse without a recent gesture
    }
  }
  try {
    audio = audio || new AudioContext();
    if (audio.state === "suspended") audio.resume();
    const now = audio.currentTime;
    for (const [i, freq] of [880, 1175].entries()) {
      const osc = audio.createOscillator();
      const gain = audio.createGain();
      osc.frequency.value = freq;
      gain.gain.setValueAtTime(0.0001, now + i * 0.18);
      gain.gain.exponentialRampToValueAtTime(0.2, now + i * 0.18 + 0.02);
      gain.gain.exponentialRampToValueAtTime(0.0001, now + i * 0.18 + 0.16);
      osc.connect(gain).connect(audio.destination);
      osc.start(now + i * 0.18);
      osc.stop(now + i * 0.18 + 0.17);
    }
  } catch {
    // no audio output: the visual cue still shows
  }
}

/**
 * Load an image behind the login into `img` (fetch with the token, then a blob: URL).
 * The previous blob URL of this img is revoked; a failure shows a readable placeholder.
 */
export async function loadAuthImage(img, path) {
  img.classList.add("loading");
  try {
    const url = await blobUrl(path);
    if (img.dataset.blob) URL.revokeObjectURL(img.dataset.blob);
    img.dataset.blob = url;
    img.src = url;
    img.classList.remove("failed");
  } catch (err) {
    img.alt = `${t("flag.evidence_failed")}: ${errorText(err)}`;
    img.classList.add("failed");
  } finally {
    img.classList.remove("loading");
  }
}

/** Revoke the blob URLs of every authenticated image under `root` (before removing it). */
export function releaseImages(root) {
  for (const img of root.querySelectorAll("img[data-blob]")) {
    URL.revokeObjectURL(img.dataset.blob);
    delete img.dataset.blob;
  }
}

/** Run an async action with its button disabled, showing API errors in `errorEl` (and a notice). */
export async function busy(button, action, errorEl = null) {
  if (button) button.disabled = true;
  if (errorEl) errorEl.textContent = "";
  try {
    return await action();
  } catch (err) {
    if (errorEl) errorEl.textContent = errorText(err);
    notifyError(err);
    return undefined;
  } finally {
    if (button && button.isConnected) button.disabled = false;
  }
}
