// Scheduled messages: the send form's "send at" (a local date and time, sent as ISO 8601 with
// the browser's offset), a scheduled message's time and Cancel button in the message list, and
// the scheduling errors in words. No imports from render.js: it shows what this module builds.

import { ApiError, describe } from "./api.js";
import { ask } from "./confirm.js";
import { app } from "./state.js";

const $ = (id) => document.getElementById(id);

/** `date` as ISO 8601 in local time with its offset, such as 2026-12-01T09:30:00-03:00. */
export function isoWithOffset(date) {
  const pad = (n) => String(Math.trunc(Math.abs(n))).padStart(2, "0");
  const offset = -date.getTimezoneOffset();
  const sign = offset >= 0 ? "+" : "-";
  return (
    `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}` +
    `T${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}` +
    `${sign}${pad(offset / 60)}:${pad(offset % 60)}`
  );
}

/** {send_at} for the send, or {} to send now; throws an Error with a sentence if unreadable. */
export function sendAtField() {
  const value = $("send-at").value;
  if (!value) return {};
  const when = new Date(value); // a datetime-local value is read as local time
  if (Number.isNaN(when.getTime())) throw new Error("Pick a date and time to send at.");
  return { send_at: isoWithOffset(when) };
}

export function clearSendAt() {
  $("send-at").value = "";
}

/** Say which time zone "send at" is in (the browser's), once the page knows it. */
export function renderSendAtHint() {
  const zone = Intl.DateTimeFormat().resolvedOptions().timeZone || "local time";
  const offset = isoWithOffset(new Date()).slice(-6);
  $("send-at-hint").textContent = `Optional: in your time zone (${zone}, UTC${offset}), 1 minute to 30 days ahead. Empty sends now.`;
}

/** A scheduling error in words, or null for the others (api.js says those). */
export function scheduleSentence(err) {
  if (err instanceof ApiError && err.code === "invalid_request" && /send_at/.test(err.message)) {
    return "Pick a time between one minute and 30 days from now to send at.";
  }
  return null;
}

/** What a message item shows about its schedule: its time and, while scheduled, Cancel. */
export function scheduleParts(m) {
  if (!m.send_at || m.direction !== "outbound") return [];
  const when = document.createElement("p");
  when.className = "message-when";
  const time = document.createElement("time");
  time.dateTime = m.send_at;
  time.textContent = formatWhen(m.send_at);
  when.append("Scheduled for ", time);
  if (m.status !== "scheduled") return [when];
  const cancel = document.createElement("button");
  cancel.type = "button";
  cancel.className = "button small";
  cancel.dataset.cancel = m.id;
  cancel.textContent = "Cancel";
  cancel.setAttribute("aria-label", `Cancel the message scheduled for ${formatWhen(m.send_at)}`);
  return [when, cancel];
}

/** Cancel buttons in the message list: `onCancelled(message)` takes the function's answer. */
export function wireSchedule({ onCancelled }) {
  $("messages").addEventListener("click", async (event) => {
    const button = event.target.closest("[data-cancel]");
    if (!button || button.disabled) return;
    const sure = await ask("Cancel this scheduled message? It won't be sent.", "Cancel message");
    if (!sure) return;
    button.disabled = true;
    button.textContent = "Cancelling…";
    showCancelError("");
    try {
      onCancelled(await app.client.cancelMessage(button.dataset.cancel));
    } catch (err) {
      button.disabled = false;
      button.textContent = "Cancel";
      if (!(err instanceof ApiError && err.authLost)) showCancelError(describe(err));
    }
  });
}

function showCancelError(text) {
  const alert = $("cancel-error");
  alert.textContent = text;
  alert.hidden = !text;
}

function formatWhen(iso) {
  const when = new Date(iso);
  if (Number.isNaN(when.getTime())) return "";
  return when.toLocaleString([], { dateStyle: "medium", timeStyle: "short" });
}
