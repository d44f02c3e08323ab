// One message as a chat shows it: who wrote it (in a group), the message it replies to, its
// text or file, a location or contact card, "This message was deleted", the time, "Edited",
// its status (a failure's reason in words), its reactions, and its actions (reply, react, edit,
// delete) behind a per-message menu button. No network here: actions.js acts.

import { mediaParts } from "./media.js";
import { formatPhone, formatTime } from "./render.js";
import { scheduleParts } from "./schedule.js";
import { state } from "./state.js";

export const EMOJI = [
  ["👍", "thumbs up"],
  ["❤️", "heart"],
  ["😂", "laughing"],
  ["😮", "surprised"],
  ["😢", "sad"],
  ["🙏", "thanks"],
];
export const EDIT_WINDOW_MS = 15 * 60_000;
export const DELETE_WINDOW_MS = 48 * 3_600_000;
const MESSAGE_STATUS = {
  queued: "Queued",
  sent: "Sent",
  delivered: "Delivered",
  read: "Read",
  failed: "Not sent",
  received: "Received",
  scheduled: "Scheduled",
  cancelled: "Cancelled",
};
// Why a message failed (error_code), in words; every code the gateway stores on a message.
const FAILURES = {
  unknown_recipient: "this number isn't on WhatsApp",
  account_removed: "the WhatsApp number was unlinked before it went out",
  session_not_connected: "your WhatsApp wasn't connected when it was due",
  host_error: "the WhatsApp host refused it",
  host_timeout: "the WhatsApp host didn't answer in time",
  store_unavailable: "the service's database was unavailable",
  unsupported_media: "WhatsApp doesn't take this kind of file",
  media_unavailable: "the file couldn't be read",
  invalid_phone: "the number isn't a phone number",
  scheduled_limit: "too many messages were scheduled",
};
const SVG = "http://www.w3.org/2000/svg";

/** Why a message failed, as a phrase (null for a code the page doesn't know). */
export function failureReason(code) {
  return FAILURES[code] || null;
}

/** The words for a failed message's error code. */
export function failureSentence(code) {
  return FAILURES[code] ? `Not sent: ${FAILURES[code]}.` : "Not sent.";
}

/** Who wrote a message, for a group's messages and reply quotes. */
export function authorName(m) {
  if (m.direction === "outbound") return "You";
  if (m.contact_name) return m.contact_name;
  const who = m.group_id ? m.author : m.phone;
  return formatPhone(String(who || "").replace(/@.*$/, "")) || "Someone";
}

export function canEdit(m) {
  const sent = ["sent", "delivered", "read"].includes(m.status);
  const young = Date.now() - Date.parse(m.message_at || m.created_at || 0) < EDIT_WINDOW_MS;
  const text = !m.message_type || m.message_type === "chat";
  return m.direction === "outbound" && sent && !m.deleted_at && text && young;
}

export function canDelete(m) {
  const sent = ["sent", "delivered", "read"].includes(m.status);
  const young = Date.now() - Date.parse(m.message_at || m.created_at || 0) < DELETE_WINDOW_MS;
  return m.direction === "outbound" && sent && !m.deleted_at && young;
}

const el = (tag, className, text) => {
  const element = document.createElement(tag);
  if (className) element.className = className;
  if (text !== undefined) element.textContent = text;
  return element;
};

export function messageItem(m) {
  const li = el("li", `message ${m.direction === "outbound" ? "out" : "in"}`);
  li.dataset.id = m.id;
  li.dataset.status = m.status;
  if (m.deleted_at) li.dataset.deleted = "true";
  if (m.group_id && m.direction !== "outbound") li.append(el("p", "message-author", authorName(m)));
  if (m.reply_to) li.append(quote(m.reply_to));
  if (m.deleted_at) {
    const words = m.direction === "outbound" ? "You deleted this message" : "This message was deleted";
    li.append(el("p", "message-body message-deleted", words));
  } else {
    const media = mediaParts(m);
    li.append(...media, ...placeParts(m), ...contactParts(m));
    const body = el("p", "message-body", m.body || "");
    // A location's or a contact card's text is its name, shown with it already.
    body.hidden = !m.body || Boolean(m.location || m.vcard);
    li.append(body);
  }
  li.append(foot(m), ...scheduleParts(m));
  const reactions = state.reactions.get(m.id);
  if (reactions && reactions.length) li.append(reactionChips(reactions));
  li.append(menuButton(m));
  if (state.menuFor === m.id) li.append(menu(m));
  return li;
}

function quote(id) {
  const quoted = state.messages.get(id);
  const box = el("blockquote", "message-quote");
  box.dataset.quote = id;
  if (!quoted) {
    box.textContent = "A reply to an earlier message";
    return box;
  }
  box.append(el("strong", "", authorName(quoted)), el("span", "", snippet(quoted)));
  return box;
}

/** A message's text in a line, or what it is when it has none. */
export function snippet(m) {
  if (m.deleted_at) return "This message was deleted";
  if (m.body) return m.body.length > 120 ? `${m.body.slice(0, 120)}…` : m.body;
  if (m.location) return `Location${m.location.name ? `: ${m.location.name}` : ""}`;
  if (m.vcard) return `Contact: ${cardNames(m.vcard).join(", ") || "a contact"}`;
  if (m.message_type && m.message_type !== "chat") return m.filename || m.message_type;
  return "";
}

function placeParts(m) {
  const place = m.location;
  if (!place || !Number.isFinite(Number(place.lat))) return [];
  const box = el("div", "message-location");
  box.append(icon("M12 2a7 7 0 0 0-7 7c0 5 7 13 7 13s7-8 7-13a7 7 0 0 0-7-7zm0 9.5A2.5 2.5 0 1 1 12 6.5a2.5 2.5 0 0 1 0 5z"));
  const text = el("span", "", place.name || "Location");
  const link = el("a", "", `${Number(place.lat).toFixed(5)}, ${Number(place.lng).toFixed(5)}`);
  link.href = `https://www.openstreetmap.org/?mlat=${place.lat}&mlon=${place.lng}#map=16/${place.lat}/${place.lng}`;
  link.target = "_blank";
  link.rel = "noopener noreferrer";
  link.setAttribute("aria-label", `Open ${place.name || "the location"} on a map`);
  box.append(text, link);
  return [box];
}

/** The names (FN) of the contact cards in a vCard text. */
export function cardNames(vcard) {
  return [...String(vcard).matchAll(/^FN[^:]*:(.*)$/gim)].map((match) => match[1].trim());
}

function contactParts(m) {
  if (!m.vcard) return [];
  const phones = [...String(m.vcard).matchAll(/^TEL[^:]*:(.*)$/gim)].map((x) => x[1].trim());
  const box = el("div", "message-contact");
  box.append(icon("M12 12a4 4 0 1 0 0-8 4 4 0 0 0 0 8zm0 2c-4 0-8 2-8 5v1h16v-1c0-3-4-5-8-5z"));
  const names = cardNames(m.vcard);
  box.append(el("span", "contact-name", names.join(", ") || "Contact card"));
  if (phones.length) box.append(el("span", "contact-phone", phones.join(", ")));
  return [box];
}

function icon(path) {
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("viewBox", "0 0 24 24");
  svg.setAttribute("aria-hidden", "true");
  svg.classList.add("icon");
  const shape = document.createElementNS(SVG, "path");
  shape.setAttribute("d", path);
  svg.append(shape);
  return svg;
}

// A clock, for a scheduled message (the page's fonts have no emoji).
const CLOCK = "M12 2a10 10 0 1 0 0 20 10 10 0 0 0 0-20zm0 2a8 8 0 1 1 0 16 8 8 0 0 1 0-16zm-1 3v6l5 3 1-1.7-4-2.3V7z";

function foot(m) {
  const line = el("p", "message-foot");
  const time = el("time", "message-time", formatTime(m.message_at || m.created_at));
  time.dateTime = m.message_at || m.created_at || "";
  line.append(time);
  if (m.edited_at && !m.deleted_at) line.append(el("span", "message-edited", "Edited"));
  if (m.direction === "outbound" || m.status !== "received") {
    const status = el("span", `message-status status-${m.status}`);
    if (m.status === "scheduled") status.append(icon(CLOCK), " ");
    status.append(m.status === "failed" ? failureSentence(m.error_code) : MESSAGE_STATUS[m.status] || m.status);
    line.append(status);
  }
  return line;
}

function reactionChips(reactions) {
  const counts = new Map();
  for (const r of reactions) {
    const known = counts.get(r.emoji) || { n: 0, mine: false };
    counts.set(r.emoji, { n: known.n + 1, mine: known.mine || r.from_me });
  }
  const box = el("ul", "message-reactions");
  box.setAttribute("aria-label", "Reactions");
  for (const [emoji, { n, mine }] of counts) {
    const chip = el("li", mine ? "reaction mine" : "reaction", n > 1 ? `${emoji} ${n}` : emoji);
    chip.dataset.emoji = emoji;
    chip.title = mine ? "You reacted" : "";
    box.append(chip);
  }
  return box;
}

function menuButton(m) {
  const button = el("button", "message-more");
  button.type = "button";
  button.dataset.menu = m.id;
  button.setAttribute("aria-expanded", String(state.menuFor === m.id));
  button.setAttribute("aria-label", "Message actions");
  button.append(icon("M6 10a2 2 0 1 0 0 4 2 2 0 0 0 0-4zm6 0a2 2 0 1 0 0 4 2 2 0 0 0 0-4zm6 0a2 2 0 1 0 0 4 2 2 0 0 0 0-4z"));
  return button;
}

function menu(m) {
  const box = el("div", "message-actions");
  box.setAttribute("role", "group");
  box.setAttribute("aria-label", "Actions on this message");
  const action = (name, label) => {
    const button = el("button", "button small", label);
    button.type = "button";
    button.dataset.action = name;
    button.dataset.id = m.id;
    return button;
  };
  const sendable = !m.deleted_at && !["scheduled", "cancelled", "queued", "failed"].includes(m.status);
  if (sendable) box.append(action("reply", "Reply"));
  if (sendable) {
    const row = el("span", "emoji-row");
    const mine = (state.reactions.get(m.id) || []).find((r) => r.from_me);
    for (const [emoji, name] of EMOJI) {
      const button = action("react", emoji);
      button.dataset.emoji = mine && mine.emoji === emoji ? "" : emoji;
      button.setAttribute("aria-label", mine && mine.emoji === emoji ? `Remove your ${name}` : `React with ${name}`);
      button.setAttribute("aria-pressed", String(Boolean(mine && mine.emoji === emoji)));
      row.append(button);
    }
    box.append(row);
  }
  if (canEdit(m)) box.append(action("edit", "Edit"));
  if (canDelete(m)) box.append(action("delete", "Delete for everyone"));
  if (!box.childElementCount) box.append(el("span", "hint", "Nothing to do with this message."));
  return box;
}
