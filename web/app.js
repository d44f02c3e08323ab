// The demo page: sign in, link WhatsApp (QR or pairing code), follow the session live, send
// messages and watch their delivery, disconnect. Plain DOM; every string from the network is
// set with textContent, never parsed as HTML (incoming messages are written by strangers).

import { ApiError, Client, describe, newIdempotencyKey } from "./api.js";
import { RealtimeFeed } from "./realtime.js";

const $ = (id) => document.getElementById(id);

const POLL_MIN_MS = 1_000;
const POLL_BUSY_MAX_MS = 3_000; // while something moves: pairing, a message on its way
const POLL_IDLE_MAX_MS = 10_000;
const POLL_ERROR_MAX_MS = 30_000;
const MOTION_WINDOW_MS = 120_000; // a message still "sent" after this no longer counts as moving
const MESSAGE_LIMIT = 50;

const SESSION_BADGES = {
  loading: "Checking…",
  none: "Not linked",
  disconnected: "Not linked",
  starting: "Starting…",
  pairing: "Waiting for your phone",
  connected: "Connected",
  error: "Unknown",
};
const MESSAGE_STATUS = {
  queued: "Queued",
  sent: "Sent",
  delivered: "Delivered",
  read: "Read",
  failed: "Failed",
  received: "Received",
};
const STATUS_RANK = { queued: 0, sent: 1, delivered: 2, read: 3, failed: 3, received: 3 };

// --- Start-up -------------------------------------------------------------------------------

const config = window.WA_CONFIG;
const configured =
  config &&
  config.functions &&
  ["startSession", "status", "sendMessage", "disconnect"].every((k) => config.functions[k]);

let client = null;
let feed = null;

const state = {
  session: undefined, // undefined: not known yet; null: no session row
  sessionFailed: null,
  sessionEpoch: 0,
  busy: null,
  method: "qr",
  messages: new Map(),
  messagesLoaded: false,
  messagesFailed: null,
  pendingSend: null, // {key, phone, message}: reused when the same send is retried
  sending: false,
  retryUntil: 0,
  realtime: "off",
  realtimeWhy: "",
  qrSeen: null, // {raw, total}: the QR on screen and its lifetime when first shown
};


// --- Views ----------------------------------------------------------------------------------

function showSignedOut(sentence) {
  stopLive();
  client.signOut();
  resetState();
  $("app-view").hidden = true;
  $("account").hidden = true;
  $("signin-view").hidden = false;
  $("local-hint").hidden = !client.local;
  showAlert($("signin-error"), sentence || "");
  setBusyButton($("signin-button"), false, "Sign in");
  renderLive();
}

function showSignedIn() {
  resetState();
  $("signin-view").hidden = true;
  $("app-view").hidden = false;
  $("account").hidden = false;
  $("account-email").textContent = client.user.email || "";
  renderSession();
  renderMessages();
  renderSend();
  startLive();
}

function resetState() {
  Object.assign(state, {
    session: undefined,
    sessionFailed: null,
    busy: null,
    messages: new Map(),
    messagesLoaded: false,
    messagesFailed: null,
    pendingSend: null,
    sending: false,
    retryUntil: 0,
    qrSeen: null,
  });
  showAlert($("session-error"), "");
  showAlert($("send-error"), "");
}

// --- Live updates: Realtime in production, polling with backoff locally -----------------------

const poller = {
  timer: null,
  delay: POLL_MIN_MS,
  running: false,
  inFlight: false,
  again: false,
  failing: false,
  start() {
    if (this.running) return;
    this.running = true;
    this.delay = POLL_MIN_MS;
    this.schedule(0);
  },
  stop() {
    this.running = false;
    clearTimeout(this.timer);
    renderLive();
  },
  kick() {
    if (!this.running) return;
    this.delay = POLL_MIN_MS;
    if (this.inFlight) this.again = true;
    else this.schedule(0);
  },
  schedule(ms) {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.run(), ms);
    renderLive();
  },
  async run() {
    if (!this.running || this.inFlight) return;
    if (document.hidden) return this.schedule(this.delay); // no polling in a background tab
    this.inFlight = true;
    let changed = false;
    let failed = false;
    try {
      changed = await refresh();
    } catch {
      failed = true;
    }
    this.inFlight = false;
    this.failing = failed;
    if (!this.running) return;
    if (this.again) {
      this.again = false;
      this.delay = POLL_MIN_MS;
    } else if (failed) {
      this.delay = Math.min(this.delay * 2, POLL_ERROR_MAX_MS);
    } else if (changed) {
      this.delay = POLL_MIN_MS;
    } else {
      const cap = inMotion() ? POLL_BUSY_MAX_MS : POLL_IDLE_MAX_MS;
      this.delay = Math.min(Math.round(this.delay * 1.5), cap);
    }
    this.schedule(this.delay);
  },
};

function inMotion() {
  const s = state.session;
  if (s && (s.status === "starting" || s.status === "pairing")) return true;
  if (state.sending) return true;
  const now = Date.now();
  for (const m of state.messages.values()) {
    if (m.direction !== "outbound" || !["queued", "sent"].includes(m.status)) continue;
    if (now - Date.parse(m.created_at || 0) < MOTION_WINDOW_MS) return true;
  }
  return false;
}

/** Something changed (an action, a tab coming back): look again soon. */
function nudge() {
  if (client.local || state.realtime !== "subscribed") poller.kick();
}

function startLive() {
  if (client.local) {
    poller.start();
    return;
  }
  feed = new RealtimeFeed({
    supabaseUrl: client.supabaseBase,
    apikey: config.supabaseKey,
    token: client.token,
    userId: client.user.id,
    tables: ["whatsapp_sessions", "whatsapp_messages"],
    onChange: onRealtimeChange,
    onState: (realtimeState, why) => {
      state.realtime = realtimeState;
      state.realtimeWhy = why || "";
      if (realtimeState === "subscribed") {
        poller.stop();
        refresh().catch(() => {}); // catch up with anything missed while not subscribed
      } else {
        poller.start(); // poll until Realtime is back
      }
      renderLive();
    },
  });
  feed.start();
}

function stopLive() {
  poller.stop();
  if (feed) feed.stop();
  feed = null;
  state.realtime = "off";
}

let sessionRefreshTimer = null;
function onRealtimeChange({ table, record }) {
  if (table === "whatsapp_sessions") {
    // The row has the stored columns; the status function gives the API's shape (QR image
    // included), so one change means one status read.
    clearTimeout(sessionRefreshTimer);
    sessionRefreshTimer = setTimeout(() => refreshSession().catch(() => {}), 100);
  } else if (table === "whatsapp_messages" && record && record.id) {
    mergeMessages([record]);
    renderMessages();
  }
}

async function refresh() {
  const before = fingerprint();
  const results = await Promise.allSettled([refreshSession(), refreshMessages()]);
  const failure = results.find((r) => r.status === "rejected");
  if (failure) throw failure.reason;
  return fingerprint() !== before;
}

async function refreshSession() {
  const epoch = state.sessionEpoch;
  try {
    const session = await client.status();
    if (epoch === state.sessionEpoch) applySession(session);
  } catch (err) {
    if (state.session === undefined) {
      state.sessionFailed = describe(err);
      renderSession();
    }
    throw err;
  }
}

async function refreshMessages() {
  try {
    const rows = await client.recentMessages(MESSAGE_LIMIT);
    state.messagesLoaded = true;
    state.messagesFailed = null;
    mergeMessages(rows);
  } catch (err) {
    state.messagesFailed = `Couldn't load messages. ${describe(err)}`;
    throw err;
  } finally {
    renderMessages();
  }
}

function fingerprint() {
  const s = state.session;
  const session = s
    ? [s.status, s.qr && s.qr.raw, s.pairing_code, s.phone_number].join("|")
    : String(s);
  const messages = [...state.messages.values()].map((m) => `${m.id}:${m.status}`).join(",");
  return `${session}#${messages}`;
}

// --- Session --------------------------------------------------------------------------------

function applySession(session) {
  state.session = session;
  state.sessionFailed = null;
  renderSession();
  renderSend();
}

async function sessionAction(kind, run, button, busyLabel) {
  if (state.busy) return;
  state.busy = kind;
  const label = button.textContent;
  setBusyButton(button, true, busyLabel);
  showAlert($("session-error"), "");
  try {
    const session = await run();
    state.sessionEpoch += 1; // a poll that started before this answer must not undo it
    applySession(session);
    nudge();
  } catch (err) {
    showAlert($("session-error"), describe(err));
  } finally {
    state.busy = null;
    setBusyButton(button, false, label);
    renderSession();
  }
}

function connectQr(button) {
  sessionAction("connect", () => client.startSession("qr"), button, "Starting…");
}

function connectCode(event) {
  event.preventDefault();
  const phone = $("pair-phone").value.trim();
  if (!phone) {
    showAlert($("session-error"), "Enter your WhatsApp number, country code first.");
    $("pair-phone").focus();
    return;
  }
  sessionAction("connect", () => client.startSession("code", phone), $("connect-code"), "Starting…");
}

function disconnect() {
  sessionAction("disconnect", () => client.disconnect(), $("disconnect"), "Disconnecting…");
}

function renderSession() {
  const s = state.session;
  const status =
    s === undefined ? (state.sessionFailed ? "error" : "loading") : s ? s.status : "none";
  const badge = $("session-status");
  badge.dataset.status = status;
  badge.textContent = SESSION_BADGES[status] || status;

  const show = {
    "session-loading": status === "loading",
    "session-failed": status === "error",
    "session-disconnected": status === "none" || status === "disconnected",
    "session-starting": status === "starting",
    "session-qr": status === "pairing" && Boolean(s.qr),
    "session-code": status === "pairing" && !s.qr && Boolean(s.pairing_code),
    "session-waiting": status === "pairing" && !s.qr && !s.pairing_code,
    "session-connected": status === "connected",
  };
  for (const [id, visible] of Object.entries(show)) $(id).hidden = !visible;
  if (status === "error") $("session-failed-text").textContent = state.sessionFailed;

  const actions = ["starting", "pairing", "connected"].includes(status);
  $("session-actions").hidden = !actions;
  if (state.busy !== "disconnect") {
    $("disconnect").textContent = status === "connected" ? "Disconnect" : "Cancel";
  }

  $("tab-qr").setAttribute("aria-selected", String(state.method === "qr"));
  $("tab-code").setAttribute("aria-selected", String(state.method === "code"));
  $("panel-qr").hidden = state.method !== "qr";
  $("panel-code").hidden = state.method !== "code";

  if (show["session-qr"]) {
    const img = $("qr-image");
    const png = String(s.qr.data_url || "");
    if (png.startsWith("data:image/png;base64,") && img.getAttribute("src") !== png) img.src = png;
    if (!state.qrSeen || state.qrSeen.raw !== s.qr.raw) {
      // expires_in is relative to the server's clock, so a browser clock that is off doesn't
      // shift the countdown; expires_at is the fallback for rows read from the database.
      const left = Number.isFinite(s.qr.expires_in)
        ? s.qr.expires_in
        : (Date.parse(s.qr.expires_at) - Date.now()) / 1000;
      state.qrSeen = {
        raw: s.qr.raw,
        total: Math.max(1, Math.round(left)),
        deadline: Date.now() + left * 1000,
        nudged: false,
      };
    }
    renderCountdown();
  } else {
    state.qrSeen = null;
  }
  if (show["session-code"]) $("pairing-code").textContent = formatCode(s.pairing_code);
  if (status === "connected") {
    $("connected-phone").textContent = s.phone_number ? ` as ${formatPhone(s.phone_number)}` : "";
    $("connected-since").textContent = s.last_activity
      ? `Last activity ${formatTime(s.last_activity)}.`
      : "";
  }
}

function renderCountdown() {
  const s = state.session;
  if (!s || s.status !== "pairing" || !s.qr || !state.qrSeen) return;
  const left = Math.ceil((state.qrSeen.deadline - Date.now()) / 1000);
  const progress = $("qr-progress");
  progress.max = state.qrSeen.total;
  progress.value = Math.max(0, left);
  const expired = left <= 0;
  $("qr-image").classList.toggle("expired", expired);
  $("qr-renew").hidden = !expired;
  if (expired) {
    $("qr-countdown").textContent = "This code has expired. A new one usually follows; if not, ask for one.";
    if (!state.qrSeen.nudged) {
      state.qrSeen.nudged = true;
      if (!client.local && state.realtime === "subscribed") refreshSession().catch(() => {});
      else poller.kick();
    }
  } else {
    const minutes = Math.floor(left / 60);
    const seconds = String(left % 60).padStart(2, "0");
    $("qr-countdown").textContent = `Expires in ${minutes}:${seconds}`;
  }
}
setInterval(renderCountdown, 500);

// --- Messages -------------------------------------------------------------------------------

function mergeMessages(rows) {
  for (const row of rows) {
    const incoming = {
      id: row.id,
      direction: row.direction || "outbound",
      phone: row.phone || row.to || "",
      contact_name: row.contact_name || null,
      body: row.body,
      status: row.status,
      created_at: row.created_at,
      updated_at: row.updated_at || null,
    };
    const known = state.messages.get(row.id);
    if (!known) {
      state.messages.set(row.id, incoming);
      continue;
    }
    if (incoming.body === undefined) incoming.body = known.body;
    if (isNewer(known, incoming)) state.messages.set(row.id, { ...known, ...incoming });
  }
  // Keep the newest ones only.
  if (state.messages.size > MESSAGE_LIMIT * 2) {
    const keep = sortedMessages().slice(0, MESSAGE_LIMIT);
    state.messages = new Map(keep.map((m) => [m.id, m]));
  }
}

function isNewer(known, incoming) {
  const a = Date.parse(known.updated_at || "");
  const b = Date.parse(incoming.updated_at || "");
  if (Number.isFinite(a) && Number.isFinite(b) && a !== b) return b > a;
  return (STATUS_RANK[incoming.status] ?? 0) >= (STATUS_RANK[known.status] ?? 0);
}

function sortedMessages() {
  return [...state.messages.values()].sort(
    (a, b) => Date.parse(b.created_at || 0) - Date.parse(a.created_at || 0),
  );
}

function renderMessages() {
  const list = $("messages");
  const items = sortedMessages();
  list.replaceChildren(...items.map(messageItem));
  $("messages-loading").hidden = state.messagesLoaded || Boolean(state.messagesFailed);
  $("messages-empty").hidden = !state.messagesLoaded || items.length > 0;
  showAlert($("messages-error"), items.length || !state.messagesFailed ? "" : state.messagesFailed);
}

function messageItem(m) {
  const li = document.createElement("li");
  const outbound = m.direction === "outbound";
  li.className = `message ${outbound ? "out" : "in"}`;
  li.dataset.id = m.id;
  li.dataset.status = m.status;

  const meta = document.createElement("div");
  meta.className = "message-meta";
  const who = document.createElement("span");
  who.className = "message-who";
  const name = m.contact_name ? `${m.contact_name} · ` : "";
  who.textContent = `${outbound ? "To" : "From"} ${name}${formatPhone(m.phone)}`;
  const time = document.createElement("time");
  time.dateTime = m.created_at || "";
  time.textContent = m.created_at ? formatTime(m.created_at) : "";
  meta.append(who, time);

  const body = document.createElement("p");
  body.className = "message-body";
  body.textContent = m.body || "";

  const status = document.createElement("span");
  status.className = `message-status status-${m.status}`;
  status.textContent = MESSAGE_STATUS[m.status] || m.status;

  li.append(meta, body, status);
  return li;
}

async function send(event) {
  event.preventDefault();
  if (state.sending || Date.now() < state.retryUntil) return;
  const phone = $("send-phone").value.trim();
  const message = $("send-text").value;
  if (!phone || !message.trim()) {
    showAlert($("send-error"), "Enter a phone number and a message.");
    return;
  }
  // One Idempotency-Key per send attempt; retrying the same send reuses it, so a send that
  // did go through (but whose answer was lost) is not sent twice.
  const pending = state.pendingSend;
  if (!pending || pending.phone !== phone || pending.message !== message) {
    state.pendingSend = { key: newIdempotencyKey(), phone, message };
  }
  state.sending = true;
  showAlert($("send-error"), "");
  renderSend();
  try {
    const sent = await client.sendMessage(phone, message, state.pendingSend.key);
    state.pendingSend = null;
    $("send-text").value = "";
    mergeMessages([{ ...sent, direction: "outbound", phone: sent.to, body: message }]);
    state.messagesLoaded = true;
    renderMessages();
    nudge();
  } catch (err) {
    if (!(err instanceof ApiError) || err.code === "idempotency_conflict") {
      state.pendingSend = null;
    }
    if (err instanceof ApiError && err.code === "rate_limited") {
      state.retryUntil = Date.now() + (err.retryAfter || 5) * 1000;
    }
    if (!(err instanceof ApiError && err.authLost)) showAlert($("send-error"), describe(err));
  } finally {
    state.sending = false;
    renderSend();
  }
}

function renderSend() {
  const connected = Boolean(state.session && state.session.status === "connected");
  $("send-fieldset").disabled = !connected;
  $("send-hint").hidden = connected || state.session === undefined;
  const button = $("send-button");
  const wait = Math.ceil((state.retryUntil - Date.now()) / 1000);
  const pending = state.pendingSend;
  const retrying =
    pending &&
    pending.phone === $("send-phone").value.trim() &&
    pending.message === $("send-text").value;
  let label = "Send";
  if (state.sending) label = "Sending…";
  else if (wait > 0) label = `Wait ${wait} s`;
  else if (retrying) label = "Retry send";
  button.textContent = label;
  button.disabled = state.sending || wait > 0;
  button.setAttribute("aria-busy", String(state.sending));
}
setInterval(() => {
  if (state.retryUntil && client) {
    if (Date.now() >= state.retryUntil) state.retryUntil = 0;
    renderSend();
  }
}, 1000);

// --- Footer: which live mechanism is in use --------------------------------------------------

function renderLive() {
  const line = $("live-mode");
  if (!client || !client.user || $("app-view").hidden) {
    line.textContent = client && client.local ? "Local stack" : "";
    line.dataset.mode = "";
    return;
  }
  const every = `${Math.max(1, Math.round(poller.delay / 1000))} s`;
  const trouble = poller.failing ? " The last check failed; retrying." : "";
  if (client.local) {
    line.dataset.mode = "polling";
    line.textContent = `Live updates: polling the status function (every ${every} now, slower when nothing changes). The local stack has no Realtime server.${trouble}`;
  } else if (state.realtime === "subscribed") {
    line.dataset.mode = "realtime";
    line.textContent = "Live updates: Supabase Realtime on your session and message rows.";
  } else if (state.realtime === "connecting") {
    line.dataset.mode = "polling";
    line.textContent = "Live updates: connecting to Supabase Realtime… (polling meanwhile)";
  } else {
    line.dataset.mode = "polling";
    const why = state.realtimeWhy ? ` (${state.realtimeWhy})` : "";
    line.textContent = `Live updates: Supabase Realtime is unavailable${why}; polling the status function every ${every} meanwhile.${trouble}`;
  }
}

// --- Events and small helpers ----------------------------------------------------------------

function wireEvents() {
  $("signin-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const email = $("email").value.trim();
    const password = $("password").value;
    if (!email || !password) {
      showAlert($("signin-error"), "Enter your email and password.");
      return;
    }
    const button = $("signin-button");
    setBusyButton(button, true, "Signing in…");
    showAlert($("signin-error"), "");
    try {
      await client.signIn(email, password);
      $("password").value = "";
      showSignedIn();
    } catch (err) {
      showAlert($("signin-error"), describe(err));
    } finally {
      setBusyButton(button, false, "Sign in");
    }
  });
  $("sign-out").addEventListener("click", () => showSignedOut());
  $("session-retry").addEventListener("click", () => {
    state.sessionFailed = null;
    renderSession();
    refresh().catch(() => {});
  });
  $("tab-qr").addEventListener("click", () => {
    state.method = "qr";
    renderSession();
  });
  $("tab-code").addEventListener("click", () => {
    state.method = "code";
    renderSession();
    $("pair-phone").focus();
  });
  $("connect-qr").addEventListener("click", (e) => connectQr(e.currentTarget));
  $("qr-renew").addEventListener("click", (e) => connectQr(e.currentTarget));
  $("panel-code").addEventListener("submit", connectCode);
  $("disconnect").addEventListener("click", disconnect);
  $("send-form").addEventListener("submit", send);
  $("send-phone").addEventListener("input", renderSend);
  $("send-text").addEventListener("input", renderSend);
  document.addEventListener("visibilitychange", () => {
    if (!document.hidden && client.user) nudge();
  });
}

function showAlert(element, text) {
  element.textContent = text;
  element.hidden = !text;
}

function setBusyButton(button, busy, label) {
  button.disabled = busy;
  button.setAttribute("aria-busy", String(busy));
  button.textContent = label;
}

function formatPhone(digits) {
  return digits ? `+${digits}` : "";
}

function formatCode(code) {
  const clean = String(code || "").replace(/[^0-9A-Za-z]/g, "");
  return clean.length === 8 ? `${clean.slice(0, 4)}-${clean.slice(4)}` : String(code || "");
}

function formatTime(iso) {
  const when = new Date(iso);
  if (Number.isNaN(when.getTime())) return "";
  const sameDay = when.toDateString() === new Date().toDateString();
  const time = when.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  return sameDay ? time : `${when.toLocaleDateString()} ${time}`;
}

// --- Go ------------------------------------------------------------------------------------

if (!configured) {
  $("boot").textContent =
    "This page isn't configured: config.js must set window.WA_CONFIG with the function URLs (see README.md).";
  $("boot").classList.add("alert", "error");
} else {
  client = new Client(config, {
    onAuthLost: (sentence) => showSignedOut(sentence),
    onToken: (token) => feed && feed.setToken(token),
  });
  wireEvents();
  $("boot").hidden = true;
  if (client.user) showSignedIn();
  else showSignedOut();
}
