// Small pieces every part of the page shows things with, and the open conversation's message
// list. Plain DOM; every string from the network is set with textContent, never parsed as
// HTML (incoming messages are written by strangers).

import { messageItem } from "./thread.js";
import { sortedMessages, state } from "./state.js";

export const $ = (id) => document.getElementById(id);

/** Show the open conversation's messages, oldest at the top, keeping the reader's place. */
export function renderMessages() {
  const list = $("messages");
  const scroller = $("messages-scroll");
  const fromBottom = scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight;
  const firstId = list.firstElementChild && list.firstElementChild.dataset.id;
  const firstTop = list.firstElementChild ? list.firstElementChild.offsetTop : 0;
  const items = sortedMessages();
  list.replaceChildren(...items.map(messageItem));
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

export function showAlert(element, text) {
  element.textContent = text;
  element.hidden = !text;
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
