// Evidence clips: an MP4 behind the login, played in a <video> once asked for (fetched as a blob,
// since a <video> cannot send the token), and the state of a flag's clip in words.

import { blobUrl, errorText } from "./api.js";
import { h } from "./dom.js";
import { t, tr } from "./i18n.js";

/** A "play the clip" button that turns into a player; `path` is the API route of the MP4. */
export function clipPlayer(path, { testid = "clip" } = {}) {
  const box = h("div", { class: "clip", dataset: { testid } });
  const play = h("button", { type: "button", class: "btn", dataset: { testid: `${testid}-play` } }, `▶ ${t("clip.title")}`);
  play.onclick = async () => {
    play.disabled = true;
    try {
      const url = await blobUrl(path);
      const video = h("video", { controls: true, autoplay: true, playsInline: true, class: "clip-video", dataset: { testid: `${testid}-video`, blob: url } });
      video.muted = false;
      video.src = url;
      box.replaceChildren(video);
    } catch (err) {
      play.disabled = false;
      box.append(h("p", { class: "error", role: "alert" }, errorText(err)));
    }
  };
  box.append(play);
  return box;
}

/** A flag's clip: a player when ready, else why there is none (or that it is still recording). */
export function flagClip(flag) {
  if (flag.clip_url) return clipPlayer(flag.clip_url, { testid: "flag-clip" });
  if (flag.clip_state === "missing") {
    const reason = tr("clip.reason", flag.clip_reason);
    return h("p", { class: "muted", dataset: { testid: "flag-clip-missing" } }, t("clip.missing", { reason }));
  }
  return h("p", { class: "muted", dataset: { testid: "flag-clip-pending" } }, t("clip.recording"));
}

/** Revoke the blob URLs of the clip players under `root`. */
export function releaseClips(root) {
  for (const video of root.querySelectorAll("video[data-blob]")) {
    URL.revokeObjectURL(video.dataset.blob);
    delete video.dataset.blob;
  }
}
