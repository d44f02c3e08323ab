// What the page knows: the session, the conversations, the open conversation's messages and
// reactions, what is in flight, and the rules that merge what arrives. No DOM here; the other
// modules show it (session.js, inbox.js, render.js), live.js keeps it current.

export const MESSAGE_LIMIT = 50;
const MOTION_WINDOW_MS = 120_000; // a message still "sent" after this no longer counts as moving
const STATUS_RANK = {
  scheduled: 0,
  queued: 0,
  sent: 1,
  delivered: 2,
  read: 3,
  failed: 3,
  received: 3,
  cancelled: 3,
};

/** The page's connections: its settings, the API client (once configured), and the Realtime
 * subscription's stop function (while subscribed). */
export const app = {
  config: window.WA_CONFIG,
  client: null,
  feed: null,
};

export const state = {
  session: undefined, // undefined: not known yet; null: no session row
  sessionFailed: null,
  sessionEpoch: 0,
  busy: null,
  method: "qr",
  conversations: new Map(), // conversation id -> a row of whatsapp_conversations
  conversationsLoaded: false,
  conversationsFailed: null,
  groups: new Map(), // group id -> {subject, participants}
  open: null, // the open conversation: {chat_id, phone, group_id, name} (chat_id null: a new one)
  messages: new Map(), // the open conversation's messages
  messagesLoaded: false,
  messagesFailed: null,
  olderDone: false, // the open conversation has no older messages to load
  reactions: new Map(), // message id -> [{id, emoji, from_me, phone, contact_lid}]
  replyTo: null, // the message the composer replies to
  editing: null, // the message the composer edits
  menuFor: null, // the message whose actions are shown
  pendingSend: null, // {key, phone, message}: reused when the same send is retried
  sendRetryable: false, // the last send failed in a way a retry can fix
  sending: false,
  retryUntil: 0,
  realtime: "off",
  realtimeWhy: "",
  qrSeen: null, // {raw, total}: the QR on screen and its lifetime when first shown
};

/** Forget the signed-in user's session and messages (on sign-in and sign-out). */
export function resetState() {
  Object.assign(state, {
    session: undefined,
    sessionFailed: null,
    busy: null,
    method: "qr",
    conversations: new Map(),
    conversationsLoaded: false,
    conversationsFailed: null,
    groups: new Map(),
    pendingSend: null,
    sendRetryable: false,
    sending: false,
    retryUntil: 0,
    qrSeen: null,
  });
  openConversation(null);
}

/** Show another conversation (null: none): its messages are read afresh. */
export function openConversation(open) {
  Object.assign(state, {
    open,
    messages: new Map(),
    messagesLoaded: false,
    messagesFailed: null,
    olderDone: false,
    reactions: new Map(),
    replyTo: null,
    editing: null,
    menuFor: null,
  });
}

/** The chat a message row belongs to, as WhatsApp names it (the view's chat_id). */
export function chatOf(row) {
  if (row.chat_id) return row.chat_id;
  if (row.group_id || row.group) return row.group_id || row.group;
  const to = row.phone || row.to || "";
  if (to.endsWith("@lid")) return to;
  if (to) return `${to}@c.us`;
  return row.contact_lid ? `${row.contact_lid}@lid` : "";
}

/** Is something on its way (pairing, a send, a message not yet delivered)? Then look often. */
export function inMotion() {
  const s = state.session;
  if (s && (s.status === "starting" || s.status === "pairing")) return true;
  if (state.sending) return true;
  const now = Date.now();
  for (const m of state.messages.values()) {
    if (m.media_state === "pending" && now - Date.parse(m.created_at || 0) < MOTION_WINDOW_MS) {
      return true; // a received file on its way from the host
    }
    if (m.direction !== "outbound" || !["queued", "sent"].includes(m.status)) continue;
    if (now - Date.parse(m.created_at || 0) < MOTION_WINDOW_MS) return true;
  }
  return false;
}

/** What a look at the server can change, as one string: equal strings, nothing changed. */
export function fingerprint() {
  const s = state.session;
  const session = s
    ? [s.status, s.status_reason, s.qr && s.qr.raw, s.pairing_code, s.phone_number].join("|")
    : String(s);
  const messages = [...state.messages.values()]
    .map((m) => `${m.id}:${m.status}:${m.media_state || ""}:${m.edited_at}:${m.deleted_at}`)
    .join(",");
  const chats = [...state.conversations.values()]
    .map((c) => `${c.id}:${c.last_message_id}:${c.unread}:${c.last_status}`)
    .join(",");
  const reactions = [...state.reactions.values()].flat().map((r) => r.id + r.emoji);
  return `${session}#${messages}#${chats}#${reactions.join(",")}`;
}

// --- Messages -------------------------------------------------------------------------------

/** Merge rows of whatsapp_messages (or send answers); those of another chat are left out. */
export function mergeMessages(rows) {
  for (const row of rows) {
    const chat = chatOf(row);
    const open = state.open;
    if (!state.messages.has(row.id) && (!open || !open.chat_id || open.chat_id !== chat)) continue;
    const incoming = {
      id: row.id,
      direction: row.direction || "outbound",
      phone: row.phone || row.to || "",
      contact_name: row.contact_name || null,
      body: row.body,
      status: row.status,
      created_at: row.created_at,
      // The order of the list: WhatsApp's time of the message (a send's answer has none yet).
      message_at: row.message_at || row.created_at,
      updated_at: row.updated_at || null,
      send_at: row.send_at || null,
      template_name: row.template_name || row.template || null,
      error_code: row.error_code || null,
      chat_id: chat,
      reply_to: row.reply_to || null,
      edited_at: row.edited_at || null,
      deleted_at: row.deleted_at || null,
      location: row.location || null,
      vcard: row.vcard || null,
      group_id: row.group_id || row.group || null,
      author: row.author || null,
      ...mediaFields(row),
    };
    const known = state.messages.get(row.id);
    if (!known) {
      state.messages.set(row.id, incoming);
      continue;
    }
    if (!isNewer(known, incoming)) continue;
    // A partial row (a call's answer, a Realtime change) keeps what it doesn't carry.
    const merged = { ...known };
    for (const [key, value] of Object.entries(incoming)) {
      if (value !== null && value !== undefined) merged[key] = value;
    }
    if (row.message_at === undefined) merged.message_at = known.message_at;
    state.messages.set(row.id, merged);
  }
}

/** Merge rows of whatsapp_conversations (or of whatsapp_chats, from Realtime). */
export function mergeConversations(rows) {
  for (const row of rows) {
    const known = state.conversations.get(row.id);
    // The view names a group by its subject; a whatsapp_chats row (from Realtime) doesn't, so a
    // group keeps the subject the page knows.
    const group = row.group_id && state.groups.get(row.group_id);
    const name = row.group_id
      ? (group && group.subject) || (known && known.contact_name) || row.contact_name
      : row.contact_name || (known && known.contact_name);
    state.conversations.set(row.id, { ...known, ...row, contact_name: name || null });
  }
}

/** Conversations newest first, as the view orders them. */
export function sortedConversations() {
  return [...state.conversations.values()].sort(
    (a, b) =>
      Date.parse(b.last_at || 0) - Date.parse(a.last_at || 0) ||
      String(b.last_message_id).localeCompare(String(a.last_message_id)),
  );
}

/** Set a list of message ids' reactions from rows of whatsapp_reactions. */
export function setReactions(ids, rows) {
  for (const id of ids) state.reactions.delete(id);
  for (const row of rows) {
    const list = state.reactions.get(row.message_id) || [];
    list.push(row);
    state.reactions.set(row.message_id, list);
  }
}

// A file's columns, from a table row or from the `media` of the send-message answer.
function mediaFields(row) {
  const media = row.media || {};
  return {
    message_type: row.message_type || media.type || null,
    mime_type: row.mime_type || media.mime_type || null,
    filename: row.filename || media.filename || null,
    size: row.size ?? media.size ?? null,
    sha256: row.sha256 || media.sha256 || null,
    media_path: row.media_path || media.path || null,
    media_state: row.media_state || media.state || null,
  };
}

function isNewer(known, incoming) {
  const a = Date.parse(known.updated_at || "");
  const b = Date.parse(incoming.updated_at || "");
  if (Number.isFinite(a) && Number.isFinite(b) && a !== b) return b > a;
  return (STATUS_RANK[incoming.status] ?? 0) >= (STATUS_RANK[known.status] ?? 0);
}

/** The open conversation's messages, oldest first (as a chat reads), by WhatsApp's time;
 * within one of its seconds, in the order they arrived. */
export function sortedMessages() {
  const at = (m, key) => Date.parse(m[key] || 0) || 0;
  return [...state.messages.values()].sort(
    (a, b) =>
      at(a, "message_at") - at(b, "message_at") ||
      at(a, "created_at") - at(b, "created_at") ||
      String(a.id).localeCompare(String(b.id)),
  );
}
