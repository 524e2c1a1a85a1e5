// The command-centre console: login, then the tabs a role needs, kept live over the websocket.

import { ApiError, HubSocket, errorText, getToken, logout, me, onUnauthorized } from "./api.js";
import { CameraList } from "./cameras.js";
import { CallDock } from "./call.js";
import { CaseBoard } from "./cases.js";
import { fill, h, notifyError } from "./dom.js";
import { hasStoredLang, setLang, setTimeZone, t, tr } from "./i18n.js";
import { IntercomPanel } from "./intercom.js";
import { LiveBoard } from "./livewall.js";
import { applyStatic, setupLangSwitch, setupLoginForm, showConnection } from "./page.js";
import { ReviewQueue } from "./review.js";
import { StatsPanel } from "./stats.js";
import { TaskingPanel } from "./tasking.js";
import { VideoWall } from "./wall.js";

// The tabs each role needs, in the order shown (the first opens by default).
const ROLE_TABS = {
  commander: ["wall", "review", "cases", "intercom", "tasking", "stats", "live"],
  duty: ["review", "cases", "wall", "intercom", "tasking", "stats", "live"],
  admin: ["wall", "cameras", "stats"],
};
const TAB_KEY = "fh.tab";
const NO_STATS = { framesDecoded: 0, frameWidth: 0, frameHeight: 0 };

const $ = (id) => document.getElementById(id);

/** Everything that lives while one user is logged in; torn down on logout. */
let session = null;
let connState = "connecting";

function showLogin(message = "") {
  stopSession();
  for (const id of ["tabs", "conn", "who", "logout"]) $(id).hidden = true;
  for (const panel of document.querySelectorAll(".panel")) panel.hidden = true;
  $("login").hidden = false;
  $("login-error").textContent = message;
  $("username").focus();
}

function stopSession(keepalive = false) {
  if (!session) return;
  const s = session;
  session = null;
  s.socket.close();
  for (const mod of Object.values(s.modules)) mod.close(keepalive);
}

async function enter() {
  let info;
  try {
    info = await me();
  } catch (err) {
    if (!(err instanceof ApiError && err.status === 401)) showLogin(errorText(err));
    return; // a 401 already went through the unauthorized handler
  }
  const { user, hub } = info;
  if (user.role === "field") {
    location.replace("/field");
    return;
  }
  setTimeZone(hub && hub.timezone);
  if (!hasStoredLang() && hub && hub.default_lang) setLang(hub.default_lang, false);
  stopSession();
  $("login").hidden = true;
  startSession(user);
}

function startSession(user) {
  const tabs = ROLE_TABS[user.role] || [];
  const modules = {};
  if (tabs.includes("wall")) modules.wall = new VideoWall($("panel-wall"));
  if (tabs.includes("review")) {
    modules.review = new ReviewQueue($("panel-review"), {
      canReview: user.role === "duty",
      onCount: (n) => setTabCount("review", n),
    });
  }
  if (tabs.includes("cases")) modules.cases = new CaseBoard($("panel-cases"), { user });
  if (tabs.includes("cameras")) modules.cameras = new CameraList($("panel-cameras"));
  if (tabs.includes("intercom")) modules.intercom = new IntercomPanel($("panel-intercom"), { user });
  if (tabs.includes("tasking")) {
    modules.tasking = new TaskingPanel($("panel-tasking"), { user, onCount: (n) => setTabCount("tasking", n) });
  }
  if (tabs.includes("stats")) modules.stats = new StatsPanel($("panel-stats"));
  if (tabs.includes("live")) modules.live = new LiveBoard($("panel-live"));
  if (["commander", "duty"].includes(user.role)) modules.calls = new CallDock({ user });

  const loadAll = () => Promise.all(Object.values(modules).map((m) => m.load()));
  const socket = new HubSocket({
    onEvent: (topic, data) => route(modules, topic, data),
    onSync: loadAll,
    onState: (state) => {
      connState = state;
      showConnection($("conn"), state);
    },
  });
  session = { user, modules, socket, tabs };
  renderChrome();
  let tab = sessionStorage.getItem(TAB_KEY);
  if (!tabs.includes(tab)) tab = tabs[0];
  selectTab(tab);
  loadAll();
  socket.start();
}

/** Send a websocket event to the modules that show it. */
function route(modules, topic, data) {
  switch (topic) {
    case "dispatch.flag_created":
      modules.review?.onCreated(data);
      break;
    case "dispatch.flag_reviewed":
      modules.review?.onReviewed(data);
      break;
    case "calls.call_changed":
      modules.calls?.onChanged(data);
      break;
    case "media.publisher_status":
      modules.live?.onStatus(data);
      break;
    case "dispatch.flag_clip":
      modules.review?.onClip(data);
      if (modules.cases && data.case_id != null && Number(data.case_id) === modules.cases.openId) {
        modules.cases.onChanged({ id: data.case_id });
      }
      break;
    case "dispatch.case_changed":
      modules.cases?.onChanged(data);
      modules.stats?.onCaseChanged();
      break;
    case "dispatch.case_alert":
      modules.cases?.onAlert(data);
      break;
    case "dispatch.instruction_changed":
      modules.tasking?.onChanged(data);
      break;
    case "dispatch.instruction_escalated":
      modules.tasking?.onEscalated(data);
      break;
    case "dispatch.task_changed":
      if (modules.cases && data.case_id !== undefined && Number(data.case_id) === modules.cases.openId) {
        modules.cases.onChanged({ id: data.case_id });
      }
      break;
    case "analytics.load":
      modules.review?.onLoad(data);
      break;
    case "media.camera_status":
      modules.wall?.onStatus(data);
      modules.cameras?.onStatus(data);
      break;
    default:
      break;
  }
}

function renderChrome() {
  if (!session) return;
  const { user, tabs } = session;
  const nav = $("tabs");
  fill(
    nav,
    tabs.map((name) =>
      h(
        "button",
        {
          type: "button",
          role: "tab",
          id: `tab-${name}`,
          class: "tab",
          dataset: { testid: `tab-${name}` },
          "aria-controls": `panel-${name}`,
          "aria-selected": String(session.tab === name),
          tabIndex: session.tab === name ? 0 : -1,
          onclick: () => selectTab(name),
          onkeydown: (ev) => tabKeys(ev, name),
        },
        t(`tab.${name}`),
        h("span", { class: "tab-count", dataset: { testid: `tab-${name}-count` }, hidden: true }),
      ),
    ),
  );
  nav.hidden = false;
  $("who").hidden = false;
  $("who").textContent = `${user.display_name || user.username} · ${tr("role", user.role)}`;
  $("logout").hidden = false;
  showConnection($("conn"), connState);
  if (session.modules.review) setTabCount("review", session.modules.review.flags.size);
}

function tabKeys(ev, name) {
  const tabs = session.tabs;
  const i = tabs.indexOf(name);
  let next = null;
  if (ev.key === "ArrowRight") next = tabs[(i + 1) % tabs.length];
  else if (ev.key === "ArrowLeft") next = tabs[(i - 1 + tabs.length) % tabs.length];
  if (next) {
    ev.preventDefault();
    selectTab(next);
    $(`tab-${next}`).focus();
  }
}

function selectTab(name) {
  if (!session) return;
  session.tab = name;
  sessionStorage.setItem(TAB_KEY, name);
  for (const tab of session.tabs) {
    $(`panel-${tab}`).hidden = tab !== name;
    const button = $(`tab-${tab}`);
    if (button) {
      button.setAttribute("aria-selected", String(tab === name));
      button.tabIndex = tab === name ? 0 : -1;
    }
  }
  for (const panel of ["wall", "review", "cases", "cameras", "intercom", "tasking", "stats", "live"]) {
    if (!session.tabs.includes(panel)) $(`panel-${panel}`).hidden = true;
  }
}

function setTabCount(name, n) {
  const el = document.querySelector(`[data-testid="tab-${name}-count"]`);
  if (!el) return;
  el.textContent = String(n);
  el.hidden = n === 0;
}

function boot() {
  applyStatic();
  setupLangSwitch($("lang"), "app.title", () => {
    renderChrome();
    if (session) for (const mod of Object.values(session.modules)) mod.render(true);
  });
  setupLoginForm($("login-form"), $("login-error"), enter);
  onUnauthorized(() => showLogin(t("login.expired")));
  $("logout").addEventListener("click", () => {
    logout();
    showLogin();
  });
  // end the viewing sessions when the page goes (the DELETEs outlive the page with keepalive)
  window.addEventListener("pagehide", () => stopSession(true));
  // a commander's "case channel" button on the case board: form the channel, open it here
  document.addEventListener("fh:case-channel", (ev) => {
    if (!session || !session.modules.intercom) return;
    selectTab("intercom");
    session.modules.intercom.joinCase(ev.detail.caseId).catch((err) => notifyError(err));
  });
  window.addEventListener("pageshow", (ev) => {
    if (ev.persisted && !session && getToken()) enter(); // back from the page cache: start again
  });
  window.fh = {
    videoStats: (cameraId) => (session && session.modules.wall ? session.modules.wall.stats(cameraId) : Promise.resolve(NO_STATS)),
    get user() {
      return session ? session.user : null;
    },
    get intercom() {
      return session ? session.modules.intercom || null : null;
    },
    get lastSeq() {
      return session ? session.socket.lastSeq : null;
    },
  };
  if (getToken()) enter();
  else showLogin();
}

boot();
