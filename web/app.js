// The demo page: sign in, link WhatsApp (QR or pairing code), follow the session live, send
// messages and watch their delivery, disconnect. This file wires the page's actions; what the
// page knows is in state.js, how it shows it in render.js, how it stays current in live.js.

import { ApiError, Client, describe, newIdempotencyKey } from "./api.js";
import { loadBackend, resetBackend, wireBackend } from "./backend.js";
import {
  MAX_CAPTION_CHARS,
  attachment,
  clearAttachment,
  mediaField,
  mediaSentence,
  wireAttach,
} from "./attach.js";
import {
  $,
  applySession,
  renderMessages,
  renderSend,
  renderSession,
  setBusyButton,
  showAlert,
  whenQrExpires,
} from "./render.js";
import { lookForNewQr, nudge, refresh, renderLive, startLive, stopLive } from "./live.js";
import { resetMedia } from "./media.js";
import { loadReport, resetReport, wireReport } from "./report.js";
import {
  clearSendAt,
  renderSendAtHint,
  scheduleSentence,
  sendAtField,
  wireSchedule,
} from "./schedule.js";
import { app, mergeMessages, resetState, state } from "./state.js";
import {
  chosenTemplate,
  clearVariables,
  loadTemplates,
  resetTemplates,
  templateSend,
  wireTemplates,
} from "./templates.js";

// --- Views ----------------------------------------------------------------------------------

function showSignedOut(sentence) {
  stopLive();
  resetView();
  $("app-view").hidden = true;
  $("account").hidden = true;
  $("signin-view").hidden = false;
  $("local-hint").hidden = !app.client.local;
  showAlert($("signin-error"), sentence || "");
  setBusyButton($("signin-button"), false, "Sign in");
  renderLive();
}

function showSignedIn() {
  resetView();
  $("signin-view").hidden = true;
  $("app-view").hidden = false;
  $("account").hidden = false;
  $("account-email").textContent = app.client.user.email || "";
  renderSession();
  renderMessages();
  renderSend();
  startLive();
  renderSendAtHint();
  loadTemplates();
  loadReport();
  loadBackend();
}

function resetView() {
  resetState();
  showAlert($("session-error"), "");
  showAlert($("send-error"), "");
  resetTemplates();
  resetReport();
  resetBackend();
  clearSendAt();
  clearAttachment();
  resetMedia();
}

// --- Session --------------------------------------------------------------------------------

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
  sessionAction("connect", () => app.client.startSession("qr"), button, "Starting…");
}

/** A start that shows no progress: ask again by the chosen method (the functions recover it). */
function restart(button) {
  const phone = $("pair-phone").value.trim();
  const byCode = state.method === "code" && phone;
  sessionAction(
    "connect",
    () => (byCode ? app.client.startSession("code", phone) : app.client.startSession("qr")),
    button,
    "Starting…",
  );
}

function connectCode(event) {
  event.preventDefault();
  const phone = $("pair-phone").value.trim();
  if (!phone) {
    showAlert($("session-error"), "Enter your WhatsApp number, country code first.");
    $("pair-phone").focus();
    return;
  }
  sessionAction(
    "connect",
    () => app.client.startSession("code", phone),
    $("connect-code"),
    "Starting…",
  );
}

function disconnect() {
  sessionAction("disconnect", () => app.client.disconnect(), $("disconnect"), "Disconnecting…");
}

// --- Messages -------------------------------------------------------------------------------

async function send(event) {
  event.preventDefault();
  if (state.sending || Date.now() < state.retryUntil) return;
  const phone = $("send-phone").value.trim();
  const template = chosenTemplate();
  // A template's name and variables instead of a message, and a time to send it at, if any.
  let filled = null;
  let extra;
  try {
    filled = template ? templateSend(template) : null;
    extra = filled ? { template: filled.template, variables: filled.variables } : {};
    Object.assign(extra, sendAtField());
  } catch (err) {
    showAlert($("send-error"), err.message);
    return;
  }
  const message = template ? undefined : $("send-text").value;
  const file = attachment(); // then the message is its caption
  if (file && (template || extra.send_at)) {
    const why = template ? "choose no template" : "clear Send at";
    showAlert($("send-error"), `A file is sent now and on its own: ${why}, or remove the file.`);
    return;
  }
  if (file && message.length > MAX_CAPTION_CHARS) {
    showAlert($("send-error"), `A caption can be up to ${MAX_CAPTION_CHARS} characters.`);
    return;
  }
  if (!phone || (!template && !file && !message.trim())) {
    showAlert($("send-error"), "Enter a phone number and a message.");
    return;
  }
  // One Idempotency-Key per send attempt; retrying the same send reuses it, so a send that
  // did go through (but whose answer was lost) is not sent twice.
  const pending = state.pendingSend;
  const options = JSON.stringify({ ...extra, file: file && file.key });
  if (
    !pending ||
    pending.phone !== phone ||
    pending.message !== message ||
    pending.options !== options
  ) {
    const key = newIdempotencyKey();
    state.pendingSend = { key, phone, message, options, file: file && file.key };
  }
  state.sending = true;
  showAlert($("send-error"), "");
  renderSend();
  try {
    if (file) extra.media = await mediaField(); // uploaded first when large
    const sent = await app.client.sendMessage(phone, message, state.pendingSend.key, extra);
    state.pendingSend = null;
    $("send-text").value = "";
    clearAttachment();
    clearVariables();
    clearSendAt();
    const body = filled ? filled.preview : message;
    mergeMessages([{ ...sent, direction: "outbound", phone: sent.to, body }]);
    state.messagesLoaded = true;
    renderMessages();
    nudge();
  } catch (err) {
    if (!(err instanceof ApiError) || err.code === "idempotency_conflict") {
      state.pendingSend = null;
    }
    if (err instanceof ApiError && ["rate_limited", "session_starting"].includes(err.code)) {
      state.retryUntil = Date.now() + (err.retryAfter || 5) * 1000;
    }
    if (!(err instanceof ApiError && err.authLost)) {
      showAlert($("send-error"), scheduleSentence(err) || mediaSentence(err) || describe(err));
    }
  } finally {
    state.sending = false;
    renderSend();
  }
}

// --- Events ---------------------------------------------------------------------------------

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
      await app.client.signIn(email, password);
      $("password").value = "";
      showSignedIn();
    } catch (err) {
      showAlert($("signin-error"), describe(err));
    } finally {
      setBusyButton(button, false, "Sign in");
    }
  });
  $("sign-out").addEventListener("click", async (event) => {
    const button = event.currentTarget;
    button.disabled = true;
    stopLive();
    await app.client.signOut(); // revokes the session's refresh tokens
    button.disabled = false;
    showSignedOut();
  });
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
  $("session-restart").addEventListener("click", (e) => restart(e.currentTarget));
  $("panel-code").addEventListener("submit", connectCode);
  $("disconnect").addEventListener("click", disconnect);
  $("send-form").addEventListener("submit", send);
  $("send-phone").addEventListener("input", renderSend);
  $("send-text").addEventListener("input", renderSend);
  document.addEventListener("visibilitychange", () => {
    if (!document.hidden && app.client.user) nudge();
  });
  whenQrExpires(lookForNewQr);
  wireTemplates({ onChoice: renderSend });
  wireSchedule({
    onCancelled: (message) => {
      mergeMessages([message]);
      renderMessages();
      nudge();
    },
  });
  wireReport();
  wireBackend();
  wireAttach({ changed: renderSend });
  $("send-file-button").addEventListener("click", () => $("send-file").click());
}

// --- Go ------------------------------------------------------------------------------------

const config = app.config;
const configured =
  config &&
  config.functions &&
  ["startSession", "status", "sendMessage", "disconnect"].every((k) => config.functions[k]);

if (!configured) {
  $("boot").textContent =
    "This page isn't configured: config.js must set window.WA_CONFIG with the function URLs (see README.md).";
  $("boot").classList.add("alert", "error");
} else if (!window.supabase || typeof window.supabase.createClient !== "function") {
  $("boot").textContent = "This page couldn't load supabase-js (vendor/supabase.js).";
  $("boot").classList.add("alert", "error");
} else {
  app.client = new Client(config, { onAuthLost: (sentence) => showSignedOut(sentence) });
  wireEvents();
  await app.client.ready();
  $("boot").hidden = true;
  if (app.client.user) showSignedIn();
  else showSignedOut();
}
