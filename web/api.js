// Talking to the gateway's functions and to Supabase (Auth sign-in, table reads), and saying
// their errors in words. No dependencies: fetch and sessionStorage only.

const AUTH_STORAGE_KEY = "wa-demo-auth";
const CALL_TIMEOUT_MS = 35_000; // a little over the functions' own 30 s
const READ_TIMEOUT_MS = 15_000;
const REFRESH_MARGIN_S = 60;

export const MESSAGE_COLUMNS = [
  "id",
  "direction",
  "phone",
  "contact_name",
  "body",
  "status",
  "created_at",
  "updated_at",
];

/** A failure a person can read: `code` is the API's snake_case code (or one of ours). */
export class ApiError extends Error {
  constructor(code, message, { status = 0, retryAfter = null } = {}) {
    super(message || code);
    this.code = code;
    this.status = status;
    this.retryAfter = retryAfter;
  }

  get authLost() {
    return ["missing_token", "invalid_token", "token_expired"].includes(this.code);
  }
}

// The API's error codes (openapi.yaml, shared/wa_gateway/errors.py) as sentences for the
// person using the page. Codes not listed fall back to the API's own message.
const SENTENCES = {
  invalid_phone:
    "That phone number doesn't look right. Use 8 to 15 digits with the country code first, like 5511999999999.",
  message_too_long: "That message is too long. Shorten it and send it again.",
  unknown_recipient: "That number isn't on WhatsApp. Check it and try again.",
  session_not_connected: "Your WhatsApp isn't connected. Connect it first, then send again.",
  session_busy: "Your WhatsApp is busy with another request. Try again in a moment.",
  idempotency_conflict:
    "This retry doesn't match the message it repeats, so it wasn't sent. Send it as a new message.",
  payload_too_large: "That's too much to send at once. Shorten the message.",
  rate_limited: (e) =>
    e.retryAfter
      ? `You're sending too fast. You can send again in ${e.retryAfter} s.`
      : "You're sending too fast. Wait a little and try again.",
  host_error: "The WhatsApp host answered with an error. Try again in a moment.",
  host_timeout: "The WhatsApp host didn't answer in time. Try again in a moment.",
  store_unavailable: "The service's database is unavailable right now. Try again shortly.",
  token_expired: "Your sign-in has expired. Sign in again.",
  invalid_token: "Your sign-in is no longer valid. Sign in again.",
  missing_token: "You're not signed in. Sign in first.",
  not_found: "The service couldn't find that. Reload the page and try again.",
  network: "Couldn't reach the service. Check your connection and try again.",
  timeout: "The service took too long to answer. Try again in a moment.",
  invalid_credentials: "That email and password don't match an account.",
  email_not_confirmed: "Confirm your email address first, then sign in.",
  sign_in_rate_limited: "Too many sign-in attempts. Wait a minute and try again.",
};

/** The sentence to show for any error thrown by this module (or anything else). */
export function describe(error) {
  const sentence = error && SENTENCES[error.code];
  if (typeof sentence === "function") return sentence(error);
  if (sentence) return sentence;
  if (error && error.code === "invalid_request" && error.message) {
    return `The service didn't accept that: ${error.message}`;
  }
  if (error instanceof ApiError && error.message && error.message !== error.code) {
    return error.message;
  }
  return "Something went wrong. Try again in a moment.";
}

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

/**
 * The signed-in user's client. `config` is window.WA_CONFIG; `onAuthLost(sentence)` is called
 * when the sign-in can no longer be used (expired and not refreshable, or refused).
 */
export class Client {
  constructor(config, { onAuthLost = () => {}, onToken = () => {} } = {}) {
    this.config = config;
    this.supabaseBase = (config.supabaseUrl || "").replace(/\/+$/, "");
    this.local = !this.supabaseBase;
    this.onAuthLost = onAuthLost;
    this.onToken = onToken;
    this.auth = null;
    try {
      this.auth = JSON.parse(sessionStorage.getItem(AUTH_STORAGE_KEY) || "null");
    } catch {
      this.auth = null;
    }
    if (this.auth && !this.auth.access_token) this.auth = null;
  }

  get user() {
    return this.auth ? this.auth.user : null;
  }

  get token() {
    return this.auth ? this.auth.access_token : null;
  }

  /** Resolve a configured URL (absolute, or relative to the page). */
  url(value) {
    return new URL(value, window.location.href).toString();
  }

  supabaseHeaders() {
    const headers = { "content-type": "application/json", accept: "application/json" };
    if (this.config.supabaseKey) headers.apikey = this.config.supabaseKey;
    return headers;
  }

  authUrl(grant) {
    return this.url(`${this.supabaseBase}/auth/v1/token?grant_type=${grant}`);
  }

  // --- Auth: Supabase Auth's password grant (the local gateway answers the same shape) ------

  async signIn(email, password) {
    const { response, data } = await request(
      this.authUrl("password"),
      {
        method: "POST",
        headers: this.supabaseHeaders(),
        body: JSON.stringify({ email, password }),
      },
      READ_TIMEOUT_MS,
    );
    if (!response.ok || !data || !data.access_token) throw authError(response, data);
    this.keep(data);
    return this.user;
  }

  keep(data) {
    const expiresAt =
      data.expires_at || Math.floor(Date.now() / 1000) + Number(data.expires_in || 3600);
    this.auth = {
      access_token: data.access_token,
      refresh_token: data.refresh_token || null,
      expires_at: expiresAt,
      user: { id: data.user && data.user.id, email: data.user && data.user.email },
    };
    sessionStorage.setItem(AUTH_STORAGE_KEY, JSON.stringify(this.auth));
    this.onToken(this.auth.access_token);
  }

  signOut() {
    this.auth = null;
    sessionStorage.removeItem(AUTH_STORAGE_KEY);
  }

  /** A usable access token: refreshed first if it is about to expire (Supabase only). */
  async freshToken() {
    if (!this.auth) throw new ApiError("missing_token", "");
    const left = this.auth.expires_at - Date.now() / 1000;
    if (left > REFRESH_MARGIN_S) return this.auth.access_token;
    if (await this.refresh()) return this.auth.access_token;
    if (left > 0) return this.auth.access_token;
    throw new ApiError("token_expired", "");
  }

  /** Refresh the session with Supabase Auth; the local dev sign-in has no refresh tokens. */
  async refresh() {
    if (this.local || !this.auth || !this.auth.refresh_token) return false;
    if (!this.refreshing) {
      this.refreshing = (async () => {
        try {
          const { response, data } = await request(
            this.authUrl("refresh_token"),
            {
              method: "POST",
              headers: this.supabaseHeaders(),
              body: JSON.stringify({ refresh_token: this.auth.refresh_token }),
            },
            READ_TIMEOUT_MS,
          );
          if (!response.ok || !data || !data.access_token) return false;
          this.keep(data);
          return true;
        } catch {
          return false;
        } finally {
          this.refreshing = null;
        }
      })();
    }
    return this.refreshing;
  }

  async authorized(send) {
    let result;
    try {
      result = await send(await this.freshToken());
      if (result.error && result.error.code === "token_expired" && (await this.refresh())) {
        result = await send(this.auth.access_token);
      }
    } catch (err) {
      if (err instanceof ApiError && err.authLost) this.lose(err);
      throw err;
    }
    if (result.error) {
      if (result.error.authLost) this.lose(result.error);
      throw result.error;
    }
    return result.value;
  }

  lose(error) {
    this.signOut();
    this.onAuthLost(describe(error));
  }

  // --- The functions -----------------------------------------------------------------------

  async call(name, { method = "POST", body, headers = {} } = {}) {
    return this.authorized(async (token) => {
      const { response, data } = await request(
        this.url(this.config.functions[name]),
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

  async sendMessage(phone, message, idempotencyKey) {
    const data = await this.call("sendMessage", {
      body: { phone, message },
      headers: { "idempotency-key": idempotencyKey },
    });
    return data.message;
  }

  // --- Reads straight from the tables (PostgREST; the local gateway answers the same shape) -

  async recentMessages(limit = 50) {
    const query = new URLSearchParams({
      select: MESSAGE_COLUMNS.join(","),
      order: "created_at.desc",
      limit: String(limit),
    });
    return this.authorized(async (token) => {
      const { response, data } = await request(
        this.url(`${this.supabaseBase}/rest/v1/whatsapp_messages?${query}`),
        { method: "GET", headers: { ...this.supabaseHeaders(), authorization: `Bearer ${token}` } },
        READ_TIMEOUT_MS,
      );
      if (response.ok && Array.isArray(data)) return { value: data };
      // PostgREST's messages are for developers; say it in the page's words instead.
      let code = `http_${response.status}`;
      if (response.status === 401) {
        code = data && data.code === "PGRST303" ? "token_expired" : "invalid_token";
      } else if (response.status >= 500) {
        code = "store_unavailable";
      }
      return { error: new ApiError(code, "", { status: response.status }) };
    });
  }
}

function authError(response, data) {
  const code = (data && (data.error_code || data.error)) || "";
  if (code === "invalid_credentials" || code === "invalid_grant") {
    return new ApiError("invalid_credentials", "");
  }
  if (code === "email_not_confirmed") return new ApiError("email_not_confirmed", "");
  if (response.status === 429) return new ApiError("sign_in_rate_limited", "");
  const text = (data && (data.msg || data.error_description || data.message)) || "";
  return new ApiError(code || `http_${response.status}`, text || "Sign-in failed. Try again.");
}
