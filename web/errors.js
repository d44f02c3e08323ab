// The API's failures as the page knows them (ApiError, with the API's snake_case code) and
// the sentences a person reads for each code.

/** A failure a person can read: `code` is the API's snake_case code (or one of ours). */
export class ApiError extends Error {
  constructor(code, message, { status = 0, retryAfter = null, database = null } = {}) {
    super(message || code);
    this.code = code;
    this.status = status;
    this.retryAfter = retryAfter;
    this.database = database; // a table call the database refused: PostgREST's {code, message}
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
  unsupported_media: "WhatsApp doesn't take that kind of file. Attach another one.",
  forbidden: "That isn't yours to use. Reload the page and try again.",
  session_starting: (e) =>
    `Your WhatsApp is linked and still getting ready on the host, so nothing was sent. Try again in ${e.retryAfter || 3} s.`,
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
  unknown_template: "There's no template of that name any more. Reload the page and choose again.",
  template_variable_missing: (e) =>
    `Fill in every placeholder of the template. ${e.message || ""}`.trim(),
  group_not_found: "Your WhatsApp isn't in that group (any more).",
  message_not_found: "That message isn't there any more. Reload the page.",
  message_not_sent: "That message hasn't gone out yet, so it can't be changed.",
  message_deleted: "That message was deleted.",
  not_own_message: "Only your own messages can be changed.",
  not_editable: "Only a text message can be edited.",
  edit_window_passed: "A message can be edited only within 15 minutes of sending it.",
  delete_window_passed: "A message can be deleted for everyone only within 2 days of sending it.",
  invalid_emoji: "That isn't one emoji.",
  account_removed: "The WhatsApp number was unlinked before this message went out.",
  not_scheduled: "That message has already gone out (or is going out now), so it can't be cancelled.",
  scheduled_limit:
    "You have as many messages scheduled as allowed. Cancel one, or wait until some are sent.",
  network: "Couldn't reach the service. Check your connection and try again.",
  timeout: "The service took too long to answer. Try again in a moment.",
  invalid_credentials: "That email and password don't match an account.",
  email_not_confirmed: "Confirm your email address first, then sign in.",
  sign_in_rate_limited: "Too many sign-in attempts. Wait a minute and try again.",
};

/** The sentence to show for any error the page meets (an ApiError, or anything else). */
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
