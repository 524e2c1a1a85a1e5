// The admin's camera list: name, region, URL (credentials never shown), live status, zones.

import { api, errorText } from "./api.js";
import { busy, fill, h, notify } from "./dom.js";
import { formatTime, t } from "./i18n.js";
import { statusText } from "./wall.js";
import { WorkerStatus } from "./workers.js";

/** A read-only table of the cameras the admin manages, with live status. */
export class CameraList {
  constructor(panel) {
    this.cameras = new Map();
    this.error = h("p", { class: "error", role: "alert" });
    this.empty = h("p", { class: "empty" });
    this.table = h("table", { class: "table", dataset: { testid: "camera-table" } });
    fill(panel, this.error, this.empty, h("div", { class: "table-wrap" }, this.table));
    this.workers = new WorkerStatus(panel, (id) => this.cameras.get(Number(id))?.name ?? `#${id}`);
    this.render();
  }

  async load() {
    this.workers.load(); // the camera list works without it
    try {
      const cameras = await api("/api/v1/cameras");
      this.cameras = new Map(cameras.map((c) => [Number(c.id), c]));
      this.error.textContent = "";
      this.render();
      this.workers.render(); // the slowest cameras by name, if the workers' status came first
    } catch (err) {
      this.error.textContent = errorText(err);
    }
  }

  /** A `media.camera_status` event. */
  onStatus(data) {
    const cam = this.cameras.get(Number(data.camera_id));
    if (!cam) return;
    cam.status = { state: data.state, reason: data.reason, since: data.since };
    cam.substream_online = data.substream_online ?? null;
    this.render();
  }

  render() {
    this.empty.textContent = t("cameras.empty");
    this.empty.hidden = this.cameras.size > 0;
    const head = ["cameras.name", "cameras.region", "cameras.url", "cameras.status", "cameras.enabled", "cameras.credentials", "cameras.analysed", "cameras.zones"];
    const rows = [...this.cameras.values()].sort((a, b) => a.id - b.id).map((c) => {
      const state = (c.status && c.status.state) || "unknown";
      return h(
        "tr",
        { dataset: { testid: "camera-row", cameraId: String(c.id) } },
        h("td", {}, c.name),
        h("td", {}, c.region),
        h("td", { class: "mono" }, c.url),
        h("td", {}, h("span", { class: `badge state-${state}`, dataset: { testid: "camera-status" } }, statusText(c.status))),
        h("td", {}, t(c.enabled ? "yes" : "no")),
        h("td", {}, t(c.has_credentials ? "yes" : "no")),
        h("td", { dataset: { testid: "camera-analysed" } }, this._analysed(c)),
        h("td", {}, String((c.zones || []).length), this._bins(c)),
      );
    });
    fill(
      this.table,
      h("thead", {}, h("tr", {}, head.map((k) => h("th", { scope: "col" }, t(k))))),
      h("tbody", {}, rows),
    );
  }

  /** Which stream analytics decodes: the substream (its URL, no credentials) or the main stream. */
  _analysed(c) {
    if (!c.substream_url) return t("cameras.main_stream");
    const down = c.substream_online === false
      ? h("span", { class: "badge state-degraded", dataset: { testid: "substream-down" } }, t("cameras.substream_down"))
      : null;
    return [t("cameras.substream"), " ", h("span", { class: "mono" }, c.substream_url), down ? " " : null, down];
  }

  /** Bin zones with their reference picture: capture the normal state from the live camera. */
  _bins(c) {
    const bins = (c.zones || []).filter((z) => z.kind === "bin");
    if (!bins.length) return null;
    return h("ul", { class: "bin-zones" }, bins.map((z) => {
      const when = z.reference_at ? t("bin.reference_at", { t: formatTime(z.reference_at) }) : t("bin.no_reference");
      const button = h("button", { type: "button", class: "btn", dataset: { testid: "capture-reference", zoneId: String(z.id) } },
        t("bin.capture"));
      button.addEventListener("click", () => busy(button, async () => {
        const zone = await api(`/api/v1/cameras/${c.id}/zones/${z.id}/reference`, { method: "POST", body: {} });
        c.zones = c.zones.map((old) => (old.id === zone.id ? zone : old));
        notify(t("bin.captured", { zone: zone.name }));
        this.render();
      }));
      return h("li", { dataset: { testid: "bin-zone" } }, `${z.name} · `, h("span", { dataset: { testid: "bin-reference" } }, when), " ", button);
    }));
  }

  close() {
    this.workers.close();
  }
}
