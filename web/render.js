// Small pieces every part of the page shows things with, and the open conversation's message
// list. Plain DOM; every string from the network is set with textContent, never parsed as
// HTML (incoming messages are written by strangers).

import { ApiError, describe } from "./errors.js";
import { messageItem, snippet } from "./thread.js";
import { sortedMessages, state } from "./state.js";

export const $ = (id) => document.getElementById(id);

/**
 * Show `items` in `list`, one element each: an item whose signature didn't change keeps its
 * element, and an unchanged list isn't touched, so a look at the server that changed nothing
 * neither moves the reader's place nor loses a click that was under way. `cache` is the
 * list's own Map (key -> {signature, node}).
 */
export function renderKeyed(list, cache, items, { key, signature, build }) {
  const next = new Map();
  const nodes = items.map((item) => {
    const sig = signature(item);
    const known = cache.get(key(item));
    const node = known && known.sig === sig ? known.node : build(item);
    next.set(key(item), { sig, node });
    return node;
  });
  cache.clear();
  for (const [k, v] of next) cache.set(k, v);
  const same =
    nodes.length === list.children.length && nodes.every((node, i) => list.children[i] === node);
  if (!same) list.replaceChildren(...nodes);
}

const messageNodes = new Map();

function messageSignature(m) {
  const quoted = m.reply_to && state.messages.get(m.reply_to);
  return JSON.stringify([
    m,
    state.reactions.get(m.id) || [],
    state.menuFor === m.id,
    quoted ? [quoted.contact_name, snippet(quoted)] : null,
  ]);
}

/** Show the open conversation's messages, oldest at the top, keeping the reader's place. */
export function renderMessages() {
  const list = $("messages");
  const scroller = $("messages-scroll");
  const fromBottom = scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight;
  const firstId = list.firstElementChild && list.firstElementChild.dataset.id;
  const firstTop = list.firstElementChild ? list.firstElementChild.offsetTop : 0;
  const items = sortedMessages();
  renderKeyed(list, messageNodes, items, {
    key: (m) => m.id,
    signature: messageSignature,
    build: messageItem,
  });
  const open = Boolean(state.open);
  $("messages-loading").hidden = !open || state.messagesLoaded || Boolean(state.messagesFailed);
  $("messages-empty").hidden = !open || !state.messagesLoaded || items.length > 0;
  $("messages-older").hidden = !open || !state.messagesLoaded || state.olderDone || !items.length;
  showAlert($("messages-error"), items.length || !state.messagesFailed ? "" : state.messagesFailed);
  if (fromBottom < 80) {
    scroller.scrollTop = scroller.scrollHeight; // at the newest: stay there as messages arrive
  } else if (firstId && list.firstElementChild && list.firstElementChild.dataset.id !== firstId) {
    // Older messages came in above: keep the one that was at the top where it was.
    const same = list.querySelector(`[data-id="${CSS.escape(firstId)}"]`);
    if (same) scroller.scrollTop += same.offsetTop - firstTop;
  }
}

/** The name a conversation goes by: the contact's or group's name, else the number. */
export function chatName(c) {
  if (c.contact_name) return c.contact_name;
  if (c.group_id) return "Group";
  return formatPhone(c.phone) || (c.contact_lid ? `Contact ${c.contact_lid}` : "Unknown");
}

export function span(className, text) {
  const element = document.createElement("span");
  element.className = className;
  element.textContent = text;
  return element;
}

export function showAlert(element, text) {
  element.textContent = text;
  element.hidden = !text;
}

/** A failed call's sentence (``words``) in ``element``; none when the call lost the sign-in,
 * which the page answers by asking for it again. */
export function showFailure(element, err, words = describe) {
  if (!(err instanceof ApiError && err.authLost)) showAlert(element, words(err));
}

export function setBusyButton(button, busy, label) {
  button.disabled = busy;
  button.setAttribute("aria-busy", String(busy));
  button.textContent = label;
}

export function formatPhone(digits) {
  if (!digits) return "";
  return /^[0-9]+$/.test(digits) ? `+${digits}` : digits;
}

export function formatCode(code) {
  const clean = String(code || "").replace(/[^0-9A-Za-z]/g, "");
  return clean.length === 8 ? `${clean.slice(0, 4)}-${clean.slice(4)}` : String(code || "");
}

export function formatTime(iso) {
  const when = new Date(iso);
  if (Number.isNaN(when.getTime())) return "";
  const sameDay = when.toDateString() === new Date().toDateString();
  const time = when.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  return sameDay ? time : `${when.toLocaleDateString()} ${time}`;
}

/** A short time for the conversation list: the time today, else the date. */
export function formatShort(iso) {
  const when = new Date(iso);
  if (Number.isNaN(when.getTime())) return "";
  if (when.toDateString() === new Date().toDateString()) {
    return when.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  }
  return when.toLocaleDateString([], { day: "numeric", month: "short" });
}
