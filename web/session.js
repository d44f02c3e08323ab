// The session card: the link's status, why it ended, linking by QR code (with its countdown)
// or by pairing code, and disconnecting (after a confirmation). Its own module, so what the
// card shows can grow without touching the inbox.

import { describe } from "./api.js";
import { renderSend } from "./composer.js";
import { ask } from "./confirm.js";
import { $, formatCode, formatPhone, formatTime, setBusyButton, showAlert } from "./render.js";
import { app, state } from "./state.js";

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
// Why a session is no longer linked (status_reason), in words.
const REASONS = {
  cancelled: "You stopped linking before the phone scanned.",
  logged_out: "You disconnected this number.",
  logged_out_on_phone: "The phone removed this linked device (Linked devices on the phone).",
  pairing_ended: "The code wasn't used in time, so linking stopped.",
  host_closed: "The WhatsApp host closed the session.",
  host_busy: "The WhatsApp host was still busy with an earlier link. Try again in a minute.",
  host_draining: "The WhatsApp host was restarted.",
  host_lost_session: "The WhatsApp host lost the session.",
  host_error: "The WhatsApp host answered with an error.",
  host_timeout: "The WhatsApp host didn't answer in time.",
  closed: "The session closed.",
  start_failed: "WhatsApp didn't start on the host.",
};
// What the card says of a session still starting, by its status_reason.
const STARTING_TEXT = {
  syncing:
    "Linked. WhatsApp is getting ready on the host; this takes a few seconds, longer right after the host restarts.",
};
// How long a start may show no progress before the card offers to start again (the
// functions' START_STUCK_AFTER, 90 s by default).
const STARTING_STUCK_MS = 90_000;
const STATE_IDS = [
  "session-loading",
  "session-failed",
  "session-disconnected",
  "session-starting",
  "session-qr",
  "session-code",
  "session-waiting",
  "session-connected",
];

/** The sentence for a session's status_reason, or "" when there is none to say. */
export function reasonSentence(session) {
  if (!session || session.status !== "disconnected" || !session.status_reason) return "";
  const words = REASONS[session.status_reason];
  return words ? `${words} Link again below.` : "";
}

/** Take a session the functions answered with, and show it. */
export function applySession(session) {
  state.session = session;
  state.sessionFailed = null;
  const before = $("session-status").dataset.status;
  renderSession();
  renderSend();
  // An error about linking no longer applies once the session moved on.
  if (before !== $("session-status").dataset.status) showAlert($("session-error"), "");
  seen();
}

export function renderSession() {
  const s = state.session;
  const status =
    s === undefined ? (state.sessionFailed ? "error" : "loading") : s ? s.status : "none";
  const syncing = status === "starting" && s.status_reason === "syncing";
  const badge = $("session-status");
  badge.dataset.status = syncing ? "syncing" : status;
  badge.textContent = SESSION_BADGES[syncing ? "syncing" : status] || status;
  $("nav-status").dataset.status = status;

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
  // Focus on a part of the card that this change hides moves to the part shown instead.
  const focused = document.activeElement;
  const wasInCard = focused && STATE_IDS.some((id) => $(id).contains(focused));
  for (const [id, visible] of Object.entries(show)) $(id).hidden = !visible;
  if (wasInCard && focused.offsetParent === null) focusShown();
  if (status === "error") $("session-failed-text").textContent = state.sessionFailed;
  if (status === "starting") {
    $("session-starting-text").textContent =
      STARTING_TEXT[s.status_reason] || "Starting WhatsApp on the host…";
    const since = Date.parse(s.last_activity || "");
    $("session-restart").hidden = syncing || !(Date.now() - since > STARTING_STUCK_MS);
  }
  const reason = reasonSentence(s);
  $("session-reason").textContent = reason;
  $("session-reason").hidden = !reason;

  const actions = ["starting", "pairing", "connected"].includes(status);
  $("session-actions").hidden = !actions;
  if (state.busy !== "disconnect") {
    $("disconnect").textContent = status === "connected" ? "Disconnect" : "Cancel";
  }
  renderTabs();

  if (show["session-qr"]) showQr(s.qr);
  else state.qrSeen = null;
  if (show["session-code"]) $("pairing-code").textContent = formatCode(s.pairing_code);
  if (status === "connected") {
    $("connected-phone").textContent = s.phone_number ? ` as ${formatPhone(s.phone_number)}` : "";
    $("connected-since").textContent = s.last_activity
      ? `Last activity ${formatTime(s.last_activity)}.`
      : "";
  }
}

function renderTabs() {
  for (const [method, tab, panel] of [
    ["qr", "tab-qr", "panel-qr"],
    ["code", "tab-code", "panel-code"],
  ]) {
    const selected = state.method === method;
    $(tab).setAttribute("aria-selected", String(selected));
    $(tab).tabIndex = selected ? 0 : -1; // one tab stop; arrows move between the tabs
    $(panel).hidden = !selected;
  }
}

function showQr(qr) {
  const img = $("qr-image");
  const png = String(qr.data_url || "");
  if (png.startsWith("data:image/png;base64,") && img.getAttribute("src") !== png) img.src = png;
  if (!state.qrSeen || state.qrSeen.raw !== qr.raw) {
    // expires_in is relative to the server's clock, so a browser clock that is off doesn't
    // shift the countdown; expires_at is the fallback for rows read from the database.
    const left = Number.isFinite(qr.expires_in)
      ? qr.expires_in
      : (Date.parse(qr.expires_at) - Date.now()) / 1000;
    // The bar keeps the longest lifetime seen in this pairing as its scale, so a code that
    // lives shorter than the first starts part-full rather than rescaling the bar.
    const total = Math.max(1, Math.round(left), state.qrSeen ? state.qrSeen.total : 0);
    state.qrSeen = { raw: qr.raw, total, deadline: Date.now() + left * 1000, nudged: false };
  }
  renderCountdown();
}

let qrExpired = () => {};

/** What to do, once per QR, when its countdown reaches zero (live.js looks for the next one). */
export function whenQrExpires(action) {
  qrExpired = action;
}

function renderCountdown() {
  const s = state.session;
  if (!s || s.status !== "pairing" || !s.qr || !state.qrSeen) return;
  const left = Math.max(0, Math.ceil((state.qrSeen.deadline - Date.now()) / 1000));
  const progress = $("qr-progress");
  progress.max = state.qrSeen.total;
  progress.value = left;
  const expired = left <= 0;
  $("qr-image").classList.toggle("expired", expired);
  $("qr-renew").hidden = !expired;
  if (expired) {
    $("qr-countdown").textContent =
      "This code has expired. A new one usually follows; if not, ask for one.";
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

// --- Actions ----------------------------------------------------------------------------------

let after = () => {};
let seen = () => {};

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
    after();
  } catch (err) {
    showAlert($("session-error"), describe(err));
  } finally {
    state.busy = null;
    setBusyButton(button, false, label);
    renderSession();
    keepFocus(button);
  }
}

/** The button pressed may be gone (the card moved on): focus what the card shows now. */
function keepFocus(button) {
  const lost = document.activeElement === document.body || document.activeElement === button;
  if (lost && (button.offsetParent === null || button.disabled)) focusShown();
}

function focusShown() {
  const shown = STATE_IDS.map($).find((element) => !element.hidden);
  if (shown) shown.focus();
}

function connectCode(event) {
  event.preventDefault();
  const phone = $("pair-phone").value.trim();
  if (!phone) {
    showAlert($("session-error"), "Enter your WhatsApp number, country code first.");
    $("pair-phone").focus();
    return;
  }
  const go = () => app.client.startSession("code", phone);
  sessionAction("connect", go, $("connect-code"), "Starting…");
}

/** A start that shows no progress: ask again by the chosen method (the functions recover it). */
function restart(button) {
  const phone = $("pair-phone").value.trim();
  const byCode = state.method === "code" && phone;
  const go = () => (byCode ? app.client.startSession("code", phone) : app.client.startSession("qr"));
  sessionAction("connect", go, button, "Starting…");
}

async function disconnect() {
  const linked = state.session && state.session.status === "connected";
  if (linked) {
    const sure = await ask(
      "Disconnect this WhatsApp number? Messages stop until you link it again.",
      "Disconnect",
    );
    if (!sure) return;
  }
  const go = () => app.client.disconnect();
  sessionAction("disconnect", go, $("disconnect"), "Disconnecting…");
}

function chooseMethod(method, focus) {
  state.method = method;
  renderSession();
  if (focus) $(method === "qr" ? "tab-qr" : "tab-code").focus();
}

/** The card's buttons and tabs (WAI-ARIA tabs: arrows, Home and End move between them);
 * `changed()` after an action changed the session, `seen()` after any session arrived. */
export function wireSession(on) {
  after = on.changed;
  seen = on.seen;
  const connectQr = (e) =>
    sessionAction("connect", () => app.client.startSession("qr"), e.currentTarget, "Starting…");
  $("connect-qr").addEventListener("click", connectQr);
  $("session-restart").addEventListener("click", (e) => restart(e.currentTarget));
  $("qr-renew").addEventListener("click", connectQr);
  $("panel-code").addEventListener("submit", connectCode);
  $("disconnect").addEventListener("click", disconnect);
  $("tab-qr").addEventListener("click", () => chooseMethod("qr", false));
  $("tab-code").addEventListener("click", () => chooseMethod("code", false));
  $("tab-list").addEventListener("keydown", (event) => {
    const keys = { ArrowLeft: "qr", ArrowRight: "code", Home: "qr", End: "code" };
    if (event.key === "ArrowLeft" || event.key === "ArrowRight") {
      // Two tabs: either arrow goes to the other one, wrapping as the pattern does.
      event.preventDefault();
      chooseMethod(state.method === "qr" ? "code" : "qr", true);
    } else if (keys[event.key]) {
      event.preventDefault();
      chooseMethod(keys[event.key], true);
    }
  });
}
