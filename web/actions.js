// What a person does to a message in the open conversation: open its actions, reply (also by
// swiping it to the right, as on a phone), react (the same emoji again takes it back), edit
// one's own text, delete one's own for everyone (after a confirmation). Each is one call to
// send-message's routes with its own Idempotency-Key; the answer updates the list at once.

import { newIdempotencyKey } from "./api.js";
import { editMessage, replyTo } from "./composer.js";
import { ask } from "./confirm.js";
import { $, renderMessages, showAlert, showFailure } from "./render.js";
import { app, mergeMessages, state } from "./state.js";

const SWIPE_PX = 60;

function toggleMenu(id) {
  state.menuFor = state.menuFor === id ? null : id;
  renderMessages();
  const target = state.menuFor
    ? document.querySelector(`.message[data-id="${CSS.escape(id)}"] .message-actions button`)
    : document.querySelector(`[data-menu="${CSS.escape(id)}"]`);
  if (target) target.focus();
}

async function act(button) {
  const m = state.messages.get(button.dataset.id);
  if (!m) return;
  const action = button.dataset.action;
  showAlert($("messages-error"), "");
  if (action === "reply" || action === "edit") {
    state.menuFor = null;
    renderMessages();
    if (action === "reply") replyTo(m);
    else editMessage(m);
    return;
  }
  if (action === "delete") {
    const sure = await ask("Delete this message for everyone in the chat?", "Delete for everyone");
    if (!sure) return;
  }
  button.disabled = true;
  try {
    const body = action === "react" ? { id: m.id, emoji: button.dataset.emoji } : { id: m.id };
    const answer = await app.client.messageAction(action, body, newIdempotencyKey());
    if (action === "react") applyOwnReaction(m.id, answer.emoji);
    state.menuFor = null;
    mergeMessages([{ ...answer.message, updated_at: null }]);
    renderMessages();
    const again = document.querySelector(`[data-menu="${CSS.escape(m.id)}"]`);
    if (again) again.focus();
  } catch (err) {
    button.disabled = false;
    showFailure($("messages-error"), err);
  }
}

/** The account's own reaction as the answer gave it ("" : taken back), until the next read. */
function applyOwnReaction(id, emoji) {
  const others = (state.reactions.get(id) || []).filter((r) => !r.from_me);
  if (emoji) others.push({ id: `own-${id}`, message_id: id, emoji, from_me: true });
  state.reactions.set(id, others);
}

function wireSwipe(list) {
  let start = null;
  list.addEventListener("pointerdown", (event) => {
    const item = event.target.closest(".message");
    if (!item || event.pointerType === "mouse" || event.target.closest("button, a, audio, video")) return;
    start = { x: event.clientX, y: event.clientY, item };
  });
  list.addEventListener("pointermove", (event) => {
    if (!start) return;
    const dx = Math.max(0, Math.min(event.clientX - start.x, SWIPE_PX * 1.5));
    if (Math.abs(event.clientY - start.y) > 30) {
      start.item.style.transform = "";
      start = null;
      return;
    }
    start.item.style.transform = `translateX(${dx}px)`;
  });
  const end = (event) => {
    if (!start) return;
    const { item, x } = start;
    start = null;
    item.style.transform = "";
    const m = state.messages.get(item.dataset.id);
    if (event.type === "pointerup" && event.clientX - x >= SWIPE_PX && m && !m.deleted_at) {
      replyTo(m);
    }
  };
  list.addEventListener("pointerup", end);
  list.addEventListener("pointercancel", end);
}

export function wireActions() {
  const list = $("messages");
  list.addEventListener("click", (event) => {
    const more = event.target.closest("[data-menu]");
    if (more) return toggleMenu(more.dataset.menu);
    const button = event.target.closest("[data-action]");
    if (button && !button.disabled) act(button);
  });
  list.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && state.menuFor) toggleMenu(state.menuFor);
  });
  wireSwipe(list);
}
