// Showing the state (state.js) on the page: the session card with its QR countdown, the
// message list, the send form. Plain DOM; every string from the network is set with
// textContent, never parsed as HTML (incoming messages are written by strangers).

import { attachment } from "./attach.js";
import { mediaParts } from "./media.js";
import { scheduleParts } from "./schedule.js";
import { app, sortedMessages, state } from "./state.js";

export const $ = (id) => document.getElementById(id);

const SESSION_BADGES = {
  loading: "Checking…",
  none: "Not linked",
  disconnected: "Not linked",
  starting: "Starting…",
  syncing: "Getting ready…",
  pairing: "Waiting for your phone",
  connected: "Connected",
  error: "Unknown",
};
// What the page says of a session's status_reason (openapi.yaml's Session).
const STARTING_TEXT = {
  syncing: "Linked. WhatsApp is getting ready on the host; this takes a few seconds, longer right after the host restarts.",
};
const DISCONNECTED_TEXT = {
  start_failed: "WhatsApp didn't start on the host. Link again to retry.",
  logged_out_on_phone: "This device was removed on your phone. Link again to use it here.",
  host_lost_session: "The host lost this link (it restarted without it). Link again.",
  pairing_ended: "The QR code or pairing code was not used in time. Link again for a new one.",
};
// How long a start may show no progress before the page offers to start again (the
// functions' START_STUCK_AFTER, 90 s by default).
const STARTING_STUCK_MS = 90_000;
const MESSAGE_STATUS = {
  queued: "Queued",
  sent: "Sent",
  delivered: "Delivered",
  read: "Read",
  failed: "Failed",
  received: "Received",
  scheduled: "Scheduled",
  cancelled: "Cancelled",
};

// --- Session --------------------------------------------------------------------------------

/** Take a session the functions answered with, and show it. */
export function applySession(session) {
  state.session = session;
  state.sessionFailed = null;
  renderSession();
  renderSend();
}

export function renderSession() {
  const s = state.session;
  const status =
    s === undefined ? (state.sessionFailed ? "error" : "loading") : s ? s.status : "none";
  const syncing = status === "starting" && s.status_reason === "syncing";
  const badge = $("session-status");
  badge.dataset.status = syncing ? "syncing" : status;
  badge.textContent = SESSION_BADGES[syncing ? "syncing" : status] || status;

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
  if (status === "starting") {
    $("session-starting-text").textContent =
      STARTING_TEXT[s.status_reason] || "Starting WhatsApp on the host…";
    const since = Date.parse(s.last_activity || "");
    $("session-restart").hidden = syncing || !(Date.now() - since > STARTING_STUCK_MS);
  }
  showAlert(
    $("session-reason"),
    status === "disconnected" ? DISCONNECTED_TEXT[s.status_reason] || "" : "",
  );

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

let qrExpired = () => {};

/** What to do, once per QR, when its countdown reaches zero (live.js looks for the next one). */
export function whenQrExpires(action) {
  qrExpired = action;
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
      qrExpired();
    }
  } else {
    const minutes = Math.floor(left / 60);
    const seconds = String(left % 60).padStart(2, "0");
    $("qr-countdown").textContent = `Expires in ${minutes}:${seconds}`;
  }
}
setInterval(renderCountdown, 500);

// --- Messages -------------------------------------------------------------------------------

export function renderMessages() {
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
  const media = mediaParts(m);
  body.hidden = media.length > 0 && !m.body; // a file without a caption

  const status = document.createElement("span");
  status.className = `message-status status-${m.status}`;
  status.textContent = MESSAGE_STATUS[m.status] || m.status;

  li.append(meta, ...media, body, status, ...scheduleParts(m));
  return li;
}

// --- The send form --------------------------------------------------------------------------

export function renderSend() {
  // A syncing session may be sent to: the functions send once the host is ready, else say
  // when to try again.
  const s = state.session;
  const connected = Boolean(
    s && (s.status === "connected" || (s.status === "starting" && s.status_reason === "syncing")),
  );
  $("send-fieldset").disabled = !connected;
  $("send-hint").hidden = connected || state.session === undefined;
  const button = $("send-button");
  const wait = Math.ceil((state.retryUntil - Date.now()) / 1000);
  const pending = state.pendingSend;
  const retrying =
    pending &&
    pending.phone === $("send-phone").value.trim() &&
    pending.message === $("send-text").value &&
    (pending.file || null) === (attachment() ? attachment().key : null);
  let label = "Send";
  if (state.sending) label = "Sending…";
  else if (wait > 0) label = `Wait ${wait} s`;
  else if (retrying) label = "Retry send";
  button.textContent = label;
  button.disabled = state.sending || wait > 0;
  button.setAttribute("aria-busy", String(state.sending));
}
setInterval(() => {
  if (state.retryUntil && app.client) {
    if (Date.now() >= state.retryUntil) state.retryUntil = 0;
    renderSend();
  }
}, 1000);

// --- Small helpers --------------------------------------------------------------------------

export function showAlert(element, text) {
  element.textContent = text;
  element.hidden = !text;
}

export function setBusyButton(button, busy, label) {
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
