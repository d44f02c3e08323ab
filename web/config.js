/*
 * The demo page's settings.
 *
 * As shipped, they point at the local stack (`make dev`): the gateway serves this page, the
 * four functions, the dev sign-in and the dev reads from one origin, and there is no Realtime
 * server, so the page polls the status function.
 *
 * To host the page for a real project, replace this file with your project's values
 * (see README.md next to it):
 *
 *   window.WA_CONFIG = {
 *     supabaseUrl: "https://<project ref>.supabase.co",
 *     supabaseKey: "sb_publishable_...",          // the publishable (or legacy anon) key
 *     functions: {
 *       startSession: "https://<id>.lambda-url.<region>.on.aws/",
 *       status: "https://<id>.lambda-url.<region>.on.aws/",
 *       sendMessage: "https://<id>.lambda-url.<region>.on.aws/",
 *       disconnect: "https://<id>.lambda-url.<region>.on.aws/",
 *       apiKeys: "https://<id>.lambda-url.<region>.on.aws/",
 *     },
 *   };
 */
window.WA_CONFIG = {
  // "" = the local stack on this page's origin: dev sign-in and dev reads, no Realtime.
  supabaseUrl: "",
  supabaseKey: "",
  functions: {
    startSession: "/start-session/",
    status: "/status/",
    sendMessage: "/send-message/",
    disconnect: "/disconnect/",
    apiKeys: "/api-keys/",
  },
};
