// Push-to-talk group intercom, shared by the console and the field page: pick a channel, join its
// audio over WebRTC, hold Space or the big button to talk. The hub decides who talks (floor
// control on the "floor" data channel) and forwards only that person's audio. The microphone is
// attached to the sender only while this user holds the floor: replaceTrack(null) sends nothing
// at all (a disabled track would still send silence).

import { api, blobUrl, errorText } from "./api.js";
import { fill, h, notify, notifyError } from "./dom.js";
import { t, tr } from "./i18n.js";
import { iceGathered } from "./wall.js";

const LEVEL_DECAY_MS = 400;

/** A recorded burst in a case timeline: a button that fetches the recording (behind the login) and plays it. */
export function burstPlayer(data) {
  const seconds = Number(data.duration_s || 0).toFixed(1);
  const button = h("button", { type: "button", class: "btn btn-ghost", dataset: { testid: "burst-play" } },
    t("ptt.play", { s: seconds, name: data.speaker_name || "" }));
  const box = h("span", { class: "burst" }, button);
  button.addEventListener("click", async () => {
    button.disabled = true;
    try {
      const player = h("audio", { controls: true, autoplay: true, dataset: { testid: "burst-audio" } });
      player.src = await blobUrl(data.url);
      player.addEventListener("emptied", () => URL.revokeObjectURL(player.src));
      box.replaceChildren(player);
    } catch (err) {
      button.disabled = false;
      notifyError(err);
    }
  });
  return box;
}

function roomPath(roomId) {
  return `/api/v1/rooms/${encodeURIComponent(roomId)}`;
}

/** One joined channel: peer connection, floor channel, microphone; torn down by close(). */
class Channel {
  constructor(room, panel) {
    this.room = room;
    this.panel = panel;
    this.pc = null;
    this.dc = null;
    this.sender = null;
    this.mic = null;
    this.audio = h("audio", { autoplay: true, dataset: { testid: "ptt-audio" } });
    this.location = null;
    this.you = null;
    this.floor = { state: "idle", holder: null, queue: [] };
    this.participants = [];
    this.mine = "idle"; // idle | requesting | talking | queued | revoked
    this.position = null;
    this.lastNotice = null; // {kind, reason}
    this.holding = false; // the key or button is down
    this.level = 0;
    this.levelAt = 0;
    this.state = "connecting";
    this.closed = false;
  }

  async open() {
    this.mic = await navigator.mediaDevices.getUserMedia({ audio: { echoCancellation: true, noiseSuppression: true } });
    const pc = new RTCPeerConnection({ iceServers: [] });
    this.pc = pc;
    // no track at first: the hub hears nothing from us until the floor is ours
    this.sender = pc.addTransceiver("audio", { direction: "sendrecv" }).sender;
    this.dc = pc.createDataChannel("floor");
    this.dc.onmessage = (ev) => this._message(ev.data);
    this.dc.onclose = () => this._lost();
    pc.addEventListener("track", (ev) => {
      this.audio.srcObject = ev.streams && ev.streams[0] ? ev.streams[0] : new MediaStream([ev.track]);
      this.audio.play().catch(() => {});
    });
    pc.addEventListener("connectionstatechange", () => {
      if (pc.connectionState === "connected") this._setState("live");
      else if (pc.connectionState === "failed" || pc.connectionState === "closed") this._lost();
    });
    await pc.setLocalDescription(await pc.createOffer());
    await iceGathered(pc);
    if (this.closed) return;
    const response = await api(`${roomPath(this.room.id)}/join`, {
      method: "POST",
      data: pc.localDescription.sdp,
      headers: { "Content-Type": "application/sdp" },
      raw: true,
    });
    this.location = response.headers.get("Location");
    await pc.setRemoteDescription({ type: "answer", sdp: await response.text() });
  }

  _setState(state) {
    this.state = state;
    this.panel.render();
  }

  _lost() {
    if (this.closed) return;
    this._stopSending();
    this._setState("lost");
  }

  _send(type, data = {}) {
    if (this.dc && this.dc.readyState === "open") this.dc.send(JSON.stringify({ type, ...data }));
  }

  _message(text) {
    let msg;
    try {
      msg = JSON.parse(text);
    } catch {
      return;
    }
    switch (msg.type) {
      case "hello":
        this.you = msg.you;
        this.participants = msg.participants || [];
        this.floor = msg.floor || this.floor;
        this._setState("live");
        return;
      case "floor":
        this.floor = msg;
        if (msg.state === "idle") this.level = 0;
        break;
      case "participants":
        this.participants = msg.participants || [];
        break;
      case "granted":
        this.position = null;
        if (this.holding) {
          this.mine = "talking";
          this._startSending();
        } else {
          this._send("release"); // let go before the grant arrived
        }
        break;
      case "queued":
        this.mine = "queued";
        this.position = msg.position;
        break;
      case "denied":
        this.mine = "idle";
        this.lastNotice = { kind: "denied", reason: msg.reason };
        notify(t("ptt.denied", { reason: tr("ptt.reason", msg.reason) }), "error");
        break;
      case "revoked":
        this.lastNotice = { kind: "revoked", reason: msg.reason };
        this.mine = "revoked";
        if (!msg.grace_s) this._stopSending();
        notify(t("ptt.revoked", { reason: tr("ptt.reason", msg.reason) }), "error");
        break;
      case "ended":
        this._stopSending();
        if (this.mine !== "revoked") this.mine = "idle";
        break;
      case "dequeued":
        this.mine = "idle";
        this.position = null;
        break;
      case "level":
        this.level = Number(msg.level) || 0;
        this.levelAt = performance.now();
        this.panel.renderLevel();
        return;
      default:
        return;
    }
    this.panel.render();
  }

  _startSending() {
    const track = this.mic && this.mic.getAudioTracks()[0];
    if (track && this.sender) this.sender.replaceTrack(track).catch((err) => notifyError(err));
  }

  _stopSending() {
    if (this.sender) this.sender.replaceTrack(null).catch(() => {});
  }

  /** Key or button down: ask for the floor (an emergency request beats everyone). */
  press(emergency = false) {
    if (this.holding || this.state !== "live") return;
    this.holding = true;
    this.lastNotice = null;
    this.mine = "requesting";
    this._send("request", { emergency });
    this.panel.render();
  }

  /** Key or button up: stop talking, or leave the queue. */
  letGo() {
    if (!this.holding) return;
    this.holding = false;
    this._stopSending();
    this._send("release");
    if (this.mine !== "revoked") this.mine = "idle";
    this.position = null;
    this.panel.render();
  }

  async close(keepalive = false) {
    if (this.closed) return;
    this.closed = true;
    this._stopSending();
    if (this.location) api(this.location, { method: "DELETE", keepalive }).catch(() => {});
    if (this.dc) this.dc.close();
    if (this.pc) this.pc.close();
    if (this.mic) for (const track of this.mic.getTracks()) track.stop();
    this.audio.srcObject = null;
  }
}

/** The intercom panel: channel list, floor state, level meter, push-to-talk button and Space key.
 *  The joined channel's view is built once and updated in place: a button being held, or the
 *  audio element playing, must never be replaced under the user's finger. */
export class IntercomPanel {
  constructor(root, { user } = {}) {
    this.root = root;
    this.user = user;
    this.rooms = [];
    this.channel = null;
    this.view = null;
    this.error = "";
    this.emergency = false;
    this.headEl = h("div", { class: "ptt-head" });
    this.errorEl = h("p", { class: "error", role: "alert" });
    this.listEl = h("div", { class: "ptt-list" });
    this.channelEl = h("div", { class: "ptt-slot" });
    fill(this.root, this.headEl, this.errorEl, this.listEl, this.channelEl);
    this._onKeyDown = (ev) => this._key(ev, true);
    this._onKeyUp = (ev) => this._key(ev, false);
    this._onBlur = () => this.channel && this.channel.letGo();
    window.addEventListener("keydown", this._onKeyDown);
    window.addEventListener("keyup", this._onKeyUp);
    window.addEventListener("blur", this._onBlur);
    this.levelTimer = setInterval(() => this.renderLevel(), 100);
    this.render(true);
  }

  async load() {
    try {
      this.rooms = await api("/api/v1/rooms");
      this.error = "";
    } catch (err) {
      this.error = errorText(err);
    }
    this.render(true);
  }

  async join(room) {
    await this.leave();
    const channel = new Channel(room, this);
    this.channel = channel;
    this.view = this._buildView(channel);
    fill(this.channelEl, this.view.el);
    this.render(true);
    try {
      await channel.open();
    } catch (err) {
      if (this.channel === channel) await this.leave();
      else await channel.close();
      this.error = errorText(err);
      notifyError(err);
      this.render(true);
    }
  }

  /** Open (or widen) a case's channel and join it (commander, from the case board). */
  async joinCase(caseId) {
    const room = await api("/api/v1/rooms", { method: "POST", body: { case_id: caseId } });
    await this.load();
    await this.join(room);
  }

  async leave(keepalive = false) {
    const channel = this.channel;
    this.channel = null;
    this.view = null;
    this.channelEl.replaceChildren();
    if (channel) await channel.close(keepalive);
    this.render(true);
  }

  _key(ev, down) {
    if (ev.code !== "Space" || !this.channel || this.root.offsetParent === null) return;
    const target = ev.target;
    const typing = target && (target.isContentEditable || ["INPUT", "TEXTAREA", "SELECT"].includes(target.tagName));
    if (typing) return; // typing a space is not talking
    ev.preventDefault();
    if (down && !ev.repeat) this.channel.press(this.emergency);
    else if (!down) this.channel.letGo();
  }

  _buildView(ch) {
    const v = {};
    const press = (ev) => {
      ev.preventDefault();
      if (this.channel === ch) ch.press(this.emergency);
    };
    const letGo = (ev) => {
      ev.preventDefault();
      if (this.channel === ch) ch.letGo();
    };
    v.talk = h("button", { type: "button", class: "ptt-button", dataset: { testid: "ptt-talk" } });
    v.talk.addEventListener("pointerdown", press);
    v.talk.addEventListener("pointerup", letGo);
    v.talk.addEventListener("pointercancel", letGo);
    v.talk.addEventListener("pointerleave", letGo);
    // phones: touch events too (a long press must not select text or open a menu)
    v.talk.addEventListener("touchstart", press, { passive: false });
    v.talk.addEventListener("touchend", letGo, { passive: false });
    v.talk.addEventListener("touchcancel", letGo, { passive: false });
    v.talk.addEventListener("contextmenu", (ev) => ev.preventDefault());
    v.talk.addEventListener("keydown", (ev) => ev.code === "Space" && ev.preventDefault()); // no click on Space
    v.title = h("span");
    v.conn = h("span", { class: "muted", dataset: { testid: "ptt-conn" } });
    v.floor = h("p", { class: "ptt-floor", dataset: { testid: "ptt-floor" } });
    v.meterFill = h("span", { class: "ptt-meter-fill" });
    v.meter = h("div", { class: "ptt-meter", dataset: { testid: "ptt-level" }, role: "meter", "aria-valuemin": "0", "aria-valuemax": "1" }, v.meterFill);
    v.mine = h("p", { class: "ptt-mine", dataset: { testid: "ptt-mine" } });
    v.queue = h("p", { class: "muted", dataset: { testid: "ptt-queue" } });
    v.emergency = h("input", { type: "checkbox", id: "ptt-emergency", dataset: { testid: "ptt-emergency" } });
    v.emergency.checked = this.emergency;
    v.emergency.addEventListener("change", () => {
      this.emergency = v.emergency.checked;
    });
    v.emergencyText = h("span");
    v.revoke = h("button", { type: "button", class: "btn btn-danger", dataset: { testid: "ptt-revoke" } });
    v.revoke.addEventListener("click", () =>
      api(`${roomPath(ch.room.id)}/revoke`, { method: "POST", body: {} }).catch(notifyError));
    v.present = h("p", { class: "muted", dataset: { testid: "ptt-participants" } });
    v.el = h(
      "section",
      { class: "ptt-channel card", dataset: { testid: "ptt-channel" }, "aria-live": "polite" },
      h("h3", {}, v.title, " · ", v.conn),
      v.floor,
      v.meter,
      v.mine,
      v.queue,
      v.talk,
      h("div", { class: "row" }, h("label", { for: "ptt-emergency", class: "ptt-emergency" }, v.emergency, " ", v.emergencyText), v.revoke),
      v.present,
      ch.audio,
    );
    return v;
  }

  _floorLine(ch) {
    const floor = ch.floor || {};
    const holder = floor.holder;
    if (floor.state === "idle" || !holder) return t("ptt.idle");
    const name = holder.id === ch.you ? t("ptt.you") : holder.name || "?";
    const key = floor.state === "revoking" ? "ptt.finishing" : "ptt.talking";
    return t(key, { name }) + (holder.emergency ? ` · ${t("ptt.emergency_badge")}` : "");
  }

  _mineLine(ch) {
    if (ch.mine === "talking") return t("ptt.you_talk");
    if (ch.mine === "queued") return t("ptt.queued", { n: ch.position });
    if (ch.mine === "requesting") return t("ptt.requesting");
    if (ch.lastNotice) {
      const key = ch.lastNotice.kind === "denied" ? "ptt.denied" : "ptt.revoked";
      return t(key, { reason: tr("ptt.reason", ch.lastNotice.reason) });
    }
    return t("ptt.hint");
  }

  /** Update what is shown; `all` also rebuilds the channel list (after a load or a language switch). */
  render(all = false) {
    const ch = this.channel;
    if (all) {
      fill(this.headEl, h("h2", {}, t("ptt.title")),
        h("button", { type: "button", class: "btn btn-ghost", onclick: () => this.load() }, t("refresh")));
      this.errorEl.textContent = this.error;
      fill(this.listEl, this.rooms.length ? this._roomList() : h("p", { class: "empty" }, t("ptt.no_rooms")));
    } else {
      for (const li of this.listEl.querySelectorAll("[data-room-id]")) li.dataset.joined = String(Boolean(ch && ch.room.id === li.dataset.roomId));
    }
    const v = this.view;
    if (!ch || !v) return;
    const floor = ch.floor || { state: "idle" };
    const holder = floor.holder;
    Object.assign(v.el.dataset, {
      state: ch.state,
      floor: floor.state || "idle",
      mine: ch.mine,
      holder: holder ? String(holder.user_id ?? "") : "",
    });
    v.el.className = `ptt-channel card ptt-${ch.mine}`;
    v.title.textContent = ch.room.name;
    v.conn.textContent = tr("ptt.conn", ch.state);
    v.floor.textContent = this._floorLine(ch);
    v.mine.textContent = this._mineLine(ch);
    const queue = (floor.queue || []).map((q, i) => `${i + 1}. ${q.name || "?"}`).join("  ");
    v.queue.textContent = queue ? t("ptt.queue", { list: queue }) : "";
    v.queue.hidden = !queue;
    v.talk.textContent = ch.mine === "talking" ? t("ptt.release") : t("ptt.hold");
    v.talk.setAttribute("aria-pressed", String(ch.holding));
    v.talk.disabled = ch.state !== "live";
    v.meter.setAttribute("aria-label", t("ptt.level"));
    v.emergencyText.textContent = t("ptt.emergency");
    v.revoke.textContent = t("ptt.revoke");
    v.revoke.hidden = !(this.user && this.user.role === "commander" && holder);
    v.present.textContent = t("ptt.present", { list: ch.participants.map((p) => p.name).join(t("ptt.sep")) || t("none") });
    this.renderLevel();
  }

  _roomList() {
    const ch = this.channel;
    return h(
      "ul",
      { class: "ptt-rooms", dataset: { testid: "ptt-rooms" } },
      this.rooms.map((room) => {
        const talking = room.floor && room.floor.holder ? room.floor.holder.name : "";
        return h(
          "li",
          { class: "ptt-room", dataset: { testid: "ptt-room", roomId: room.id, joined: String(Boolean(ch && ch.room.id === room.id)) } },
          h("span", { class: "ptt-room-name" }, `${tr("ptt.kind", room.kind)} · ${room.name}`),
          h("span", { class: "muted" }, t("ptt.members", { n: (room.participants || []).length }) + (talking ? ` · ${t("ptt.talking", { name: talking })}` : "")),
          h("button", { type: "button", class: "btn btn-primary ptt-join", dataset: { testid: "ptt-join" }, onclick: () => this.join(room) }, t("ptt.join")),
          h("button", { type: "button", class: "btn ptt-leave", dataset: { testid: "ptt-leave" }, onclick: () => this.leave() }, t("ptt.leave")),
        );
      }),
    );
  }

  renderLevel() {
    const ch = this.channel;
    const v = this.view;
    if (!v || !ch) return;
    const fresh = performance.now() - ch.levelAt < LEVEL_DECAY_MS;
    const level = ch.floor && ch.floor.state !== "idle" && fresh ? ch.level : 0;
    v.meterFill.style.width = `${Math.round(level * 100)}%`;
    v.meter.setAttribute("aria-valuenow", level.toFixed(2));
  }

  /** For tests and diagnostics: the joined channel's state. */
  debug() {
    const ch = this.channel;
    return ch ? { room: ch.room.id, you: ch.you, state: ch.state, mine: ch.mine, floor: ch.floor, level: ch.level, position: ch.position, holding: ch.holding } : null;
  }

  /** For tests: a raw floor message, as a client with a broken microphone would send it. */
  sendRaw(type, data = {}) {
    if (this.channel) this.channel._send(type, data);
  }

  close(keepalive = false) {
    window.removeEventListener("keydown", this._onKeyDown);
    window.removeEventListener("keyup", this._onKeyUp);
    window.removeEventListener("blur", this._onBlur);
    clearInterval(this.levelTimer);
    this.leave(keepalive);
  }
}
