// "Go live" on the field page: publish the phone's camera and microphone to the hub over WHIP
// (POST /whip/{name}, answered with H.264 + Opus), so the command centre can watch the scene.

import { api, errorText } from "./api.js";
import { fill, h, notify } from "./dom.js";
import { t } from "./i18n.js";

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

/** H.264 first (the hub relays it without transcoding), then whatever else the browser has. */
function preferH264(transceiver) {
  const caps = window.RTCRtpSender && RTCRtpSender.getCapabilities && RTCRtpSender.getCapabilities("video");
  if (!caps || !transceiver.setCodecPreferences) return;
  const h264 = caps.codecs.filter((c) => c.mimeType.toLowerCase() === "video/h264");
  if (h264.length) transceiver.setCodecPreferences([...h264, ...caps.codecs.filter((c) => !h264.includes(c))]);
}

export class LivePanel {
  constructor(el, { user }) {
    this.el = el;
    this.user = user;
    this.state = "idle"; // idle | starting | live | error
    this.error = "";
    this.pc = null;
    this.stream = null;
    this.location = null;
    this.preview = h("video", { class: "live-preview", muted: true, autoplay: true, playsInline: true, dataset: { testid: "live-preview" } });
    this.preview.muted = true;
    this.render();
  }

  get name() {
    return this.user.username;
  }

  render() {
    const button =
      this.state === "live" || this.state === "starting"
        ? h("button", { type: "button", class: "btn btn-block btn-danger", dataset: { testid: "live-stop" } }, t("live.stop"))
        : h("button", { type: "button", class: "btn btn-block btn-primary", dataset: { testid: "live-start" } }, t("live.start"));
    button.onclick = () => (this.state === "live" || this.state === "starting" ? this.stop() : this.start());
    button.disabled = this.state === "starting";
    fill(
      this.el,
      h("header", { class: "live-head" },
        h("h2", {}, t("live.title")),
        h("span", { class: `badge live-${this.state}`, dataset: { testid: "live-state", state: this.state } }, t(`live.state.${this.state}`))),
      this.state === "live" || this.state === "starting" ? this.preview : h("p", { class: "muted" }, t("live.hint")),
      this.error ? h("p", { class: "error", role: "alert" }, this.error) : null,
      button,
    );
  }

  async start() {
    if (this.pc) return;
    this.state = "starting";
    this.error = "";
    this.render();
    try {
      this.stream = await navigator.mediaDevices.getUserMedia({
        video: { facingMode: "environment", width: { ideal: 1280 }, height: { ideal: 720 } },
        audio: { echoCancellation: true, noiseSuppression: true },
      });
      this.preview.srcObject = this.stream;
      const pc = new RTCPeerConnection({ iceServers: [] });
      this.pc = pc;
      for (const track of this.stream.getTracks()) {
        const transceiver = pc.addTransceiver(track, { direction: "sendonly", streams: [this.stream] });
        if (track.kind === "video") preferH264(transceiver);
      }
      pc.addEventListener("connectionstatechange", () => {
        if (pc !== this.pc) return;
        if (pc.connectionState === "connected") this._set("live");
        else if (pc.connectionState === "failed") this._fail(t("live.lost"));
      });
      await pc.setLocalDescription(await pc.createOffer());
      await iceGathered(pc);
      if (pc !== this.pc) return;
      const response = await api(`/whip/${encodeURIComponent(this.name)}`, {
        method: "POST",
        raw: true,
        headers: { "Content-Type": "application/sdp" },
        data: pc.localDescription.sdp,
      });
      this.location = response.headers.get("Location");
      await pc.setRemoteDescription({ type: "answer", sdp: await response.text() });
      notify(t("live.started"));
    } catch (err) {
      this._fail(errorText(err));
    }
  }

  _set(state) {
    this.state = state;
    this.render();
  }

  _fail(message) {
    this._release();
    this.error = message;
    this._set("error");
  }

  /** Stop publishing: end the WHIP session, release camera and microphone. */
  async stop(keepalive = false) {
    const location = this.location;
    this._release();
    this._set("idle");
    if (location) {
      try {
        await api(location, { method: "DELETE", keepalive });
      } catch {
        // the hub ends a silent publisher by itself
      }
    }
  }

  _release() {
    if (this.pc) this.pc.close();
    this.pc = null;
    this.location = null;
    if (this.stream) for (const track of this.stream.getTracks()) track.stop();
    this.stream = null;
    this.preview.srcObject = null;
  }

  close(keepalive = false) {
    if (this.pc) this.stop(keepalive);
  }
}
