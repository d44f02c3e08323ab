// The "Your backend" card: API keys (make one, copy it once, revoke one) and event endpoints
// (add one, copy its signing secret once, see its deliveries: status, attempts, next try, the
// endpoint's last answer; replay the failed ones, delete it), through the api-keys function.

import { describe } from "./api.js";
import { $, setBusyButton, showAlert } from "./render.js";
import { app } from "./state.js";

const backend = { keys: [], endpoints: [], shown: null, deliveries: [] };

const REFUSALS = {
  endpoint_not_allowed: (e) => `That URL can't receive events. ${e.message || ""}`.trim(),
  limit_reached: (e) => e.message || "You have as many as allowed. Delete one first.",
};

function sentence(err) {
  const words = err && REFUSALS[err.code];
  return words ? words(err) : describe(err);
}

function el(tag, { text, className, attrs } = {}, children = []) {
  const node = document.createElement(tag);
  if (text !== undefined) node.textContent = text;
  if (className) node.className = className;
  for (const [name, value] of Object.entries(attrs || {})) node.setAttribute(name, value);
  for (const child of children) node.append(child);
  return node;
}

function when(iso) {
  return iso ? new Date(iso).toLocaleString() : "—";
}

function checked(form, name) {
  return [...form.querySelectorAll(`input[name="${name}"]:checked`)].map((box) => box.value);
}

/** A secret shown once, with a Copy button: nothing keeps it after this. */
function showOnce(boxId, label, secret) {
  const box = $(boxId);
  box.replaceChildren();
  if (!secret) {
    box.hidden = true;
    return;
  }
  const code = el("code", { text: secret, className: "secret-value" });
  const copy = el("button", { text: "Copy", className: "button small", attrs: { type: "button" } });
  copy.addEventListener("click", async () => {
    try {
      await navigator.clipboard.writeText(secret);
      copy.textContent = "Copied";
    } catch {
      copy.textContent = "Select it and copy";
    }
  });
  const done = el("button", {
    text: "Done",
    className: "button quiet small",
    attrs: { type: "button" },
  });
  done.addEventListener("click", () => showOnce(boxId, "", null));
  box.append(
    el("p", { text: `${label} It is shown only now: copy it and keep it safe.` }),
    el("div", { className: "secret-row" }, [code, copy, done]),
  );
  box.hidden = false;
}

// --- keys -----------------------------------------------------------------------------------

function renderKeys() {
  const list = $("keys");
  list.replaceChildren(
    ...backend.keys.map((key) => {
      const revoke = el("button", {
        text: "Revoke",
        className: "button danger small",
        attrs: { type: "button", "data-key": key.id },
      });
      return el("li", { className: "backend-item" }, [
        el("strong", { text: key.name }),
        revoke,
        el("span", {
          className: "muted backend-detail",
          text: `${key.prefix}… · ${key.scopes.join(", ")} · made ${when(key.created_at)} · last used ${when(key.last_used_at)}`,
        }),
      ]);
    }),
  );
  $("keys-empty").hidden = backend.keys.length > 0;
}

// The forms that make something whose secret is shown once: the button's label while
// busy, and the note over the secret.
const SECRET_FORMS = {
  key: ["Making…", "Your new API key."],
  endpoint: ["Adding…", "The endpoint's signing secret."],
};

// Sends the form `${kind}-form` with its button busy, then shows the secret `make(form)`
// answers, clears the form and reloads the list; a failure is shown under the form.
async function makeWithSecret(event, kind, reload, make) {
  event.preventDefault();
  const [busy, note] = SECRET_FORMS[kind];
  const form = $(`${kind}-form`);
  const button = $(`${kind}-save`);
  const idle = button.textContent;
  showAlert($(`${kind}-error`), "");
  setBusyButton(button, true, busy);
  try {
    showOnce(`${kind}-secret`, note, await make(form));
    form.reset();
    await reload();
  } catch (err) {
    showAlert($(`${kind}-error`), sentence(err));
  } finally {
    setBusyButton(button, false, idle);
  }
}

function addKey(event) {
  return makeWithSecret(event, "key", loadKeys, async (form) => {
    const body = { name: $("key-name").value.trim(), scopes: checked(form, "key-scope") };
    return (await app.client.call("apiKeys", { body })).key.secret;
  });
}

async function revokeKey(id) {
  showAlert($("key-error"), "");
  try {
    await app.client.call("apiKeys", { method: "DELETE", path: id });
    await loadKeys();
  } catch (err) {
    showAlert($("key-error"), sentence(err));
  }
}

async function loadKeys() {
  try {
    backend.keys = (await app.client.call("apiKeys", { method: "GET" })).keys;
  } catch (err) {
    showAlert($("key-error"), `Couldn't load your keys. ${sentence(err)}`);
  }
  renderKeys();
}

// --- endpoints and deliveries ---------------------------------------------------------------

function renderEndpoints() {
  const list = $("endpoints");
  list.replaceChildren(
    ...backend.endpoints.map((endpoint) => {
      const buttons = el("span", { className: "backend-buttons" }, [
        el("button", {
          text: "Deliveries",
          className: "button small",
          attrs: { type: "button", "data-deliveries": endpoint.id },
        }),
        el("button", {
          text: "Delete",
          className: "button danger small",
          attrs: { type: "button", "data-delete": endpoint.id },
        }),
      ]);
      return el("li", { className: "backend-item" }, [
        el("strong", { text: endpoint.url, className: "endpoint-url" }),
        buttons,
        el("span", {
          className: "muted backend-detail",
          text: `${endpoint.events.join(", ")} · ${endpoint.pending} pending · ${endpoint.failed} failed`,
        }),
      ]);
    }),
  );
  $("endpoints-empty").hidden = backend.endpoints.length > 0;
}

function renderDeliveries() {
  const view = $("deliveries");
  const endpoint = backend.endpoints.find((e) => e.id === backend.shown);
  view.hidden = !endpoint;
  if (!endpoint) return;
  $("deliveries-title").textContent = `Deliveries to ${endpoint.url}`;
  const rows = backend.deliveries.map((d) =>
    el("tr", { className: `delivery delivery-${d.status}` }, [
      el("td", { text: d.type }),
      el("td", { text: d.status }),
      el("td", { text: String(d.attempts) }),
      el("td", { text: d.status === "pending" ? when(d.next_attempt_at) : "—" }),
      el("td", { text: d.last_status ? String(d.last_status) : d.last_error || "—" }),
    ]),
  );
  $("deliveries-rows").replaceChildren(...rows);
  $("deliveries-empty").hidden = rows.length > 0;
  $("deliveries-replay").disabled = !backend.deliveries.some((d) => d.status === "failed");
}

function addEndpoint(event) {
  return makeWithSecret(event, "endpoint", loadEndpoints, async (form) => {
    const body = { url: $("endpoint-url").value.trim(), events: checked(form, "endpoint-event") };
    return (await app.client.call("apiKeys", { path: "endpoints", body })).endpoint.secret;
  });
}

async function showDeliveries(id) {
  backend.shown = id;
  showAlert($("deliveries-error"), "");
  try {
    const answer = await app.client.call("apiKeys", {
      method: "GET",
      path: `endpoints/${id}/deliveries?limit=50`,
    });
    backend.deliveries = answer.deliveries;
  } catch (err) {
    backend.deliveries = [];
    showAlert($("deliveries-error"), sentence(err));
  }
  renderDeliveries();
}

async function replayFailed() {
  const endpoint = backend.endpoints.find((e) => e.id === backend.shown);
  if (!endpoint) return;
  showAlert($("deliveries-error"), "");
  try {
    // Every failed delivery the endpoint ever had: since it was added.
    const { replayed } = await app.client.call("apiKeys", {
      path: `endpoints/${endpoint.id}/replay`,
      body: { since: endpoint.created_at },
    });
    $("deliveries-note").textContent = `${replayed} sent again, in order.`;
    await loadEndpoints();
    await showDeliveries(endpoint.id);
  } catch (err) {
    showAlert($("deliveries-error"), sentence(err));
  }
}

async function deleteEndpoint(id) {
  showAlert($("endpoint-error"), "");
  try {
    await app.client.call("apiKeys", { method: "DELETE", path: `endpoints/${id}` });
    if (backend.shown === id) backend.shown = null;
    await loadEndpoints();
    renderDeliveries();
  } catch (err) {
    showAlert($("endpoint-error"), sentence(err));
  }
}

async function loadEndpoints() {
  try {
    backend.endpoints = (await app.client.call("apiKeys", { method: "GET", path: "endpoints" }))
      .endpoints;
  } catch (err) {
    showAlert($("endpoint-error"), `Couldn't load your endpoints. ${sentence(err)}`);
  }
  renderEndpoints();
}

// --- wiring ---------------------------------------------------------------------------------

/** The card shows only where the api-keys function is configured (`functions.apiKeys`). */
export async function loadBackend() {
  const configured = Boolean(app.client.config.functions.apiKeys);
  $("backend-card").hidden = !configured;
  if (configured) await Promise.all([loadKeys(), loadEndpoints()]);
}

export function resetBackend() {
  Object.assign(backend, { keys: [], endpoints: [], shown: null, deliveries: [] });
  for (const id of ["key-error", "endpoint-error", "deliveries-error"]) showAlert($(id), "");
  showOnce("key-secret", "", null);
  showOnce("endpoint-secret", "", null);
  $("deliveries-note").textContent = "";
  renderKeys();
  renderEndpoints();
  renderDeliveries();
}

export function wireBackend() {
  $("key-form").addEventListener("submit", addKey);
  $("endpoint-form").addEventListener("submit", addEndpoint);
  $("keys").addEventListener("click", (event) => {
    const id = event.target.closest("[data-key]")?.getAttribute("data-key");
    if (id) revokeKey(id);
  });
  $("endpoints").addEventListener("click", (event) => {
    const target = event.target.closest("button");
    if (!target) return;
    if (target.dataset.deliveries) showDeliveries(target.dataset.deliveries);
    if (target.dataset.delete) deleteEndpoint(target.dataset.delete);
  });
  $("deliveries-refresh").addEventListener("click", async () => {
    await loadEndpoints();
    if (backend.shown) await showDeliveries(backend.shown);
  });
  $("deliveries-replay").addEventListener("click", replayFailed);
}
