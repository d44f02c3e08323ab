// Talking to the gateway's functions and to Supabase, and saying their errors in words.
// Supabase Auth (sign-in, token refresh, sign-out) and the table reads go through supabase-js
// (vendor/supabase.js, loaded before this module as window.supabase); the functions are
// plain fetch calls carrying the session's current access token.

import { ApiError, describe } from "./errors.js";

export { ApiError, describe }; // the page's modules take them from here

const AUTH_STORAGE_KEY = "wa-demo-auth";
const CALL_TIMEOUT_MS = 35_000; // a little over the functions' own 30 s
const READ_TIMEOUT_MS = 15_000;
// The local stack answers on the page's own origin and takes any apikey; supabase-js wants one.
const LOCAL_KEY = "local-stack";

export const MESSAGE_COLUMNS = [
  "id",
  "direction",
  "phone",
  "contact_name",
  "body",
  "status",
  "created_at",
  "message_at",
  "updated_at",
  "send_at",
  "template_name",
  "error_code",
  "message_type",
  "mime_type",
  "filename",
  "size",
  "sha256",
  "media_path",
  "media_state",
  "chat_id",
  "reply_to",
  "edited_at",
  "deleted_at",
  "location",
  "vcard",
  "group_id",
  "author",
];

function newIdempotencyKey() {
  if (globalThis.crypto && typeof crypto.randomUUID === "function") return crypto.randomUUID();
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}
export { newIdempotencyKey };

async function request(url, init, timeoutMs) {
  let response;
  try {
    response = await fetch(url, { ...init, signal: AbortSignal.timeout(timeoutMs) });
  } catch (err) {
    if (err && err.name === "TimeoutError") throw new ApiError("timeout", "");
    throw new ApiError("network", "");
  }
  let data = null;
  const text = await response.text();
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = null;
    }
  }
  return { response, data };
}

/** fetch for supabase-js: a timeout unless the caller brought its own signal. */
function fetchWithTimeout(input, init = {}) {
  return fetch(input, { ...init, signal: init.signal || AbortSignal.timeout(READ_TIMEOUT_MS) });
}

/**
 * The signed-in user's client. `config` is window.WA_CONFIG; `onAuthLost(sentence)` is called
 * when the sign-in can no longer be used (its refresh refused, or a function refusing it).
 * Call `ready()` once before reading `user`.
 */
export class Client {
  constructor(config, { onAuthLost = () => {} } = {}) {
    this.config = config;
    this.local = !config.supabaseUrl;
    const base = this.local ? window.location.origin : config.supabaseUrl.replace(/\/+$/, "");
    this.base = base; // Supabase's URL (Auth, PostgREST, Storage, Realtime)
    this.apiKey = config.supabaseKey || LOCAL_KEY;
    this.supabase = window.supabase.createClient(base, this.apiKey, {
      auth: {
        storage: window.sessionStorage, // the sign-in lasts as long as the tab
        storageKey: AUTH_STORAGE_KEY,
        persistSession: true,
        autoRefreshToken: true, // refreshed before it expires; Realtime gets the new token
        detectSessionInUrl: false,
      },
      global: { fetch: fetchWithTimeout },
    });
    this.onAuthLost = onAuthLost;
    this.session = null;
    this.signingOut = false;
    this.supabase.auth.onAuthStateChange((event, session) => {
      // Runs inside supabase-js's auth lock: no awaiting supabase.auth calls in here.
      const had = this.session;
      this.session = session || null;
      if (event === "SIGNED_OUT" && had && !this.signingOut) {
        // supabase-js ended the session itself: its refresh token was refused.
        setTimeout(() => this.onAuthLost(describe(new ApiError("invalid_token", ""))), 0);
      }
    });
  }

  /** Load a session kept from earlier in this tab (refreshed first if it is about to expire). */
  async ready() {
    const { data } = await this.supabase.auth.getSession();
    this.session = data.session || null;
  }

  get user() {
    const user = this.session && this.session.user;
    return user ? { id: user.id, email: user.email } : null;
  }

  /** Resolve a configured URL (absolute, or relative to the page). */
  url(value) {
    return new URL(value, window.location.href).toString();
  }

  // --- Auth: Supabase Auth through supabase-js (the local gateway answers the same way) ------

  async signIn(email, password) {
    const { data, error } = await this.supabase.auth.signInWithPassword({ email, password });
    if (error) throw authError(error);
    this.session = data.session;
    return this.user;
  }

  /** Sign out: supabase-js revokes the session's refresh tokens and forgets the session. */
  async signOut() {
    this.signingOut = true;
    try {
      const { error } = await this.supabase.auth.signOut();
      // Offline or refused: at least forget the session in this tab.
      if (error) await this.supabase.auth.signOut({ scope: "local" });
    } catch {
      // nothing more to do: the page shows the sign-in either way
    } finally {
      this.session = null;
      this.signingOut = false;
    }
  }

  /** The current access token; supabase-js refreshes the session first if it is due. */
  async accessToken() {
    const { data } = await this.supabase.auth.getSession();
    this.session = data.session || null;
    if (!this.session) throw new ApiError("missing_token", "");
    return this.session.access_token;
  }

  async authorized(send) {
    let result;
    try {
      result = await send(await this.accessToken());
      if (result.error && result.error.code === "token_expired") {
        const { data } = await this.supabase.auth.refreshSession();
        if (data.session) result = await send(data.session.access_token);
      }
    } catch (err) {
      if (err instanceof ApiError && err.authLost) await this.lose(err);
      throw err;
    }
    if (result.error) {
      if (result.error.authLost) await this.lose(result.error);
      throw result.error;
    }
    return result.value;
  }

  async lose(error) {
    await this.signOut();
    this.onAuthLost(describe(error));
  }

  // --- The functions -----------------------------------------------------------------------

  async call(name, { method = "POST", body, headers = {}, path = "" } = {}) {
    const base = this.url(this.config.functions[name]);
    const url = path ? `${base.replace(/\/?$/, "/")}${path}` : base;
    return this.authorized(async (token) => {
      const { response, data } = await request(
        url,
        {
          method,
          headers: {
            authorization: `Bearer ${token}`,
            ...(body === undefined ? {} : { "content-type": "application/json" }),
            ...headers,
          },
          body: body === undefined ? undefined : JSON.stringify(body),
        },
        method === "GET" ? READ_TIMEOUT_MS : CALL_TIMEOUT_MS,
      );
      if (response.ok && data) return { value: data };
      const err = data && data.error && typeof data.error === "object" ? data.error : {};
      const retryAfter = Number.parseInt(response.headers.get("retry-after") || "", 10);
      return {
        error: new ApiError(err.code || `http_${response.status}`, err.message || "", {
          status: response.status,
          retryAfter: Number.isFinite(retryAfter) ? retryAfter : null,
        }),
      };
    });
  }

  async status() {
    return (await this.call("status", { method: "GET" })).session;
  }

  async startSession(method, phone) {
    const body = method === "code" ? { method, phone } : { method };
    return (await this.call("startSession", { body })).session;
  }

  async disconnect() {
    return (await this.call("disconnect")).session;
  }

  /** `to`: {phone} or {group}. `extra`: `template` and `variables` (then `message` is
   * undefined, so not sent), `send_at`, `media`, `reply_to`. */
  async sendMessage(to, message, idempotencyKey, extra = {}) {
    const data = await this.call("sendMessage", {
      body: { ...to, message, ...extra },
      headers: { "idempotency-key": idempotencyKey },
    });
    return data.message;
  }

  /** POST <send-message URL>/<react|edit|delete|read> with `body`; the answer as it is. */
  async messageAction(action, body, idempotencyKey) {
    const headers = idempotencyKey ? { "idempotency-key": idempotencyKey } : {};
    return this.call("sendMessage", { path: action, body, headers });
  }

  /** Cancel a scheduled message: POST <send-message URL>/cancel {"id"}. */
  async cancelMessage(id) {
    return (await this.call("sendMessage", { path: "cancel", body: { id } })).message;
  }

  // --- Reads straight from the tables (PostgREST; the local gateway answers the same way) ---

  /**
   * Run a supabase-js table call as the user: `build(supabase)` returns the query (a read, or
   * a write of the tables users write). Resolves to its data; a refusal is an ApiError whose
   * `database` is PostgREST's {code, message} (the database's own code, such as 23514).
   */
  async table(build) {
    return this.authorized(async () => {
      // supabase-js sends the session's access token itself (refreshed when due).
      const { data, error, status } = await build(this.supabase);
      if (!error) return { value: data };
      // PostgREST's messages are for developers; say it in the page's words instead.
      let code = `http_${status}`;
      if (!status) {
        const why = error ? `${error.message} ${error.details}` : "";
        code = /timeout|abort/i.test(why) ? "timeout" : "network";
      } else if (status === 401) {
        code = error && error.code === "PGRST303" ? "token_expired" : "invalid_token";
      } else if (status >= 500) {
        code = "store_unavailable";
      }
      const database = error && error.code ? { code: error.code, message: error.message } : null;
      return { error: new ApiError(code, "", { status, database }) };
    });
  }

  // --- Live updates: Supabase Realtime's Postgres Changes through supabase-js ---------------

  /**
   * Follow changes to the user's rows of `tables` (each with a user_id column) on one channel;
   * Realtime applies the tables' RLS too. onChange({table, type, record, old});
   * onState("connecting"|"subscribed"|"reconnecting", why). Returns a stop function.
   */
  follow(tables, { onChange, onState }) {
    const userId = this.user.id;
    let channel = this.supabase.channel(`whatsapp-${userId}`);
    for (const table of tables) {
      channel = channel.on(
        "postgres_changes",
        { event: "*", schema: "public", table, filter: `user_id=eq.${userId}` },
        (change) =>
          onChange({
            table: change.table,
            type: change.eventType,
            record: change.new && Object.keys(change.new).length ? change.new : null,
            old: change.old && Object.keys(change.old).length ? change.old : null,
          }),
      );
    }
    let stopped = false;
    onState("connecting");
    channel.subscribe((status, err) => {
      if (stopped) return;
      if (status === "SUBSCRIBED") onState("subscribed");
      else if (status === "TIMED_OUT") onState("reconnecting", "Realtime didn't answer in time");
      else if (status === "CHANNEL_ERROR") {
        onState("reconnecting", (err && err.message) || "Realtime refused the subscription");
      } else if (status === "CLOSED") onState("reconnecting", "the channel closed");
    });
    return () => {
      stopped = true;
      this.supabase.removeChannel(channel);
    };
  }
}

function authError(error) {
  const code = error.code || "";
  if (code === "invalid_credentials" || code === "invalid_grant") {
    return new ApiError("invalid_credentials", "");
  }
  if (code === "email_not_confirmed") return new ApiError("email_not_confirmed", "");
  if (error.status === 429) return new ApiError("sign_in_rate_limited", "");
  if (!error.status || error.name === "AuthRetryableFetchError") {
    return new ApiError(error.status >= 500 ? "store_unavailable" : "network", "");
  }
  const sentence = error.message || "Sign-in failed. Try again.";
  return new ApiError(code || `http_${error.status}`, sentence);
}
