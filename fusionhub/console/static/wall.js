// The video wall: one tile per camera, live H.264 over WHEP, status badges from the websocket.

import { ApiError, api, errorText } from "./api.js";
import { fill, h } from "./dom.js";
import { formatTime, t, tr } from "./i18n.js";

const ICE_GATHER_TIMEOUT_MS = 3000;
const RETRY_MIN_S = 1;
const RETRY_MAX_S = 30;
const DISCONNECTED_GRACE_MS = 5000;

/** Resolve once ICE gathering is complete (or after a timeout: host candidates come first). */
export function iceGathered(pc) {
  if (pc.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(done, ICE_GATHER_TIMEOUT_MS);
    function done() {
      clearTimeout(timer);
      pc.removeEventListener("icegatheringstatechange", check);
      resolve();
    }
    function check() {
      if (pc.iceGatheringState === "complete") done();
    }
    pc.addEventListener("icegatheringstatechange", check);
  });
}

/** The status badge text: state, plus the reason when there is one. */
export function statusText(status) {
  const state = (status && status.state) || "unknown";
  const reason = status && status.reason ? tr("reason", status.reason) : "";
  return reason ? `${tr("state", state)} · ${reason}` : tr("state", state);
}

/** One camera tile: owns its peer connection, WHEP session and retry timer. */
class Tile {
  constructor(camera) {
    this.camera = camera;
    this.id = Number(camera.id);
    this.status = camera.status || { state: "unknown" };
    this.pc = null;
    this.session = null;
    this.generation = 0;
    this.attempt = 0;
    this.retryTimer = null;
    this.countdownTimer = null;
    this.graceTimer = null;
    this.phase = "connecting";
    this.phaseParams = {};
    this.closed = false;

    this.video = h("video", { autoplay: true, muted: true, playsInline: true, class: "tile-video" });
    this.video.muted = true; // autoplay without a gesture needs the property, not only the attribute
    this.video.setAttribute("playsinline", "");
    this.video.setAttribute("muted", "");
    this.nameEl = h("span", { class: "tile-name" });
    this.badge = h("span", { class: "badge", dataset: { testid: "camera-status" } });
    this.overlay = h("div", { class: "tile-overlay", role: "status" });
    this.el = h(
      "article",
      { class: "tile", dataset: { testid: "video-tile", cameraId: String(this.id) } },
      this.video,
      h("div", { class: "tile-bar" }, this.nameEl, this.badge),
      this.overlay,
    );
    this.video.addEventListener("playing", () => this._setPhase("playing"));
    this.render();
  }

  render() {
    this.nameEl.textContent = this.camera.name;
    this.el.setAttribute("aria-label", t("wall.camera", { name: this.camera.name }));
    const state = this.status.state || "unknown";
    this.el.dataset.state = state;
    this.badge.className = `badge state-${state}`;
    this.badge.textContent = statusText(this.status);
    this.badge.title = this.status.since ? formatTime(this.status.since) : "";
    const key = { connecting: "wall.connecting", waiting: "wall.waiting", retrying: "wall.retrying" }[this.phase];
    this.overlay.hidden = this.phase === "playing";
    if (key) this.overlay.textContent = t(key, this.phaseParams);
    else if (this.phase === "error") this.overlay.textContent = this.phaseParams.message;
  }

  _setPhase(phase, params = {}) {
    this.phase = phase;
    this.phaseParams = params;
    this.el.dataset.video = phase;
    this.render();
  }

  setStatus(status) {
    this.status = { ...this.status, ...status };
    this.render();
    // the camera came back while we wait to retry: try now instead of at the end of the backoff
    if (this.status.state === "online" && this.retryTimer !== null) {
      this.attempt = 0;
      this.connect();
    }
  }

  async connect() {
    this._clearTimers();
    await this._teardown(false);
    if (this.closed) return;
    const generation = ++this.generation;
    this._setPhase("connecting");
    const pc = new RTCPeerConnection({ iceServers: [] });
    this.pc = pc;
    pc.addTransceiver("video", { direction: "recvonly" });
    pc.addEventListener("track", (ev) => {
      this.video.srcObject = ev.streams && ev.streams[0] ? ev.streams[0] : new MediaStream([ev.track]);
      this.video.play().catch(() => {});
    });
    pc.addEventListener("connectionstatechange", () => this._onConnectionState(pc, generation));
    try {
      await pc.setLocalDescription(await pc.createOffer());
      await iceGathered(pc);
      if (generation !== this.generation) return;
      const response = await api(`/whep/cameras/${this.id}`, {
        method: "POST",
        raw: true,
        headers: { "Content-Type": "application/sdp" },
        data: pc.localDescription.sdp,
      });
      const location = response.headers.get("Location");
      const answer = await response.text();
      const session = location ? new URL(location, response.url || window.location.href).pathname : null;
      if (generation !== this.generation) {
        if (session) this._deleteSession(session);
        return;
      }
      this.session = session;
      await pc.setRemoteDescription({ type: "answer", sdp: answer });
      if (this.phase === "connecting") this._setPhase("waiting");
    } catch (err) {
      if (generation !== this.generation) return;
      console.warn("WHEP for camera", this.id, "failed:", err);
      if (err instanceof ApiError && err.code === "codec_unsupported") {
        this._stop(errorText(err)); // retrying cannot help: say so on the tile
      } else {
        // a full hub says when to come back (503 Retry-After)
        this._fail(errorText(err), err instanceof ApiError ? err.retryAfter : null);
      }
    }
  }

  /** A failure retrying cannot mend: the reason stays on the tile. */
  _stop(message) {
    this._clearTimers();
    this._teardown(false);
    this.overlay.title = message;
    this._setPhase("error", { message });
  }

  _onConnectionState(pc, generation) {
    if (generation !== this.generation) return;
    const state = pc.connectionState;
    clearTimeout(this.graceTimer);
    if (state === "failed") this._fail("ICE failed");
    else if (state === "disconnected") {
      // often recovers by itself; give it a moment before starting over
      this.graceTimer = setTimeout(() => {
        if (generation === this.generation && pc.connectionState !== "connected") this._fail("disconnected");
      }, DISCONNECTED_GRACE_MS);
    } else if (state === "connected" && this.phase !== "playing") {
      this.attempt = 0;
      if (this.video.readyState < 2) this._setPhase("waiting");
    }
  }

  _fail(message, retryAfter = null) {
    if (this.closed) return;
    const backoff = Math.min(RETRY_MAX_S, RETRY_MIN_S * 2 ** this.attempt);
    const delay = retryAfter ? Math.max(backoff, Math.min(RETRY_MAX_S, retryAfter)) : backoff;
    this.attempt += 1;
    this._teardown(false);
    let left = delay;
    this._setPhase("retrying", { s: left });
    this.overlay.title = message;
    this._clearTimers();
    this.countdownTimer = setInterval(() => {
      left = Math.max(0, left - 1);
      if (this.phase === "retrying") this._setPhase("retrying", { s: left });
    }, 1000);
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      this.connect();
    }, delay * 1000);
  }

  _clearTimers() {
    clearTimeout(this.retryTimer);
    clearInterval(this.countdownTimer);
    clearTimeout(this.graceTimer);
    this.retryTimer = null;
    this.countdownTimer = null;
    this.graceTimer = null;
  }

  _deleteSession(path, keepalive = false) {
    return api(path, { method: "DELETE", keepalive }).catch(() => {
      // the session may already be gone (hub restarted); nothing left to end
    });
  }

  async _teardown(keepalive) {
    const pc = this.pc;
    const session = this.session;
    this.pc = null;
    this.session = null;
    if (pc) pc.close();
    this.video.srcObject = null;
    if (session) await this._deleteSession(session, keepalive);
  }

  /** End the viewing session for good (tile removed, logout, page unload). */
  close(keepalive = false) {
    this.closed = true;
    this.generation += 1;
    this._clearTimers();
    return this._teardown(keepalive);
  }

  async stats() {
    const empty = { framesDecoded: 0, frameWidth: 0, frameHeight: 0 };
    if (!this.pc) return empty;
    const report = await this.pc.getStats();
    for (const s of report.values()) {
      if (s.type === "inbound-rtp" && (s.kind === "video" || s.mediaType === "video")) {
        return {
          framesDecoded: s.framesDecoded || 0,
          frameWidth: s.frameWidth || 0,
          frameHeight: s.frameHeight || 0,
        };
      }
    }
    return empty;
  }
}

/** The wall: keeps one tile per visible camera in sync with the camera list. */
export class VideoWall {
  constructor(panel) {
    this.panel = panel;
    this.grid = h("div", { class: "wall-grid" });
    this.empty = h("p", { class: "empty", dataset: { testid: "wall-empty" } });
    this.error = h("p", { class: "error", role: "alert" });
    fill(panel, this.error, this.empty, this.grid);
    this.tiles = new Map();
    this.render();
  }

  /** Reconcile tiles with a fresh camera list (new tiles connect; gone ones end their session). */
  setCameras(cameras) {
    const seen = new Set();
    for (const cam of cameras) {
      const id = Number(cam.id);
      seen.add(id);
      let tile = this.tiles.get(id);
      if (!tile) {
        tile = new Tile(cam);
        this.tiles.set(id, tile);
        this.grid.append(tile.el);
        tile.connect();
      } else {
        tile.camera = cam;
        tile.setStatus(cam.status || {});
      }
    }
    for (const [id, tile] of this.tiles) {
      if (!seen.has(id)) {
        tile.close();
        tile.el.remove();
        this.tiles.delete(id);
      }
    }
    this.render();
  }

  async load() {
    try {
      this.setCameras(await api("/api/v1/cameras"));
      this.error.textContent = "";
    } catch (err) {
      this.error.textContent = errorText(err);
    }
  }

  /** A `media.camera_status` event. */
  onStatus(data) {
    const tile = this.tiles.get(Number(data.camera_id));
    if (tile) tile.setStatus({ state: data.state, reason: data.reason, since: data.since });
  }

  render() {
    this.empty.textContent = t("wall.empty");
    this.empty.hidden = this.tiles.size > 0;
    for (const tile of this.tiles.values()) tile.render();
  }

  /** Stats of a tile's inbound video (for tests and diagnostics). */
  stats(cameraId) {
    const tile = this.tiles.get(Number(cameraId));
    return tile ? tile.stats() : Promise.resolve({ framesDecoded: 0, frameWidth: 0, frameHeight: 0 });
  }

  /** Close every tile; `keepalive` lets the DELETEs finish while the page unloads. */
  close(keepalive = false) {
    const all = [...this.tiles.values()].map((tile) => tile.close(keepalive));
    this.tiles.clear();
    this.grid.replaceChildren();
    return Promise.all(all);
  }
}
