// Search: the words typed filter the conversation list by name or number, and find messages
// across every conversation (full-text, .textSearch on the messages' search column); a
// message found opens its conversation.

import { describe } from "./api.js";
import { searchMessages } from "./reads.js";
import { $, chatName, formatPhone, formatShort, span } from "./render.js";
import { state } from "./state.js";
import { snippet } from "./thread.js";

const search = { words: "", results: null, busy: false, failed: "" };
let changed = () => {};

/** The words being searched for ("" when none). */
export function searchWords() {
  return search.words;
}

async function runSearch(words) {
  search.words = words.trim();
  search.failed = "";
  if (!search.words) {
    search.results = null;
    changed();
    return;
  }
  search.busy = true;
  changed();
  try {
    const rows = await searchMessages(search.words);
    if (words.trim() === search.words) search.results = rows;
  } catch (err) {
    search.failed = `Couldn't search. ${describe(err)}`;
  } finally {
    search.busy = false;
    changed();
  }
}

/** Show the messages found (under the conversations whose names match). */
export function renderSearch() {
  const on = Boolean(search.words);
  $("search-results").hidden = !on;
  if (!on) return;
  const results = search.results || [];
  $("search-status").textContent = search.busy
    ? "Searching…"
    : search.failed || (results.length ? `${results.length} messages found` : "No messages found");
  $("search-messages").replaceChildren(
    ...results.map((m) => {
      const li = document.createElement("li");
      const button = document.createElement("button");
      button.type = "button";
      button.className = "conversation";
      button.dataset.chat = m.chat_id;
      const row = [...state.conversations.values()].find((c) => c.chat_id === m.chat_id);
      button.append(
        span("conversation-name", row ? chatName(row) : formatPhone(m.phone) || m.chat_id),
        span("conversation-time", formatShort(m.message_at)),
        span("conversation-last", snippet(m)),
      );
      li.append(button);
      return li;
    }),
  );
}

export function resetSearch() {
  Object.assign(search, { words: "", results: null, busy: false, failed: "" });
  $("search").value = "";
}

/** The search box; `onChange()` when what is found (or being looked for) changed. */
export function wireSearch({ onChange }) {
  changed = onChange;
  let timer = null;
  $("search").addEventListener("input", (event) => {
    clearTimeout(timer);
    const words = event.target.value;
    timer = setTimeout(() => runSearch(words), 250);
  });
  $("search-form").addEventListener("submit", (event) => {
    event.preventDefault();
    clearTimeout(timer);
    runSearch($("search").value);
  });
}
