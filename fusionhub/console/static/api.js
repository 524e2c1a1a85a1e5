// Shared client for the hub: login kept per browser tab, a fetch wrapper that adds the bearer
// token and turns the hub's error JSON into thrown errors, and the resuming websocket client.

import { getLang, has, t } from "./i18n.js";

const TOKEN_KEY = "fh.token";
const PING_EVERY_MS = 20_000;
const RECONNECT_MIN_MS = 1_000;
const RECONNECT_MAX_MS = 30_000;

/** An error answer from the hub (`{"error": {"code", "message"}}`) or a failed request. */
export class ApiError extends Error {
  constructor(status, code, message) {
    super(message || code);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
    this.serverMessage = message || ""; // the hub's own sentence (English), may be empty
    this.retryAfter = null; // seconds, from a 503's Retry-After
  }
}

// sessionStorage is per tab: several users can be logged in in different tabs of one browser.
export function getToken() {
  try {
    return sessionStorage.getItem(TOKEN_KEY);
  } catch {
    return null;
  }
}

function setToken(token) {
  try {
    if (token) sessionStorage.setItem(TOKEN_KEY, token);
    else sessionStorage.removeItem(TOKEN_KEY);
  } catch {
    // private mode without storage: the login lasts until the page reloads
  }
}

let unauthorizedHandler = null;

/** What to do when the hub says the login is missing or expired (show the login form). */
export function onUnauthorized(fn) {
  unauthorizedHandler = fn;
}

/** Forget the login in this tab. */
export function logout() {
  setToken(null);
}

async function errorFrom(response) {
  let code = "server";
  let message = "";
  try {
    const body = await response.json();
    if (body && body.error) {
      code = body.error.code || code;
      message = body.error.message || "";
    }
  } catch {
    // not JSON (a proxy's error page): keep the generic message
  }
  const err = new ApiError(response.status, code, message);
  const retryAfter = Number(response.headers.get("Retry-After"));
  if (retryAfter > 0) err.retryAfter = retryAfter;
  return err;
}

/**
 * Call the hub. `body` (an object) is sent as JSON, `data` (a string) as it is with the
 * Content-Type given in `headers`; `raw: true` returns the Response itself (images, SDP).
 * Throws ApiError; a 401 forgets the login and calls the unauthorized handler.
 */
export async function api(path, { method = "GET", body, data, raw = false, headers = {}, keepalive = false } = {}) {
  const token = getToken();
  const init = { method, headers: { ...headers }, keepalive };
  if (token) init.headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  } else if (data !== undefined) {
    init.body = data;
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch (exc) {
    throw new ApiError(0, "network", t("err.network"));
  }
  if (!response.ok) {
    const err = await errorFrom(response);
    if (response.status === 401 && path !== "/api/v1/auth/login") {
      setToken(null);
      if (unauthorizedHandler) unauthorizedHandler(err);
    }
    throw err;
  }
  if (raw) return response;
  if (response.status === 204) return null;
  const type = response.headers.get("Content-Type") || "";
  return type.includes("json") ? response.json() : response.text();
}

/** Log in; the token is kept in this tab's sessionStorage. Returns `{token, user}`. */
export async function login(username, password) {
  const reply = await api("/api/v1/auth/login", { method: "POST", body: { username, password } });
  setToken(reply.token);
  return reply;
}

/** `{user, hub}` of the current login (throws ApiError 401 when there is none). */
export function me() {
  return api("/api/v1/me");
}

/**
 * An image the hub serves behind the login, as a blob: URL (an <img> cannot send headers).
 * The caller revokes it (URL.revokeObjectURL) when the image goes away.
 */
export async function blobUrl(path) {
  const response = await api(path, { raw: true });
  return URL.createObjectURL(await response.blob());
}

/** A readable, translated message for an error thrown by `api` (or anything else). */
export function errorText(err) {
  if (err instanceof ApiError) {
    const key = `err.${err.code}`;
    const said = err.serverMessage;
    if (err.code === "network") return t("err.network");
    if (err.code === "server" && !said) return t("err.server", { status: err.status });
    if (getLang() === "en") return said || (has(key) ? t(key) : t("err.unknown"));
    // Chinese first; the hub's sentence follows because it names specifics (e.g. the current status)
    if (has(key)) return said ? `${t(key)}（${said}）` : t(key);
    return said || t("err.unknown");
  }
  return (err && err.message) || t("err.unknown");
}

/**
 * The hub's websocket: authenticated with the token as a subprotocol, resumes from the last
 * `seq` after a reconnect (with backoff), pings every 20 s.
 * Callbacks: onEvent(topic, data), onSync() when lists must be refetched, onState("live"|"connecting"|"lost").
 */
export class HubSocket {
  constructor({ onEvent, onSync, onState } = {}) {
    this.onEvent = onEvent || (() => {});
    this.onSync = onSync || (() => {});
    this.onState = onState || (() => {});
    this.lastSeq = null;
    this.epoch = null; // which hub run the seqs belong to (from hello)
    this.ws = null;
    this.pingTimer = null;
    this.retryTimer = null;
    this.attempt = 0;
    this.closed = false;
  }

  /** Open the connection (once; reconnects by itself until close()). */
  start() {
    this.closed = false;
    this._connect();
  }

  /** Close for good (logout, page leaving). Safe to call twice. */
  close() {
    this.closed = true;
    clearTimeout(this.retryTimer);
    clearInterval(this.pingTimer);
    this.retryTimer = null;
    this.pingTimer = null;
    if (this.ws) {
      const ws = this.ws;
      this.ws = null;
      ws.onclose = null;
      ws.close(1000, "bye");
    }
  }

  _send(type, data = {}) {
    if (this.ws && this.ws.readyState === WebSocket.OPEN) {
      this.ws.send(JSON.stringify({ type, seq: 0, data }));
    }
  }

  _resume() {
    const data = { last_seq: this.lastSeq };
    if (this.epoch !== null) data.epoch = this.epoch;
    this._send("resume", data);
  }

  _connect() {
    const token = getToken();
    if (!token || this.closed) return;
    this.onState("connecting");
    const proto = location.protocol === "https:" ? "wss://" : "ws://";
    let ws;
    try {
      ws = new WebSocket(proto + location.host + "/ws", ["fusionhub.v1", "bearer." + token]);
    } catch (exc) {
      this._scheduleReconnect();
      return;
    }
    this.ws = ws;
    ws.onopen = () => {
      this.attempt = 0;
      this.onState("live");
      // a reconnect asks for what it missed, as its first message (before any live event)
      if (this.lastSeq !== null) this._resume();
      clearInterval(this.pingTimer);
      this.pingTimer = setInterval(() => this._send("ping"), PING_EVERY_MS);
    };
    ws.onmessage = (msg) => this._receive(msg.data);
    ws.onclose = () => {
      clearInterval(this.pingTimer);
      this.pingTimer = null;
      if (this.ws === ws) this.ws = null;
      if (!this.closed) {
        this.onState("lost");
        this._scheduleReconnect();
      }
    };
  }

  _receive(text) {
    let msg;
    try {
      msg = JSON.parse(text);
    } catch {
      return;
    }
    const data = msg.data || {};
    switch (msg.type) {
      case "hello": {
        const serverSeq = typeof data.last_seq === "number" ? data.last_seq : 0;
        const restarted = this.epoch !== null && data.epoch !== undefined && data.epoch !== this.epoch;
        if (data.epoch !== undefined) this.epoch = data.epoch;
        if (this.lastSeq === null || restarted || serverSeq < this.lastSeq) {
          // first connection: close the gap since the lists were fetched, and tell the hub we are
          // ready so live events flow at once; or another hub run: our seq means nothing there
          const first = this.lastSeq === null;
          this.lastSeq = serverSeq;
          if (first) this._resume();
          this.onSync();
        }
        break;
      }
      case "event":
        if (typeof msg.seq === "number" && msg.seq > 0) {
          if (this.lastSeq !== null && msg.seq <= this.lastSeq) return; // already seen (replay overlap)
          this.lastSeq = msg.seq;
        }
        this.onEvent(data.topic, data.data || {});
        break;
      case "resync":
        if (typeof data.last_seq === "number") this.lastSeq = data.last_seq;
        else if (typeof msg.seq === "number" && msg.seq > 0) this.lastSeq = msg.seq;
        this.onSync();
        break;
      case "error":
        console.warn("hub websocket error", data);
        break;
      default:
        break; // pong and anything newer
    }
  }

  _scheduleReconnect() {
    if (this.closed) return;
    const base = Math.min(RECONNECT_MAX_MS, RECONNECT_MIN_MS * 2 ** this.attempt);
    const delay = base / 2 + Math.random() * (base / 2);
    this.attempt += 1;
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(async () => {
      // a refused handshake looks like any other close: ask the hub whether the login still holds
      try {
        await me();
      } catch (exc) {
        if (exc instanceof ApiError && exc.status === 401) return; // the unauthorized handler took over
      }
      this._connect();
    }, delay);
  }
}
