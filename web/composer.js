// The composer at the bottom of a conversation: the text (Enter sends, Shift+Enter starts a
// new line), a file, a template, a time to send at, a reply to a message or an edit of one's
// own; with no conversation open, a number to start one with. A send that failed in a way a
// retry can fix offers "Retry send" with the same Idempotency-Key; a refusal that a retry
// cannot fix is only said in words.

import { ApiError, describe, newIdempotencyKey } from "./api.js";
import { MAX_CAPTION_CHARS, attachment, clearAttachment, mediaField, mediaSentence } from "./attach.js";
import { $, showAlert, showFailure } from "./render.js";
import { clearSendAt, scheduleSentence, sendAtField } from "./schedule.js";
import { app, state } from "./state.js";
import { chosenTemplate, clearVariables, templateSend } from "./templates.js";
import { authorName, snippet } from "./thread.js";

// Failures a retry of the very same send can get past: the host, the network, a busy session.
const RETRYABLE = new Set([
  "host_error",
  "host_timeout",
  "network",
  "timeout",
  "store_unavailable",
  "session_busy",
  "session_starting",
  "rate_limited",
]);

let hooks = { sent: () => {}, edited: () => {} };

/** Where the composer sends: the open conversation, else the typed number. */
function target() {
  const open = state.open;
  if (open && open.chat_id) {
    if (open.group_id) return { group: open.group_id };
    return { phone: open.phone || `${open.contact_lid}@lid` };
  }
  const phone = $("send-phone").value.trim();
  return phone ? { phone } : null;
}

function sameAsPending() {
  const pending = state.pendingSend;
  return (
    pending &&
    pending.to === JSON.stringify(target()) &&
    pending.message === $("send-text").value &&
    (pending.file || null) === (attachment() ? attachment().key : null)
  );
}

export function renderSend() {
  // A syncing session may be sent to: the functions send once the host is ready, else say
  // when to try again.
  const s = state.session;
  const connected = Boolean(
    s && (s.status === "connected" || (s.status === "starting" && s.status_reason === "syncing")),
  );
  $("send-fieldset").disabled = !connected;
  $("send-hint").hidden = connected || state.session === undefined;
  $("send-to").hidden = Boolean(state.open && state.open.chat_id);
  const reply = state.replyTo;
  const editing = state.editing;
  $("composer-context").hidden = !reply && !editing;
  if (reply || editing) {
    const m = reply || editing;
    $("composer-context-title").textContent = reply ? `Replying to ${authorName(m)}` : "Editing your message";
    $("composer-context-text").textContent = snippet(m);
  }
  const button = $("send-button");
  const wait = Math.ceil((state.retryUntil - Date.now()) / 1000);
  let label = editing ? "Save" : "Send";
  if (state.sending) label = editing ? "Saving…" : "Sending…";
  else if (wait > 0) label = `Wait ${wait} s`;
  else if (state.sendRetryable && sameAsPending()) label = "Retry send";
  button.textContent = label;
  button.disabled = state.sending || wait > 0;
  button.setAttribute("aria-busy", String(state.sending));
}
setInterval(() => {
  if (state.retryUntil && app.client) {
    if (Date.now() >= state.retryUntil) state.retryUntil = 0;
    renderSend();
  }
}, 1000);

/** Reply to `m` (null: no reply) or edit it; the text box gets the focus. */
export function replyTo(m) {
  state.editing = null;
  state.replyTo = m;
  renderSend();
  $("send-text").focus();
}

export function editMessage(m) {
  state.replyTo = null;
  state.editing = m;
  $("send-text").value = m.body || "";
  renderSend();
  $("send-text").focus();
}

/** Forget what the composer holds (another conversation, or another user). */
export function clearComposer() {
  state.replyTo = null;
  state.editing = null;
  state.pendingSend = null;
  state.sendRetryable = false;
  $("send-text").value = "";
  $("send-phone").value = "";
  showAlert($("send-error"), "");
  clearAttachment();
  clearVariables();
  clearSendAt();
}

async function saveEdit(m) {
  const text = $("send-text").value;
  if (!text.trim()) {
    showAlert($("send-error"), "Write the new text, or cancel the edit.");
    return;
  }
  state.sending = true;
  renderSend();
  try {
    const answer = await app.client.messageAction("edit", { id: m.id, message: text });
    state.editing = null;
    $("send-text").value = "";
    showAlert($("send-error"), "");
    hooks.edited(answer.message);
  } catch (err) {
    showFailure($("send-error"), err);
  } finally {
    state.sending = false;
    renderSend();
  }
}

async function send(event) {
  event.preventDefault();
  if (state.sending || Date.now() < state.retryUntil) return;
  if (state.editing) return saveEdit(state.editing);
  const to = target();
  const template = chosenTemplate();
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
  if (state.replyTo) extra.reply_to = state.replyTo.id;
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
  if (!to || (!template && !file && !message.trim())) {
    showAlert($("send-error"), to ? "Write a message first." : "Enter a phone number and a message.");
    return;
  }
  // One Idempotency-Key per send attempt; retrying the same send reuses it, so a send that
  // did go through (but whose answer was lost) is not sent twice.
  const options = JSON.stringify({ ...extra, file: file && file.key });
  const pending = state.pendingSend;
  if (!sameAsPending() || pending.options !== options) {
    const key = newIdempotencyKey();
    const fileKey = file && file.key;
    state.pendingSend = { key, to: JSON.stringify(to), message, options, file: fileKey };
  }
  state.sending = true;
  state.sendRetryable = false;
  showAlert($("send-error"), "");
  renderSend();
  try {
    if (file) extra.media = await mediaField(); // uploaded first when large
    const sent = await app.client.sendMessage(to, message, state.pendingSend.key, extra);
    const body = filled ? filled.preview : message;
    clearComposer();
    hooks.sent({ ...sent, direction: "outbound", phone: sent.group ? null : sent.to, body });
  } catch (err) {
    const code = err instanceof ApiError ? err.code : "";
    if (!(err instanceof ApiError) || code === "idempotency_conflict") state.pendingSend = null;
    if (code === "rate_limited" || code === "session_starting") {
      state.retryUntil = Date.now() + (err.retryAfter || 5) * 1000;
    }
    state.sendRetryable = RETRYABLE.has(code) || /^http_5/.test(code);
    const words = (e) => scheduleSentence(e) || mediaSentence(e) || describe(e);
    showFailure($("send-error"), err, words);
  } finally {
    state.sending = false;
    renderSend();
  }
}

/** `sent(message)` after a send went out (the answer, with its text); `edited(message)`. */
export function wireComposer(on) {
  hooks = on;
  $("send-form").addEventListener("submit", send);
  const changed = () => {
    // What the error said was about the send as it was; a changed send is a new one.
    if (!sameAsPending()) showAlert($("send-error"), "");
    renderSend();
  };
  $("send-phone").addEventListener("input", changed);
  $("send-text").addEventListener("input", changed);
  $("send-text").addEventListener("keydown", (event) => {
    if (event.key !== "Enter" || event.shiftKey || event.isComposing) return;
    event.preventDefault();
    $("send-form").requestSubmit();
  });
  $("composer-cancel").addEventListener("click", () => {
    if (state.editing) $("send-text").value = "";
    state.replyTo = null;
    state.editing = null;
    renderSend();
    $("send-text").focus();
  });
}
