// Attaching a file to the send form: the picker and drag-and-drop, the checks made before
// anything is uploaded (the gateway's own types and limits), the chip with the file's name,
// size and upload progress, and what goes in send-message's `media`: the file inline as
// base64 when small, else uploaded first to Storage and sent by its path. The message box is
// then the caption. No imports from render.js: app.js calls in here.

import { ApiError } from "./api.js";
import { app } from "./state.js";

const $ = (id) => document.getElementById(id);

export const BUCKET = "whatsapp-media";
const MiB = 1024 * 1024;
// Up to this much goes inside the request (base64 makes it a third larger; the function's body
// limit is 6 MB); bigger files are uploaded to Storage first.
export const MAX_INLINE_BYTES = 3 * MiB;
export const MAX_MEDIA_BYTES = 16 * MiB; // the bucket's limit
export const MAX_CAPTION_CHARS = 1024;
const VOICE_NOTE_TYPE = "audio/ogg; codecs=opus";

// The types the gateway sends, as in shared/wa_gateway/media_types.py (ACCEPTED): the kind of
// WhatsApp message each makes and its file extension.
export const ACCEPTED = {
  "image/jpeg": { kind: "image", ext: "jpg" },
  "image/png": { kind: "image", ext: "png" },
  "image/webp": { kind: "sticker", ext: "webp" },
  "video/mp4": { kind: "video", ext: "mp4" },
  "video/3gpp": { kind: "video", ext: "3gp" },
  "audio/ogg": { kind: "audio", ext: "ogg" },
  "audio/mpeg": { kind: "audio", ext: "mp3" },
  "audio/mp4": { kind: "audio", ext: "m4a" },
  "audio/aac": { kind: "audio", ext: "aac" },
  "audio/amr": { kind: "audio", ext: "amr" },
  "application/pdf": { kind: "document", ext: "pdf" },
  "text/plain": { kind: "document", ext: "txt" },
  "application/msword": { kind: "document", ext: "doc" },
  "application/vnd.ms-excel": { kind: "document", ext: "xls" },
  "application/vnd.ms-powerpoint": { kind: "document", ext: "ppt" },
  "application/vnd.openxmlformats-officedocument.wordprocessingml.document": {
    kind: "document",
    ext: "docx",
  },
  "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": {
    kind: "document",
    ext: "xlsx",
  },
  "application/vnd.openxmlformats-officedocument.presentationml.presentation": {
    kind: "document",
    ext: "pptx",
  },
};

// Browsers name some of these types differently (Chromium says audio/x-m4a), or not at all
// (AMR): then the file's extension decides. An .opus file is a voice note.
const BY_EXTENSION = {
  ...Object.fromEntries(Object.entries(ACCEPTED).map(([type, { ext }]) => [ext, type])),
  jpeg: "image/jpeg",
  mpeg4: "video/mp4",
  opus: VOICE_NOTE_TYPE,
};

function baseType(type) {
  return String(type || "").split(";", 1)[0].trim().toLowerCase();
}

/** The type to send `file` as, or null when the gateway would refuse it. */
export function mediaType(file) {
  const ext = (/\.([A-Za-z0-9]+)$/.exec(file.name || "") || [])[1];
  if (ext && ext.toLowerCase() === "opus") return VOICE_NOTE_TYPE;
  if (ACCEPTED[baseType(file.type)]) return baseType(file.type);
  return (ext && BY_EXTENSION[ext.toLowerCase()]) || null;
}

export function formatSize(bytes) {
  if (!Number.isFinite(bytes)) return "";
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < MiB) return `${(bytes / 1024).toFixed(bytes < 10 * 1024 ? 1 : 0)} KB`;
  return `${(bytes / MiB).toFixed(1)} MB`;
}

// --- The attached file ----------------------------------------------------------------------

let attached = null; // {file, type, key, path}: path once uploaded, reused by a retry
let onChange = () => {};

/** The attached file, or null. `key` tells one attachment from another (for retries). */
export function attachment() {
  return attached;
}

export function clearAttachment() {
  attached = null;
  $("send-file").value = "";
  renderAttachment();
}

/** Attach `file` if the gateway would take it; else say why and keep what was attached. */
function attach(file) {
  const type = mediaType(file);
  if (!type) {
    showFileError(
      `WhatsApp doesn't take that kind of file (${file.name}). Send a photo (JPEG, PNG), a sticker (WebP), a video (MP4, 3GP), audio (Ogg, MP3, M4A, AAC, AMR) or a document (PDF, text, Word, Excel, PowerPoint).`,
    );
    return;
  }
  if (file.size > MAX_MEDIA_BYTES) {
    showFileError(
      `That file is ${formatSize(file.size)}; WhatsApp files sent from here can be up to 16 MB.`,
    );
    return;
  }
  if (file.size === 0) {
    showFileError(`That file (${file.name}) is empty.`);
    return;
  }
  const key = `${file.name}|${file.size}|${file.lastModified}|${type}`;
  attached = { file, type, key, path: null };
  showFileError("");
  renderAttachment();
}

function showFileError(text) {
  const alert = $("send-error");
  alert.textContent = text;
  alert.hidden = !text;
}

export function renderAttachment() {
  const chip = $("send-attachment");
  chip.hidden = !attached;
  $("send-text-label").textContent = attached ? "Caption (optional)" : "Message";
  $("send-text").placeholder = $("send-text-label").textContent;
  if (attached) {
    $("send-file-name").textContent = attached.file.name;
    $("send-file-size").textContent = formatSize(attached.file.size);
  }
  showProgress(null);
  onChange();
}

/** The upload's progress in the chip: a fraction from 0 to 1, or null to hide it. */
function showProgress(fraction) {
  const bar = $("send-file-progress");
  const label = $("send-file-uploading");
  bar.hidden = label.hidden = fraction === null;
  if (fraction === null) return;
  bar.value = Math.round(fraction * 100);
  label.textContent = `Uploading ${Math.round(fraction * 100)} %`;
}

// --- What goes in send-message's `media` ------------------------------------------------------

/**
 * send-message's `media` for the attached file: inline when small, else uploaded to
 * `<user id>/outgoing/<random>-<name>` first (once: a retry sends the same upload).
 */
export async function mediaField() {
  const { file, type } = attached;
  const filename = file.name;
  if (file.size <= MAX_INLINE_BYTES) {
    return { data: await base64(file), mime_type: type, filename };
  }
  if (!attached.path) {
    const path = `${app.client.user.id}/outgoing/${randomPart()}-${safeName(filename)}`;
    await upload(path, file, type);
    attached.path = path;
  }
  return { path: attached.path, mime_type: type, filename };
}

function base64(file) {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(String(reader.result).replace(/^data:[^,]*,/, ""));
    reader.onerror = () => reject(new ApiError("file_unreadable", ""));
    reader.readAsDataURL(file);
  });
}

function randomPart() {
  return Array.from(crypto.getRandomValues(new Uint8Array(8)), (b) =>
    b.toString(16).padStart(2, "0"),
  ).join("");
}

/** A name Storage takes as part of an object key: letters, digits, '.', '-', '_'. */
export function safeName(name) {
  const cleaned = String(name)
    .normalize("NFKD")
    .replace(/[^A-Za-z0-9._-]+/g, "_")
    .replace(/^[._]+/, "")
    .slice(-100);
  return cleaned || "file";
}

/**
 * Upload to Storage as the user: supabase-js's upload has no progress, so this is the same
 * request (POST /storage/v1/object/<bucket>/<path>, the user's token, x-upsert: false) made
 * with XMLHttpRequest, whose upload.onprogress moves the chip's bar.
 */
async function upload(path, file, type) {
  const token = await app.client.accessToken();
  const url = `${app.client.base}/storage/v1/object/${BUCKET}/${path}`;
  showProgress(0);
  try {
    await new Promise((resolve, reject) => {
      const xhr = new XMLHttpRequest();
      xhr.open("POST", url);
      xhr.setRequestHeader("authorization", `Bearer ${token}`);
      xhr.setRequestHeader("apikey", app.client.apiKey);
      // Storage compares the whole type with the bucket's list: no parameters.
      xhr.setRequestHeader("content-type", baseType(type));
      xhr.setRequestHeader("cache-control", "max-age=3600");
      xhr.setRequestHeader("x-upsert", "false");
      xhr.timeout = 300_000;
      xhr.upload.onprogress = (event) => {
        if (event.lengthComputable) showProgress(event.loaded / event.total);
      };
      xhr.onload = () =>
        xhr.status >= 200 && xhr.status < 300 ? resolve() : reject(uploadError(xhr));
      xhr.onerror = () => reject(new ApiError("network", ""));
      xhr.ontimeout = () => reject(new ApiError("timeout", ""));
      xhr.send(file);
    });
    showProgress(1);
  } catch (err) {
    showProgress(null);
    throw err;
  }
}

/** Storage's refusal ({statusCode, error, message}, usually in an HTTP 400) as an ApiError. */
function uploadError(xhr) {
  let body = {};
  try {
    body = JSON.parse(xhr.responseText || "{}");
  } catch {
    body = {};
  }
  const status = Number.parseInt(body.statusCode, 10) || xhr.status;
  const code =
    {
      401: "token_expired",
      403: "forbidden",
      413: "payload_too_large",
      415: "unsupported_media",
    }[status] || (status >= 500 ? "store_unavailable" : "upload_failed");
  return new ApiError(code, "", { status });
}

/** A refusal about the attached file in words, or null for the others (api.js says those). */
export function mediaSentence(err) {
  if (!(err instanceof ApiError) || !attached) return null;
  const sentences = {
    unsupported_media:
      "WhatsApp doesn't take this file: its type isn't one it accepts, or the file isn't what its name says. Attach another file.",
    payload_too_large: "That file is too big to send. Files can be up to 16 MB.",
    forbidden: "That upload isn't in your own folder, so it can't be sent. Attach the file again.",
    not_found: "The uploaded file couldn't be found any more. Attach it again.",
    file_unreadable: "The browser couldn't read that file. Attach it again.",
    upload_failed: "The file couldn't be uploaded. Try again.",
  };
  if (err.code === "not_found" || err.code === "forbidden") attached.path = null;
  if (err.code === "message_too_long") {
    return `A caption can be up to ${MAX_CAPTION_CHARS} characters.`;
  }
  return sentences[err.code] || null;
}

// --- Events ---------------------------------------------------------------------------------

/** The picker, the chip's Remove and drag-and-drop onto the send form; `changed()` after each. */
export function wireAttach({ changed }) {
  onChange = changed;
  const input = $("send-file");
  input.accept = [...Object.keys(ACCEPTED), ...Object.keys(BY_EXTENSION).map((e) => `.${e}`)].join(
    ",",
  );
  input.addEventListener("change", () => {
    if (input.files && input.files[0]) attach(input.files[0]);
    input.value = ""; // choosing the same file again still counts
  });
  $("send-file-remove").addEventListener("click", () => {
    clearAttachment();
    $("send-file-button").focus();
  });
  const form = $("send-form");
  const carriesFiles = (event) =>
    event.dataTransfer && [...event.dataTransfer.types].includes("Files");
  const usable = () => !$("send-fieldset").disabled;
  form.addEventListener("dragover", (event) => {
    if (!carriesFiles(event) || !usable()) return;
    event.preventDefault();
    event.dataTransfer.dropEffect = "copy";
    form.classList.add("dropping");
  });
  form.addEventListener("dragleave", (event) => {
    if (!form.contains(event.relatedTarget)) form.classList.remove("dropping");
  });
  // A file dropped beside the form would otherwise replace the page with the file.
  for (const type of ["dragover", "drop"]) {
    window.addEventListener(type, (event) => {
      if (carriesFiles(event) && !form.contains(event.target)) event.preventDefault();
    });
  }
  form.addEventListener("drop", (event) => {
    form.classList.remove("dropping");
    if (!carriesFiles(event) || !usable()) return;
    event.preventDefault();
    const file = event.dataTransfer.files[0];
    if (file) attach(file);
  });
}
