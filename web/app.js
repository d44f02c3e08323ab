// The demo page: sign in, link WhatsApp, read and write conversations, keep templates, see the
// report, manage the backend's keys. This file wires the page together and starts it; what
// the page knows is in state.js, the session card in session.js, the inbox in inbox.js (the
// list), render.js and thread.js (a conversation), composer.js and actions.js (what the person
// does in one), and how it stays current in live.js.

import { Client, describe } from "./api.js";
import { wireActions } from "./actions.js";
import { clearAttachment, wireAttach } from "./attach.js";
import { loadBackend, resetBackend, wireBackend } from "./backend.js";
import { clearComposer, renderSend, wireComposer } from "./composer.js";
import { wireConfirm } from "./confirm.js";
import { openChat, renderChatHead, renderConversations, resetInbox, showView, wireInbox } from "./inbox.js";
import { lookForNewQr, nudge, renderLive, startLive, stopLive } from "./live.js";
import { resetMedia } from "./media.js";
import { $, renderMessages, setBusyButton, showAlert } from "./render.js";
import { loadReport, resetReport, wireReport } from "./report.js";
import { clearSendAt, renderSendAtHint, wireSchedule } from "./schedule.js";
import { renderSession, whenQrExpires, wireSession } from "./session.js";
import { app, chatOf, mergeMessages, resetState, state } from "./state.js";
import { loadTemplates, resetTemplates, wireTemplates } from "./templates.js";

// --- Views ----------------------------------------------------------------------------------

function showSignedOut(sentence) {
  stopLive();
  resetView();
  $("app-view").hidden = true;
  $("account").hidden = true;
  $("nav").hidden = true;
  $("signin-view").hidden = false;
  $("local-hint").hidden = !app.client.local;
  showAlert($("signin-error"), sentence || "");
  setBusyButton($("signin-button"), false, "Sign in");
  renderLive();
}

let firstLook = true; // the first status after signing in chooses the first screen
let wantedView = window.location.hash.slice(1); // the view a reload was on

function showSignedIn() {
  resetView();
  firstLook = true;
  $("signin-view").hidden = true;
  $("app-view").hidden = false;
  $("account").hidden = false;
  $("nav").hidden = false;
  $("account-email").textContent = app.client.user.email || "";
  renderSession();
  renderConversations();
  renderChatHead();
  renderMessages();
  renderSend();
  startLive();
  renderSendAtHint();
  loadTemplates();
  loadReport();
  loadBackend();
}

/** Forget everything of the user who was signed in: rows, typed values, alerts, files. */
function resetView() {
  resetState();
  for (const id of ["session-error", "send-error", "messages-error", "cancel-error"]) {
    showAlert($(id), "");
  }
  for (const form of ["panel-code", "send-form"]) $(form).reset();
  clearComposer();
  resetInbox();
  resetTemplates();
  resetReport();
  resetBackend();
  clearSendAt();
  clearAttachment();
  resetMedia();
}

/** A session answer or read arrived: on the first one, a user not linked starts in Settings. */
function sessionSeen() {
  if (!firstLook || state.session === undefined) return;
  firstLook = false;
  const linked = state.session && state.session.status === "connected";
  showView(linked && wantedView !== "settings" ? "chats" : "settings");
  wantedView = "";
}

/** The user went to a view: it stands, and the first status no longer picks one. */
function chooseView(view) {
  firstLook = false;
  wantedView = "";
  showView(view);
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
    $("email").value = "";
    showSignedOut();
  });
  $("session-retry").addEventListener("click", () => {
    state.sessionFailed = null;
    renderSession();
    nudge();
  });
  $("nav-chats").addEventListener("click", () => chooseView("chats"));
  $("nav-settings").addEventListener("click", () => chooseView("settings"));
  $("go-link").addEventListener("click", () => {
    chooseView("settings");
    $("session-card").focus();
  });
  document.addEventListener("visibilitychange", () => {
    if (!document.hidden && app.client.user) nudge();
  });
  wireSession({ changed: nudge, seen: sessionSeen });
  whenQrExpires(lookForNewQr);
  wireInbox();
  wireComposer({
    sent: (message) => {
      const chat = chatOf(message);
      if (!state.open || state.open.chat_id !== chat) {
        const group = message.group || null;
        openChat(
          { chat_id: chat, phone: group ? null : message.phone, group_id: group },
          { focus: false },
        );
      }
      mergeMessages([message]);
      state.messagesLoaded = true;
      renderMessages();
      nudge();
    },
    edited: (message) => {
      mergeMessages([{ ...message, updated_at: null }]);
      renderMessages();
      nudge();
    },
  });
  wireActions();
  wireConfirm();
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
