// A message's file in the list: images and stickers inline (click to open), video and audio
// players (voice notes too), documents with their name, size and a download link, and, while
// the file isn't there, why, in words. Files are private: each is shown through a signed URL
// (supabase-js's createSignedUrl), kept per path until shortly before it expires. The element
// built for a message is kept too and moved into each new rendering of the list, so a
// re-render neither reloads an image nor stops a player.

import { BUCKET, formatSize } from "./attach.js";
import { app } from "./state.js";

const SIGNED_FOR_S = 3600;
const RENEW_BEFORE_MS = 5 * 60_000; // a URL this close to expiring is signed again
const KINDS = ["image", "sticker", "video", "audio", "ptt", "document"];
const WAITING = {
  pending: "The file is on its way from WhatsApp…",
  unavailable: "WhatsApp couldn't give this file (the sender's phone may no longer have it).",
  too_large: "This file is over 16 MB, too big to keep here.",
};
const KIND_NAMES = {
  image: "Photo",
  sticker: "Sticker",
  video: "Video",
  audio: "Audio",
  ptt: "Voice note",
  document: "Document",
};

const signed = new Map(); // `${path}|${download}` -> {url, until} | {pending: Promise}
const built = new Map(); // message id -> {key, element}

/** Forget the signed URLs and elements (on sign-out: they belong to the user). */
export function resetMedia() {
  signed.clear();
  built.clear();
}

/** The elements a message item shows for its file (none for a text). */
export function mediaParts(m) {
  const kind = KINDS.includes(m.message_type) ? m.message_type : m.media_state ? "document" : null;
  if (!kind) return [];
  const key = [kind, m.media_state, m.media_path, m.filename, m.size].join("|");
  const known = built.get(m.id);
  if (known && known.key === key) {
    renewLink(known.element);
    return [known.element];
  }
  const element = buildMedia(m, kind);
  built.set(m.id, { key, element });
  return [element];
}

function buildMedia(m, kind) {
  const box = document.createElement("div");
  box.className = `message-media media-${kind}`;
  box.dataset.kind = kind;
  box.dataset.state = m.media_state || "";
  if (m.media_state !== "stored" || !m.media_path) {
    const note = document.createElement("p");
    note.className = "media-note";
    const what = m.filename ? `${KIND_NAMES[kind]}: ${m.filename}` : KIND_NAMES[kind];
    const size = m.size ? ` (${formatSize(m.size)})` : "";
    note.textContent = `${what}${size}. ${WAITING[m.media_state] || WAITING.pending}`;
    box.append(note);
    return box;
  }
  if (kind === "image" || kind === "sticker") {
    const link = document.createElement("a");
    link.target = "_blank";
    link.rel = "noopener";
    const img = document.createElement("img");
    img.alt = m.filename || (kind === "sticker" ? "Sticker" : "Photo");
    img.decoding = "async";
    link.append(img);
    box.append(link);
    whenSigned(box, m.media_path, null, (url) => {
      link.href = url;
      img.src = url;
    });
  } else if (kind === "video" || kind === "audio" || kind === "ptt") {
    const player = document.createElement(kind === "video" ? "video" : "audio");
    player.controls = true;
    player.preload = "metadata";
    player.setAttribute("aria-label", m.filename || KIND_NAMES[kind]);
    if (kind === "ptt") box.append(label(KIND_NAMES.ptt));
    box.append(player);
    whenSigned(box, m.media_path, null, (url) => {
      player.src = url;
    });
  } else {
    const icon = document.createElement("span");
    icon.className = "media-icon";
    icon.setAttribute("aria-hidden", "true");
    const ext = /\.([A-Za-z0-9]{1,5})$/.exec(m.filename || "");
    icon.textContent = ext ? ext[1].toUpperCase() : "FILE";
    const name = document.createElement("span");
    name.className = "media-name";
    name.textContent = m.filename || "Document";
    const size = document.createElement("span");
    size.className = "media-size";
    size.textContent = formatSize(m.size);
    const link = document.createElement("a");
    link.className = "button small media-download";
    link.textContent = "Download";
    link.download = m.filename || "";
    link.setAttribute("aria-label", `Download ${m.filename || "the document"}`);
    link.dataset.path = m.media_path;
    link.dataset.download = m.filename || "file";
    box.append(icon, name, size, link);
    whenSigned(box, m.media_path, link.dataset.download, (url) => {
      link.href = url;
    });
  }
  return box;
}

function label(text) {
  const p = document.createElement("p");
  p.className = "media-label";
  p.textContent = text;
  return p;
}

/** Sign `path` (from the cache when still good), then `use(url)`; a failure is said in words. */
function whenSigned(box, path, download, use) {
  box.dataset.loading = "true";
  signedUrl(path, download).then(
    (url) => {
      delete box.dataset.loading;
      use(url);
    },
    () => {
      delete box.dataset.loading;
      box.replaceChildren(label("Couldn't load this file. It will be tried again."));
      box.dataset.state = "failed";
      for (const [id, entry] of built) if (entry.element === box) built.delete(id);
    },
  );
}

/** A document's link signed again when its URL is about to expire (players keep theirs). */
function renewLink(box) {
  const link = box.querySelector("a.media-download");
  if (!link || !link.href) return;
  const entry = signed.get(`${link.dataset.path}|${link.dataset.download}`);
  if (entry && entry.until && entry.until - Date.now() > RENEW_BEFORE_MS) return;
  signedUrl(link.dataset.path, link.dataset.download).then(
    (url) => {
      link.href = url;
    },
    () => {},
  );
}

/** A signed URL for `path` (with `download`: served as an attachment of that name). */
export function signedUrl(path, download = null) {
  const key = `${path}|${download || ""}`;
  const entry = signed.get(key);
  if (entry && entry.pending) return entry.pending;
  if (entry && entry.until - Date.now() > RENEW_BEFORE_MS) return Promise.resolve(entry.url);
  const pending = app.client.supabase.storage
    .from(BUCKET)
    .createSignedUrl(path, SIGNED_FOR_S, download ? { download } : undefined)
    .then(({ data, error }) => {
      if (error || !data || !data.signedUrl) throw error || new Error("no signed URL");
      signed.set(key, { url: data.signedUrl, until: Date.now() + SIGNED_FOR_S * 1000 });
      return data.signedUrl;
    })
    .catch((err) => {
      signed.delete(key);
      throw err;
    });
  signed.set(key, { pending });
  return pending;
}
