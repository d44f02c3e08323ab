// The inbox: the conversation list (name, last message, time, unread count; newest first),
// opening a conversation (its messages read afresh, older ones on
// scroll, marked read), and which screen shows: on a phone the list and the conversation are
// two screens with a back button; on a wider screen they sit side by side.

import { describe } from "./api.js";
import { clearComposer, renderSend } from "./composer.js";
import { readConversations, readGroups, readMessages, readReactions } from "./reads.js";
import {
  $,
  chatName,
  formatPhone,
  formatShort,
  renderKeyed,
  renderMessages,
  showAlert,
  span,
  showFailure,
} from "./render.js";
import { reportShown } from "./report.js";
import {
  app,
  mergeConversations,
  mergeMessages,
  openConversation,
  setReactions,
  sortedConversations,
  sortedMessages,
  state,
} from "./state.js";
import { renderSearch, resetSearch, searchWords, wireSearch } from "./search.js";

const conversationNodes = new Map();

export function renderConversations() {
  const words = searchWords().toLowerCase();
  const open = state.open && state.open.chat_id;
  const all = sortedConversations();
  if (open && !all.some((c) => c.chat_id === open)) {
    // A chat opened before anything in it went out (a scheduled message, say) is listed too.
    all.unshift({ ...state.open, id: open, last_body: "Nothing sent yet", unread: 0 });
  }
  const shown = all.filter(
    (c) => !words || `${chatName(c)} ${c.phone || ""}`.toLowerCase().includes(words),
  );
  renderKeyed($("conversations"), conversationNodes, shown, {
    key: (c) => c.chat_id,
    signature: (c) => JSON.stringify([c, c.chat_id === open]),
    build: conversationItem,
  });
  const loaded = state.conversationsLoaded;
  $("conversations-empty").hidden = !loaded || shown.length > 0 || Boolean(words);
  showAlert($("conversations-error"), state.conversationsFailed || "");
  renderSearch();
  rovingTabStop();
}

function conversationItem(c) {
  const li = document.createElement("li");
  const button = document.createElement("button");
  button.type = "button";
  button.className = "conversation";
  button.dataset.chat = c.chat_id;
  button.dataset.unread = String(c.unread || 0);
  const open = state.open && state.open.chat_id === c.chat_id;
  if (open) button.setAttribute("aria-current", "true");
  const name = span("conversation-name", chatName(c));
  const time = document.createElement("time");
  time.className = "conversation-time";
  time.dateTime = c.last_at || "";
  time.textContent = formatShort(c.last_at);
  const you = c.last_direction === "outbound" ? "You: " : "";
  const last = span("conversation-last", `${you}${lastText(c)}`);
  button.append(name, time, last);
  if (c.unread > 0) {
    const badge = span("unread", String(c.unread));
    badge.setAttribute("aria-label", `${c.unread} unread`);
    button.append(badge);
  }
  li.append(button);
  return li;
}

function lastText(c) {
  if (c.last_body) return c.last_body;
  const kinds = { image: "Photo", video: "Video", audio: "Audio", ptt: "Voice note", document: "Document", sticker: "Sticker", location: "Location", vcard: "Contact card" };
  return kinds[c.last_message_type] || "Message";
}


/** The list is one tab stop (the focused, else the open, else the first conversation);
 * the arrow keys, Home and End move between conversations. */
function rovingTabStop() {
  const buttons = [...$("conversations").querySelectorAll("button")];
  const stop =
    buttons.find((b) => b === document.activeElement) ||
    buttons.find((b) => b.getAttribute("aria-current") === "true") ||
    buttons[0];
  for (const button of buttons) button.tabIndex = button === stop ? 0 : -1;
}

// --- Screens ----------------------------------------------------------------------------------

/** Show the chats or the settings; on a phone, the list or the conversation. */
export function showView(view, pane = null) {
  $("inbox-view").hidden = view !== "chats";
  $("settings-view").hidden = view !== "settings";
  $("nav-chats").setAttribute("aria-current", view === "chats" ? "page" : "false");
  $("nav-settings").setAttribute("aria-current", view === "settings" ? "page" : "false");
  if (pane) $("inbox-view").dataset.pane = pane;
  // The address keeps the view, so a reload comes back to it.
  if (window.location.hash !== `#${view}`) window.history.replaceState(null, "", `#${view}`);
  if (view === "settings") reportShown();
}

/** Open a conversation (a row of the list), or a new one (null): the number is typed. */
export function openChat(c, { focus = true } = {}) {
  const same = state.open && c && state.open.chat_id === c.chat_id;
  if (!same) {
    openConversation(
      c
        ? { chat_id: c.chat_id, whatsapp_session_id: c.whatsapp_session_id || null, phone: c.phone || null, contact_lid: c.contact_lid || null, group_id: c.group_id || null, account: c.account || null }
        : null,
    );
    clearComposer();
  }
  showView("chats", "chat");
  renderChatHead();
  renderMessages();
  renderConversations();
  renderSend();
  if (c) refreshOpenChat().catch(() => {});
  if (focus) $(c ? "send-text" : "send-phone").focus();
}

export function renderChatHead() {
  const open = state.open;
  const row = open && [...state.conversations.values()].find((c) => c.chat_id === open.chat_id);
  $("chat-title").textContent = open ? chatName(row || open) : "New chat";
  const title = $("chat-title").textContent;
  let sub = open && !open.group_id ? formatPhone(open.phone) : "";
  if (sub === title) sub = ""; // no name: the number is the title already
  if (open && open.group_id) sub = participantsLine(open.group_id);
  if (!open) sub = "Type a number with its country code to start a chat.";
  $("chat-sub").textContent = sub;
}

/** A group's participants by name: a name from their messages, else their number. */
function participantsLine(groupId) {
  const group = state.groups.get(groupId);
  // Names from the contacts' own chats, then from who wrote in this group.
  const known = new Map();
  for (const c of state.conversations.values()) {
    if (c.phone && c.contact_name && !c.group_id) known.set(c.phone, c.contact_name);
  }
  const wrote = new Map();
  for (const m of state.messages.values()) {
    const who = String(m.author || "").replace(/@.*$/, "");
    if (who) wrote.set(who, m.contact_name || wrote.get(who) || known.get(who) || formatPhone(who));
  }
  if (!group || !Array.isArray(group.participants)) {
    // The host hasn't listed them yet: those who wrote here so far.
    return wrote.size ? `Group with ${[...wrote.values()].join(", ")} and others` : "Group";
  }
  const own = state.session && state.session.phone_number;
  const people = group.participants.map((p) => {
    const id = String(p.id || "").replace(/@.*$/, "");
    if (own && id === own) return "You";
    return wrote.get(id) || known.get(id) || formatPhone(id);
  });
  return `${people.length} participants: ${people.join(", ")}`;
}

// --- Reads ------------------------------------------------------------------------------------

export async function refreshConversations() {
  try {
    const [rows, groups] = await Promise.all([readConversations(), readGroups()]);
    state.conversationsLoaded = true;
    state.conversationsFailed = null;
    for (const g of groups) state.groups.set(g.group_id, g);
    mergeConversations(rows);
  } catch (err) {
    state.conversationsFailed = `Couldn't load your chats. ${describe(err)}`;
    throw err;
  } finally {
    renderConversations();
    renderChatHead();
  }
  await markRead();
}

/** Read the open conversation's newest messages and their reactions. */
export async function refreshOpenChat() {
  const open = state.open;
  if (!open || !open.chat_id) return;
  try {
    const rows = await readMessages(open);
    if (state.open !== open) return;
    state.messagesLoaded = true;
    state.messagesFailed = null;
    if (rows.length < 50 && state.messages.size === 0) state.olderDone = true;
    mergeMessages(rows);
    const ids = [...state.messages.keys()];
    setReactions(ids, await readReactions(ids));
  } catch (err) {
    state.messagesFailed = `Couldn't load messages. ${describe(err)}`;
    throw err;
  } finally {
    if (state.open === open) {
      renderMessages();
      renderChatHead();
    }
  }
  await markRead();
}

/** Older messages of the open conversation (keyset on WhatsApp's time and id). */
export async function loadOlder() {
  const open = state.open;
  const oldest = sortedMessages()[0];
  if (!open || !oldest || state.olderDone || state.loadingOlder) return;
  state.loadingOlder = true;
  try {
    const rows = await readMessages(open, oldest);
    if (state.open !== open) return;
    if (rows.length < 50) state.olderDone = true;
    mergeMessages(rows);
    const ids = rows.map((r) => r.id);
    setReactions(ids, await readReactions(ids));
    renderMessages();
  } catch (err) {
    showFailure($("messages-error"), err);
  } finally {
    state.loadingOlder = false;
  }
}

/** The open conversation has unread messages and the page is looked at: mark them read. */
export async function markRead() {
  const open = state.open;
  if (!open || !open.chat_id || document.hidden || $("inbox-view").hidden) return;
  if ($("inbox-view").dataset.pane !== "chat" && window.matchMedia("(max-width: 760px)").matches) return;
  const row = [...state.conversations.values()].find((c) => c.chat_id === open.chat_id);
  if (!row || !(row.unread > 0) || state.marking) return;
  state.marking = true;
  try {
    const to = open.group_id ? { group: open.group_id } : { phone: open.phone || `${open.contact_lid}@lid` };
    if (open.account) to.account = open.account;
    await app.client.messageAction("read", to);
    row.unread = 0;
    renderConversations();
  } catch {
    // the next look tries again
  } finally {
    state.marking = false;
  }
}

export function resetInbox() {
  resetSearch();
  showView("chats", "list");
}

export function wireInbox() {
  const pick = (event) => {
    const button = event.target.closest("button[data-chat]");
    if (!button) return;
    const chat = button.dataset.chat;
    const row = [...state.conversations.values()].find((c) => c.chat_id === chat);
    openChat(row || { chat_id: chat, phone: chat.endsWith("@c.us") ? chat.replace(/@.*$/, "") : null, group_id: chat.endsWith("@g.us") ? chat : null });
  };
  $("conversations").addEventListener("click", pick);
  $("search-messages").addEventListener("click", pick);
  $("new-chat").addEventListener("click", () => openChat(null));
  $("chat-back").addEventListener("click", () => {
    showView("chats", "list");
    const current = document.querySelector(".conversation[aria-current=true]");
    (current || $("search")).focus();
  });
  wireSearch({ onChange: renderConversations });
  $("messages-older").addEventListener("click", () => loadOlder());
  $("messages-scroll").addEventListener("scroll", (event) => {
    if (event.target.scrollTop < 40) loadOlder();
  });
  $("conversations").addEventListener("keydown", (event) => {
    const buttons = [...$("conversations").querySelectorAll("button")];
    const at = buttons.indexOf(document.activeElement);
    const moves = { ArrowDown: at + 1, ArrowUp: at - 1, Home: 0, End: buttons.length - 1 };
    const next = buttons[moves[event.key]];
    if (event.key in moves && next) {
      event.preventDefault();
      next.focus();
    }
  });
  $("conversations").addEventListener("focusin", rovingTabStop);
  document.addEventListener("visibilitychange", () => {
    if (!document.hidden) markRead().catch(() => {});
  });
}
