// Keeping the page current: Supabase Realtime in production (supabase-js's channel, through
// api.js), polling the status function with backoff locally (and whenever Realtime is down),
// and the footer line that says which.

import { describe } from "./api.js";
import { markRead, refreshConversations, refreshOpenChat, renderConversations } from "./inbox.js";
import { $, renderMessages } from "./render.js";
import { applySession, renderSession } from "./session.js";
import { app, fingerprint, inMotion, mergeConversations, mergeMessages, state } from "./state.js";

const TABLES = [
  "whatsapp_sessions",
  "whatsapp_messages",
  "whatsapp_chats",
  "whatsapp_reactions",
  "whatsapp_groups",
];

const POLL_MIN_MS = 1_000;
const POLL_BUSY_MAX_MS = 3_000; // while something moves: pairing, a message on its way
const POLL_IDLE_MAX_MS = 10_000;
const POLL_ERROR_MAX_MS = 30_000;

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

/** Something changed (an action, a tab coming back): look again soon. */
export function nudge() {
  if (app.client.local || state.realtime !== "subscribed") poller.kick();
}

/** The QR on screen has expired: look for the next one now rather than at the next poll. */
export function lookForNewQr() {
  if (!app.client.local && state.realtime === "subscribed") refreshSession().catch(() => {});
  else poller.kick();
}

export function startLive() {
  const client = app.client;
  if (client.local) {
    poller.start();
    return;
  }
  app.feed = client.follow(TABLES, {
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
}

export function stopLive() {
  poller.stop();
  if (app.feed) app.feed(); // leaves the channel
  app.feed = null;
  state.realtime = "off";
}

let sessionRefreshTimer = null;
let chatRefreshTimer = null;
function onRealtimeChange({ table, type, record, old }) {
  if (table === "whatsapp_sessions") {
    // The row has the stored columns; the status function gives the API's shape (QR image
    // included), so one change means one status read.
    clearTimeout(sessionRefreshTimer);
    sessionRefreshTimer = setTimeout(() => refreshSession().catch(() => {}), 100);
  } else if (table === "whatsapp_messages" && record && record.id) {
    mergeMessages([record]);
    renderMessages();
  } else if (table === "whatsapp_chats") {
    if (type === "DELETE" && old) state.conversations.delete(old.id);
    else if (record && record.id) mergeConversations([record]);
    renderConversations();
    markRead().catch(() => {}); // a message came into the conversation being read
  } else {
    // A reaction (a deletion carries only its id) or a group: read them again, once.
    clearTimeout(chatRefreshTimer);
    chatRefreshTimer = setTimeout(() => {
      const read = table === "whatsapp_groups" ? refreshConversations : refreshOpenChat;
      read().catch(() => {});
    }, 100);
  }
}

/** Read the session, the conversations and the open one's messages; true when something
 * changed. */
export async function refresh() {
  const before = fingerprint();
  const results = await Promise.allSettled([
    refreshSession(),
    refreshConversations(),
    refreshOpenChat(),
  ]);
  const failure = results.find((r) => r.status === "rejected");
  if (failure) throw failure.reason;
  return fingerprint() !== before;
}

async function refreshSession() {
  const epoch = state.sessionEpoch;
  try {
    const session = await app.client.status();
    if (epoch === state.sessionEpoch) applySession(session);
  } catch (err) {
    if (state.session === undefined) {
      state.sessionFailed = describe(err);
      renderSession();
    }
    throw err;
  }
}

// --- Footer: which live mechanism is in use --------------------------------------------------

export function renderLive() {
  const client = app.client;
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
    line.textContent = "Live updates: Supabase Realtime on your session, chats and messages.";
  } else if (state.realtime === "connecting") {
    line.dataset.mode = "polling";
    line.textContent = "Live updates: connecting to Supabase Realtime… (polling meanwhile)";
  } else {
    line.dataset.mode = "polling";
    const why = state.realtimeWhy ? ` (${state.realtimeWhy})` : "";
    line.textContent = `Live updates: Supabase Realtime is unavailable${why}; polling the status function every ${every} meanwhile.${trouble}`;
  }
}
