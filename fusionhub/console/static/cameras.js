// The admin's camera list: name, region, URL (credentials never shown), live status, zones.

import { api, errorText } from "./api.js";
import { fill, h } from "./dom.js";
import { t } from "./i18n.js";
import { statusText } from "./wall.js";

/** A read-only table of the cameras the admin manages, with live status. */
export class CameraList {
  constructor(panel) {
    this.cameras = new Map();
    this.error = h("p", { class: "error", role: "alert" });
    this.empty = h("p", { class: "empty" });
    this.table = h("table", { class: "table", dataset: { testid: "camera-table" } });
    fill(panel, this.error, this.empty, h("div", { class: "table-wrap" }, this.table));
    this.render();
  }

  async load() {
    try {
      const cameras = await api("/api/v1/cameras");
      this.cameras = new Map(cameras.map((c) => [Number(c.id), c]));
      this.error.textContent = "";
      this.render();
    } catch (err) {
      this.error.textContent = errorText(err);
    }
  }

  /** A `media.camera_status` event. */
  onStatus(data) {
    const cam = this.cameras.get(Number(data.camera_id));
    if (!cam) return;
    cam.status = { state: data.state, reason: data.reason, since: data.since };
    this.render();
  }

  render() {
    this.empty.textContent = t("cameras.empty");
    this.empty.hidden = this.cameras.size > 0;
    const head = ["cameras.name", "cameras.region", "cameras.url", "cameras.status", "cameras.enabled", "cameras.credentials", "cameras.zones"];
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
        h("td", {}, String((c.zones || []).length)),
      );
    });
    fill(
      this.table,
      h("thead", {}, h("tr", {}, head.map((k) => h("th", { scope: "col" }, t(k))))),
      h("tbody", {}, rows),
    );
  }

  close() {}
}
