// Message templates: the user's own rows of whatsapp_templates, read and written through
// supabase-js under RLS (the database checks names and bodies, and its refusals are said here
// in words), and the send form's choice of a template, with an input per placeholder.

import { ApiError, describe } from "./api.js";
import { $, showAlert, showFailure } from "./render.js";
import { app } from "./state.js";

const PLACEHOLDER = /\{\{([a-z][a-z0-9_]{0,31})\}\}/g;

const templates = { list: [], loaded: false, failed: null, busy: false };

/** The placeholder names of a template's body, each once, in order of appearance. */
export function placeholders(body) {
  return [...new Set([...String(body).matchAll(PLACEHOLDER)].map((m) => m[1]))];
}

/** The text a template gives with `variables`, in one pass as the database renders it. */
export function renderTemplate(body, variables) {
  return String(body).replace(PLACEHOLDER, (whole, name) => variables[name] ?? whole);
}

// The database's checks on whatsapp_templates (its constraints, by name), in words.
const REFUSALS = [
  [
    "whatsapp_templates_name_check",
    "A template name is 1 to 64 lowercase letters, digits, - or _ (no spaces).",
  ],
  ["whatsapp_templates_body_check", "Write the template's text: 1 to 4096 characters, not only spaces."],
  [
    "whatsapp_templates_placeholders",
    "Placeholders look like {{name}}: two braces, a lowercase letter, then letters, digits or _, no spaces. Fix any other {{ or }}.",
  ],
  ["whatsapp_templates_user_name_key", "You already have a template of that name. Pick another name."],
];

function refusal(err) {
  const db = err instanceof ApiError ? err.database : null;
  if (db) {
    for (const [constraint, sentence] of REFUSALS) {
      if (String(db.message).includes(constraint)) return sentence;
    }
    if (db.code === "42501") return "You can't change that template.";
  }
  return describe(err);
}

export function resetTemplates() {
  Object.assign(templates, { list: [], loaded: false, failed: null, busy: false });
  $("template-form").reset();
  showAlert($("template-error"), "");
  renderTemplates();
}

export async function loadTemplates() {
  try {
    const rows = await app.client.table((db) =>
      db.from("whatsapp_templates").select("id,name,body,updated_at").order("name").limit(200),
    );
    templates.list = Array.isArray(rows) ? rows : [];
    templates.loaded = true;
    templates.failed = null;
  } catch (err) {
    templates.failed = `Couldn't load your templates. ${describe(err)}`;
  }
  renderTemplates();
}

/** The template chosen in the send form, or null (a typed message). */
export function chosenTemplate() {
  const name = $("send-template").value;
  return templates.list.find((t) => t.name === name) || null;
}

/**
 * What the send form sends instead of `message` when a template is chosen:
 * {template, variables, preview}; throws an Error whose message is a sentence when a
 * placeholder is left empty.
 */
export function templateSend(template) {
  const variables = {};
  for (const input of $("send-variables").querySelectorAll("input[data-variable]")) {
    if (!input.value.trim()) {
      input.focus();
      throw new Error(`Fill in {{${input.dataset.variable}}} for the template.`);
    }
    variables[input.dataset.variable] = input.value;
  }
  return { template: template.name, variables, preview: renderTemplate(template.body, variables) };
}

/** Empty the placeholder inputs after a send. */
export function clearVariables() {
  for (const input of $("send-variables").querySelectorAll("input")) input.value = "";
}

export function renderTemplates() {
  const list = $("templates");
  list.replaceChildren(...templates.list.map(templateItem));
  $("templates-empty").hidden = !templates.loaded || templates.list.length > 0;
  showAlert($("templates-error"), templates.failed || "");
  $("template-save").disabled = templates.busy;

  // The send form's choice: keep the current one while it still exists.
  const select = $("send-template");
  const current = select.value;
  const none = new Option("None: type the message", "");
  select.replaceChildren(none, ...templates.list.map((t) => new Option(t.name, t.name)));
  select.value = templates.list.some((t) => t.name === current) ? current : "";
  $("send-template-group").hidden = templates.list.length === 0;
  renderChoice();
}

/** Show the message box, or the chosen template's text and an input per placeholder. */
function renderChoice() {
  const template = chosenTemplate();
  $("send-text").hidden = Boolean(template);
  document.querySelector('label[for="send-text"]').hidden = Boolean(template);
  const box = $("send-variables");
  if (!template) {
    box.replaceChildren();
    box.hidden = true;
    return;
  }
  if (box.dataset.template === `${template.name}:${template.updated_at}` && !box.hidden) return;
  box.dataset.template = `${template.name}:${template.updated_at}`;
  const preview = document.createElement("p");
  preview.className = "template-preview";
  preview.textContent = template.body;
  const inputs = placeholders(template.body).flatMap((name) => {
    const label = document.createElement("label");
    label.htmlFor = `send-var-${name}`;
    label.textContent = `{{${name}}}`;
    const input = document.createElement("input");
    input.id = `send-var-${name}`;
    input.dataset.variable = name;
    input.autocomplete = "off";
    return [label, input];
  });
  box.replaceChildren(preview, ...inputs);
  box.hidden = false;
}

function templateItem(t) {
  const li = document.createElement("li");
  li.className = "template";
  li.dataset.name = t.name;
  const name = document.createElement("strong");
  name.textContent = t.name;
  const body = document.createElement("p");
  body.className = "template-body";
  body.textContent = t.body;
  const remove = document.createElement("button");
  remove.type = "button";
  remove.className = "button quiet small";
  remove.dataset.deleteTemplate = t.id;
  remove.textContent = "Delete";
  remove.setAttribute("aria-label", `Delete template ${t.name}`);
  li.append(name, remove, body);
  return li;
}

async function addTemplate(event) {
  event.preventDefault();
  if (templates.busy) return;
  const name = $("template-name").value.trim();
  const body = $("template-body").value;
  if (!name || !body.trim()) {
    showAlert($("template-error"), "Give the template a name and a text.");
    return;
  }
  templates.busy = true;
  showAlert($("template-error"), "");
  renderTemplates();
  try {
    // Only name and body: the id, the owner (auth.uid()) and the times are the database's.
    const rows = await app.client.table((db) =>
      db.from("whatsapp_templates").insert({ name, body }).select("id,name,body,updated_at"),
    );
    templates.list = [...templates.list.filter((t) => t.name !== name), ...rows].sort((a, b) =>
      a.name.localeCompare(b.name),
    );
    $("template-form").reset();
  } catch (err) {
    showFailure($("template-error"), err, refusal);
  } finally {
    templates.busy = false;
    renderTemplates();
  }
}

async function deleteTemplate(button) {
  const id = button.dataset.deleteTemplate;
  button.disabled = true;
  showAlert($("template-error"), "");
  try {
    await app.client.table((db) => db.from("whatsapp_templates").delete().eq("id", id));
    templates.list = templates.list.filter((t) => t.id !== id);
    renderTemplates();
  } catch (err) {
    button.disabled = false;
    showFailure($("template-error"), err, refusal);
  }
}

/** `onChoice()`: the send form's template choice changed (the form re-renders its button). */
export function wireTemplates({ onChoice }) {
  $("template-form").addEventListener("submit", addTemplate);
  $("templates").addEventListener("click", (event) => {
    const button = event.target.closest("[data-delete-template]");
    if (button) deleteTemplate(button);
  });
  $("send-template").addEventListener("change", () => {
    renderChoice();
    onChoice();
  });
}
