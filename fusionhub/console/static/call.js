// Video calls from cases, on both pages. The console's commander calls a field member or a team
// from a case (the case detail's "Call" button sends `fh:case-call`); the field page rings with
// Answer / Decline. In a call each side publishes its camera + mic to the hub
// (POST /api/v1/calls/{id}/publish, WHIP-style) and watches the other (…/view, WHEP-style); the
// hub forwards H.264 and Opus without transcoding. The commander can snapshot the field video into
// the case and show a camera or a conference terminal beside the call: every party of the call
// then sees it (and hears a terminal), through …/feeds/{kind}/{id}/view.

import { ApiError, api, errorText } from "./api.js";
import { busy, cue, fill, h, notify } from "./dom.js";
import { t, tr } from "./i18n.js";

const VIEW_RETRY_MS = 700;
const VIEW_RETRY_MAX_MS = 5_000;
const VIEW_TRIES = 80; // about a minute for the other side (or a dialled terminal) to start sending
// worth another try: nothing to watch yet (the other side or the terminal is still connecting),
// the hub is busy (503, with its Retry-After), or the network dropped the request
const VIEW_AGAIN = new Set(["not_publishing", "conflict", "not_connected", "network"]);
const STAFF = ["commander", "duty"];

function iceGathered(pc) {
  if (pc.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((done) => {
    const check = () => {
      if (pc.iceGatheringState !== "complete") return;
      pc.removeEventListener("icegatheringstatechange", check);
      done();
    };
    pc.addEventListener("icegatheringstatechange", check);
  });
}

function preferH264(transceiver) {
  const caps = window.RTCRtpSender && RTCRtpSender.getCapabilities && RTCRtpSender.getCapabilities("video");
  if (!caps || !transceiver.setCodecPreferences) return;
  const h264 = caps.codecs.filter((c) => c.mimeType.toLowerCase() === "video/h264");
  if (h264.length) transceiver.setCodecPreferences([...h264, ...caps.codecs.filter((c) => !h264.includes(c))]);
}

/** Offer `pc`'s description to `path`; apply the SDP answer; the session path to DELETE. */
async function exchange(pc, path) {
  await pc.setLocalDescription(await pc.createOffer());
  await iceGathered(pc);
  const response = await api(path, {
    method: "POST", raw: true, headers: { "Content-Type": "application/sdp" }, data: pc.localDescription.sdp,
  });
  const location = response.headers.get("Location");
  await pc.setRemoteDescription({ type: "answer", sdp: await response.text() });
  return location;
}

/** A receive-only viewer of `path` playing into `video`: {pc, location}. */
async function watch(path, video) {
  const pc = new RTCPeerConnection({ iceServers: [] });
  pc.addTransceiver("video", { direction: "recvonly" });
  pc.addTransceiver("audio", { direction: "recvonly" });
  const stream = new MediaStream();
  pc.addEventListener("track", (ev) => {
    stream.addTrack(ev.track);
    video.srcObject = stream;
    video.play().catch(() => {});
  });
  try {
    return { pc, location: await exchange(pc, path) };
  } catch (err) {
    pc.close();
    throw err;
  }
}

/** Watch `path` like `watch`, trying again while the failure is passing (VIEW_AGAIN, 503) and
 * `current()` still wants it (`onRetry(err)` says why it waits); null when it no longer does. */
async function watchPatiently(path, video, current, onRetry = () => {}) {
  for (let i = 1; ; i++) {
    try {
      return await watch(path, video);
    } catch (err) {
      const again = err instanceof ApiError && (VIEW_AGAIN.has(err.code) || err.status === 503);
      if (!again || i >= VIEW_TRIES) throw err;
      if (err.code !== "not_publishing") onRetry(err); // the other side not sending yet is normal
      const wait = err.retryAfter ? Math.min(VIEW_RETRY_MAX_MS, err.retryAfter * 1000) : VIEW_RETRY_MS;
      await new Promise((r) => setTimeout(r, wait));
      if (!current()) return null;
    }
  }
}

function endSession(location) {
  if (location) api(location, { method: "DELETE", keepalive: true }).catch(() => {});
}

/** The call dock: ring banner, call panel, and (staff) the "call from a case" picker. */
export class CallDock {
  constructor({ user }) {
    this.user = user;
    this.call = null; // the live call I am in or rung for (API shape)
    this.media = null; // {stream, pub, view, cams: [{pc, location}]}
    this.error = "";
    this.el = h("aside", { class: "call-dock card", dataset: { testid: "call-dock" }, hidden: true });
    document.body.append(this.el);
    this.onCaseCall = (ev) => this.pick(ev.detail);
    document.addEventListener("fh:case-call", this.onCaseCall);
    window.fhCall = this; // diagnostics (and tests): stats() of the call's media
  }

  async load() {
    try {
      const calls = await api("/api/v1/calls");
      const mine = calls.find((c) => c.state === "active") || calls.find((c) => c.state === "ringing");
      if (mine) this.onChanged(mine);
      else if (this.call && !this.media) this._clear();
    } catch {
      // the socket's resync brings it back
    }
  }

  get me() {
    return Number(this.user.id);
  }

  _party(call) {
    return call.participants.some((p) => Number(p.user_id) === this.me);
  }

  /** `calls.call_changed` from the websocket (or a REST reply). */
  onChanged(call) {
    if (this.call && this.call.call_id !== call.call_id) {
      if (!this._party(call) && call.state !== "ringing") return; // someone else's call
      if (this.call.state === "active") return; // busy in another call
    }
    const ringsMe = call.state === "ringing" && call.ring_user_ids.map(Number).includes(this.me) && Number(call.caller_id) !== this.me;
    if (call.state === "ended") {
      if (this.call && this.call.call_id === call.call_id) {
        notify(t("call.ended", { reason: tr("call.reason", call.end_reason) }));
        this._hangupMedia();
        this._clear();
      }
      return;
    }
    if (call.state === "active" && !this._party(call)) {
      if (this.call && this.call.call_id === call.call_id) this._clear(); // a teammate answered
      return;
    }
    if (call.state === "ringing" && !ringsMe && Number(call.caller_id) !== this.me) return;
    const first = !this.call || this.call.call_id !== call.call_id || this.call.state !== call.state;
    this.call = call;
    if (ringsMe && first) cue({ vibrate: true });
    if (call.state === "active" && first) this._startMedia();
    if (call.state === "ringing" && Number(call.caller_id) === this.me && !this.media) this._startMedia(); // preview and publish
    this.render();
    if (call.state === "active") this._syncFeeds(call);
  }

  /** Watch every camera and terminal the caller added to the call (once each). */
  _syncFeeds(call) {
    const feeds = [...(call.camera_ids || []).map((id) => ["camera", Number(id)]),
      ...(call.terminal_ids || []).map((id) => ["terminal", Number(id)])];
    for (const [kind, id] of feeds) {
      this._watchFeed(kind, id).catch((err) => {
        if (this.call === call) {
          this.error = errorText(err);
          this.render();
        }
      });
    }
  }

  /** Staff: pick whom to call for a case (`detail` = {caseId, teams}). */
  pick({ caseId, teams }) {
    if (this.call) {
      notify(t("call.busy"), "error");
      return;
    }
    const options = [];
    for (const team of teams || []) {
      options.push(h("option", { value: `team:${team.id}` }, t("call.whole_team", { team: team.name })));
      for (const m of team.members || []) {
        if (m.role === "field") options.push(h("option", { value: `user:${m.id}` }, `${m.display_name || m.username} · ${team.name}`));
      }
    }
    const select = h("select", { class: "input", dataset: { testid: "call-callee" }, "aria-label": t("call.callee") }, options);
    const error = h("p", { class: "error", role: "alert" });
    const go = h("button", { type: "button", class: "btn btn-primary", dataset: { testid: "call-place" } }, t("call.place"));
    go.onclick = () => busy(go, async () => {
      const [kind, id] = select.value.split(":");
      if (!id) throw new Error(t("call.no_callee"));
      const call = await api(`/api/v1/cases/${caseId}/calls`, { method: "POST", body: { [`${kind}_id`]: Number(id) } });
      this.onChanged(call);
    }, error);
    const cancel = h("button", { type: "button", class: "btn", onclick: () => this._clear() }, t("cancel"));
    this.el.hidden = false;
    fill(this.el, h("h2", {}, t("call.title_case", { id: caseId })), h("label", { class: "row" }, h("span", {}, t("call.callee")), select),
      h("div", { class: "row" }, go, cancel), error);
  }

  render() {
    const call = this.call;
    if (!call) {
      this.el.hidden = true;
      fill(this.el);
      return;
    }
    this.el.hidden = false;
    const mine = Number(call.caller_id) === this.me;
    const head = h("header", { class: "call-head" },
      h("h2", {}, t("call.title_case", { id: call.case_id }), " ", call.case_title || ""),
      h("span", { class: `badge call-${call.state}`, dataset: { testid: "call-state", state: call.state } }, tr("call.state", call.state)));
    const error = h("p", { class: "error", role: "alert", dataset: { testid: "call-error" } }, this.error);
    if (call.state === "ringing" && !mine) {
      const answer = h("button", { type: "button", class: "btn btn-primary", dataset: { testid: "call-answer" } }, t("call.answer"));
      answer.onclick = () => busy(answer, async () => this.onChanged(await api(`/api/v1/calls/${call.call_id}/answer`, { method: "POST" })), error);
      const decline = h("button", { type: "button", class: "btn btn-danger", dataset: { testid: "call-decline" } }, t("call.decline"));
      decline.onclick = () => busy(decline, async () => {
        await api(`/api/v1/calls/${call.call_id}/decline`, { method: "POST" });
        this._clear();
      }, error);
      fill(this.el, head, h("p", { class: "call-ring", dataset: { testid: "call-ring" } }, t("call.incoming", { name: call.caller_name })),
        h("div", { class: "row" }, answer, decline), error);
      return;
    }
    const m = this.media || {};
    const hang = h("button", { type: "button", class: "btn btn-danger", dataset: { testid: "call-hangup" } }, mine && call.state === "ringing" ? t("call.cancel") : t("call.hangup"));
    hang.onclick = () => this.hangUp();
    const controls = [hang];
    if (STAFF.includes(this.user.role) && call.state === "active") {
      const snap = h("button", { type: "button", class: "btn", dataset: { testid: "call-snapshot" } }, t("call.snapshot"));
      snap.onclick = () => busy(snap, async () => {
        await api(`/api/v1/calls/${call.call_id}/snapshot`, { method: "POST" });
        notify(t("call.snapshot_done"));
      }, error);
      const kind = h("select", { class: "input", dataset: { testid: "call-feed-kind" }, "aria-label": t("call.feed_kind") },
        h("option", { value: "camera" }, t("call.feed.camera")), h("option", { value: "terminal" }, t("call.feed.terminal")));
      const feed = h("input", { type: "number", min: 1, class: "input", placeholder: t("call.feed_id"), dataset: { testid: "call-feed-id" }, "aria-label": t("call.feed_id") });
      const add = h("button", { type: "button", class: "btn", dataset: { testid: "call-add-feed" } }, t("call.add_feed"));
      add.onclick = () => busy(add, async () => {
        const id = Number(feed.value);
        if (!id) throw new Error(t("call.feed_id"));
        this.onChanged(await api(`/api/v1/calls/${call.call_id}/feeds`, { method: "POST", body: { [`${kind.value}_id`]: id } }));
      }, error);
      controls.push(snap, kind, feed, add);
    }
    const peer = call.participants.find((p) => Number(p.user_id) !== this.me);
    fill(this.el, head,
      h("p", { class: "muted" }, call.state === "ringing" ? t("call.ringing") : t("call.with", { name: peer ? peer.name : "" })),
      h("div", { class: "call-videos" },
        h("figure", {}, m.remoteVideo || null, h("figcaption", {}, peer ? peer.name : t("call.waiting"))),
        h("figure", {}, m.localVideo || null, h("figcaption", {}, t("call.me"))),
        ...(m.cams || []).map((c) => h("figure", { dataset: { testid: "call-feed", kind: c.kind, feedId: String(c.id) } }, c.video,
          h("figcaption", {}, t(`call.feed.${c.kind}`), ` ${c.id}`)))),
      h("div", { class: "row" }, controls), error);
  }

  async _startMedia() {
    const call = this.call;
    if (this.media && this.media.callId === call.call_id) {
      if (call.state === "active" && !this.media.view) this._viewPeer(this.media);
      return;
    }
    const media = {
      callId: call.call_id, stream: null, pub: null, view: null, cams: [],
      localVideo: h("video", { class: "call-local", muted: true, autoplay: true, playsInline: true, dataset: { testid: "call-local" } }),
      remoteVideo: h("video", { class: "call-remote", autoplay: true, playsInline: true, dataset: { testid: "call-remote" } }),
    };
    media.localVideo.muted = true;
    this.media = media;
    this.error = "";
    this.render();
    try {
      media.stream = await navigator.mediaDevices.getUserMedia({ video: { width: { ideal: 1280 }, height: { ideal: 720 } }, audio: true });
      media.localVideo.srcObject = media.stream;
      const pc = new RTCPeerConnection({ iceServers: [] });
      media.pub = { pc, location: null };
      for (const track of media.stream.getTracks()) {
        const tr_ = pc.addTransceiver(track, { direction: "sendonly", streams: [media.stream] });
        if (track.kind === "video") preferH264(tr_);
      }
      media.pub.location = await exchange(pc, `/api/v1/calls/${call.call_id}/publish`);
      if (this.media !== media) return endSession(media.pub.location);
      if (this.call && this.call.state === "active") await this._viewPeer(media);
    } catch (err) {
      if (this.media === media) {
        this.error = errorText(err);
        this.render();
      }
    }
  }

  async _viewPeer(media) {
    if (media.view || media.viewing) return;
    media.viewing = true;
    try {
      media.view = await watchPatiently(`/api/v1/calls/${media.callId}/view`, media.remoteVideo, () => this.media === media);
      if (this.media !== media && media.view) {
        media.view.pc.close();
        endSession(media.view.location);
      }
    } catch (err) {
      if (this.media === media) {
        this.error = errorText(err);
        this.render();
      }
    } finally {
      media.viewing = false;
    }
  }

  /** Watch a camera or a conference terminal of the call beside it (WHEP through the call). */
  async _watchFeed(kind, id) {
    const media = this.media;
    if (!media || media.cams.some((c) => c.kind === kind && c.id === id)) return;
    const video = h("video", { autoplay: true, playsInline: true, dataset: { testid: "call-feed-video" } });
    video.muted = kind === "camera"; // a terminal's room is heard, a camera's sound is not
    const cam = { kind, id, video, pc: null, location: null };
    media.cams.push(cam);
    this.render();
    try {
      const wanted = () => this.media === media && media.cams.includes(cam);
      let waitedFor = "";
      const got = await watchPatiently(`/api/v1/calls/${media.callId}/feeds/${kind}/${id}/view`, video, wanted, (err) => {
        waitedFor = this.error = errorText(err); // e.g. the terminal is not connected yet; tried again
        this.render();
      });
      if (waitedFor && this.error === waitedFor) {
        this.error = "";
        this.render();
      }
      if (!got) return;
      if (!wanted()) {
        got.pc.close();
        endSession(got.location);
        return;
      }
      Object.assign(cam, got);
    } catch (err) {
      media.cams = media.cams.filter((c) => c !== cam);
      this.render();
      throw err;
    }
  }

  /** Inbound stats of the other party's media (framesDecoded, audio energy) for diagnostics;
   * of a feed of the call with `feed` = {kind, id}. */
  async stats(feed = null) {
    const out = { framesDecoded: 0, audioEnergy: 0, videoCodec: null, audioCodec: null };
    const cam = feed && this.media && this.media.cams.find((c) => c.kind === feed.kind && c.id === Number(feed.id));
    const pc = feed ? cam && cam.pc : this.media && this.media.view && this.media.view.pc;
    if (!pc) return out;
    const stats = await pc.getStats();
    for (const s of stats.values()) {
      if (s.type !== "inbound-rtp") continue;
      const codec = s.codecId ? stats.get(s.codecId) : null;
      if (s.kind === "video") Object.assign(out, { framesDecoded: s.framesDecoded || 0, videoCodec: codec && codec.mimeType });
      if (s.kind === "audio") Object.assign(out, { audioEnergy: s.totalAudioEnergy || 0, audioCodec: codec && codec.mimeType });
    }
    return out;
  }

  async hangUp(keepalive = false) {
    const call = this.call;
    const media = this.media;
    this.media = null; // kept until the hub knows: ending the media first would read as a lost line
    this._clear();
    if (call) {
      try {
        await api(`/api/v1/calls/${call.call_id}/hangup`, { method: "POST", keepalive });
      } catch {
        // already over
      }
    }
    this.media = media;
    this._hangupMedia();
  }

  _hangupMedia() {
    const media = this.media;
    this.media = null;
    if (!media) return;
    for (const s of [media.pub, media.view, ...media.cams]) {
      if (!s) continue;
      if (s.pc) s.pc.close();
      endSession(s.location);
    }
    if (media.stream) for (const track of media.stream.getTracks()) track.stop();
  }

  _clear() {
    if (this.media && (!this.call || this.media.callId !== this.call.call_id || this.call.state !== "ended")) this._hangupMedia();
    this.call = null;
    this.error = "";
    this.render();
  }

  close(keepalive = false) {
    document.removeEventListener("fh:case-call", this.onCaseCall);
    if (this.call && this._party(this.call)) this.hangUp(keepalive);
    else this._hangupMedia();
    this.el.remove();
    if (window.fhCall === this) window.fhCall = null;
  }
}
