// Field live: the phones and terminals publishing to the hub (WHIP), each watched with its sound
// over WHEP on demand (POST /whep/publishers/{name}); kept up to date by media.publisher_status.

import { api, errorText } from "./api.js";
import { fill, h } from "./dom.js";
import { formatTime, t } from "./i18n.js";

function iceGathered(pc) {
  if (pc.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((done) => {
    const check = () => {
      if (pc.iceGatheringState === "complete") {
        pc.removeEventListener("icegatheringstatechange", check);
        done();
      }
    };
    pc.addEventListener("icegatheringstatechange", check);
  });
}

/** One publisher's tile: its name and state; "watch" opens video + sound, "stop" ends viewing. */
class LiveTile {
  constructor(pub) {
    this.pub = pub;
    this.pc = null;
    this.session = null;
    this.video = h("video", { class: "live-video", autoplay: true, playsInline: true, dataset: { testid: "live-video" } });
    this.error = h("p", { class: "error", role: "alert" });
    this.el = h("article", { class: "live-tile card", dataset: { testid: "live-tile", name: pub.name } });
    this.render();
  }

  update(pub) {
    this.pub = { ...this.pub, ...pub };
    this.render();
  }

  render() {
    const pub = this.pub;
    const watching = this.pc !== null;
    const button = h("button", { type: "button", class: `btn ${watching ? "" : "btn-primary"}`, dataset: { testid: watching ? "live-unwatch" : "live-watch" } },
      t(watching ? "livewall.stop" : "livewall.watch"));
    button.onclick = () => (watching ? this.stop() : this.watch());
    fill(
      this.el,
      h("header", { class: "live-head" },
        h("h3", {}, pub.name),
        h("span", { class: `badge live-${pub.state}`, dataset: { state: pub.state } }, t(`livewall.state.${pub.state}`))),
      h("p", { class: "muted" }, t("livewall.since", { time: formatTime(pub.since) }), pub.has_audio ? ` · ${t("livewall.sound")}` : ""),
      watching ? this.video : null,
      this.error,
      button,
    );
  }

  async watch() {
    this.error.textContent = "";
    const pc = new RTCPeerConnection({ iceServers: [] });
    this.pc = pc;
    pc.addTransceiver("video", { direction: "recvonly" });
    pc.addTransceiver("audio", { direction: "recvonly" });
    const stream = new MediaStream();
    pc.addEventListener("track", (ev) => {
      stream.addTrack(ev.track);
      this.video.srcObject = stream;
      this.video.play().catch(() => {});
    });
    this.render();
    try {
      await pc.setLocalDescription(await pc.createOffer());
      await iceGathered(pc);
      const response = await api(`/whep/publishers/${encodeURIComponent(this.pub.name)}`, {
        method: "POST",
        raw: true,
        headers: { "Content-Type": "application/sdp" },
        data: pc.localDescription.sdp,
      });
      this.session = response.headers.get("Location");
      if (pc !== this.pc) return;
      await pc.setRemoteDescription({ type: "answer", sdp: await response.text() });
    } catch (err) {
      this.stop();
      this.error.textContent = errorText(err);
    }
  }

  stop(keepalive = false) {
    if (this.pc) this.pc.close();
    this.pc = null;
    this.video.srcObject = null;
    const session = this.session;
    this.session = null;
    if (session) api(session, { method: "DELETE", keepalive }).catch(() => {});
    this.render();
  }
}

export class LiveBoard {
  constructor(panel) {
    this.panel = panel;
    this.tiles = new Map(); // name -> LiveTile
    this.error = h("p", { class: "error", role: "alert" });
    this.empty = h("p", { class: "empty", dataset: { testid: "live-empty" } });
    this.grid = h("div", { class: "live-grid" });
    fill(panel, this.error, this.empty, this.grid);
    this.render();
  }

  async load() {
    try {
      const pubs = await api("/api/v1/publishers");
      const names = new Set(pubs.map((p) => p.name));
      for (const name of [...this.tiles.keys()]) if (!names.has(name)) this._drop(name);
      for (const pub of pubs) this.onStatus(pub);
      this.error.textContent = "";
    } catch (err) {
      this.error.textContent = errorText(err);
    }
    this.render();
  }

  /** `media.publisher_status`. */
  onStatus(pub) {
    if (pub.state === "offline") {
      this._drop(pub.name);
    } else if (this.tiles.has(pub.name)) {
      this.tiles.get(pub.name).update(pub);
    } else {
      const tile = new LiveTile(pub);
      this.tiles.set(pub.name, tile);
      this.grid.append(tile.el);
    }
    this.render();
  }

  _drop(name) {
    const tile = this.tiles.get(name);
    if (!tile) return;
    tile.stop();
    tile.el.remove();
    this.tiles.delete(name);
  }

  render(full = false) {
    this.empty.textContent = t("livewall.empty");
    this.empty.hidden = this.tiles.size > 0;
    if (full) for (const tile of this.tiles.values()) tile.render();
  }

  close(keepalive = false) {
    for (const tile of this.tiles.values()) tile.stop(keepalive);
  }
}
