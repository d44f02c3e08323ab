// What the page knows: the session, the messages, what is in flight, and the rules that merge
// what arrives. No DOM here; render.js shows it, live.js keeps it current, app.js changes it on
// the person's actions.

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
  messages: new Map(),
  messagesLoaded: false,
  messagesFailed: null,
  pendingSend: null, // {key, phone, message}: reused when the same send is retried
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
    messages: new Map(),
    messagesLoaded: false,
    messagesFailed: null,
    pendingSend: null,
    sending: false,
    retryUntil: 0,
    qrSeen: null,
  });
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
    .map((m) => `${m.id}:${m.status}:${m.media_state || ""}`)
    .join(",");
  return `${session}#${messages}`;
}

// --- Messages -------------------------------------------------------------------------------

export function mergeMessages(rows) {
  for (const row of rows) {
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
      ...mediaFields(row),
    };
    const known = state.messages.get(row.id);
    if (!known) {
      state.messages.set(row.id, incoming);
      continue;
    }
    if (incoming.body === undefined) incoming.body = known.body;
    if (isNewer(known, incoming)) state.messages.set(row.id, { ...known, ...incoming });
  }
  // Keep the newest ones only.
  if (state.messages.size > MESSAGE_LIMIT * 2) {
    const keep = sortedMessages().slice(0, MESSAGE_LIMIT);
    state.messages = new Map(keep.map((m) => [m.id, m]));
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

export function sortedMessages() {
  return [...state.messages.values()].sort(
    (a, b) => Date.parse(b.message_at || 0) - Date.parse(a.message_at || 0),
  );
}
