// A small client for Supabase Realtime's Postgres Changes, spoken directly over its websocket
// (the Phoenix channels protocol, JSON serializer "1.0.0"), so the page loads nothing from a
// CDN. One channel, joined with the user's access token: Realtime applies the tables' RLS
// policies to every change before sending it, so the user only hears about their own rows.
//
//   client -> {"topic":"realtime:<name>","event":"phx_join","ref":"1","join_ref":"1",
//              "payload":{"config":{"postgres_changes":[{"event":"*","schema":"public",
//              "table":"whatsapp_sessions","filter":"user_id=eq.<uid>"}, ...]},
//              "access_token":"<jwt>"}}
//   server -> {"event":"phx_reply","ref":"1","payload":{"status":"ok","response":{...}}}
//   server -> {"event":"postgres_changes","payload":{"ids":[..],"data":{"type":"UPDATE",
//              "table":"whatsapp_sessions","record":{...},"old_record":{...}}}}
//   client -> {"topic":"phoenix","event":"heartbeat","payload":{},"ref":"n"} every 25 s

const HEARTBEAT_MS = 25_000;
const JOIN_TIMEOUT_MS = 10_000;
const RECONNECT_DELAYS_MS = [1_000, 2_000, 5_000, 10_000, 30_000];

export class RealtimeFeed {
  /**
   * supabaseUrl, apikey: the project and its publishable key; token: the user's access token;
   * userId: whose rows to follow; tables: public tables with a user_id column;
   * onChange({table, type, record, old}); onState("connecting"|"subscribed"|"reconnecting", why).
   */
  constructor({ supabaseUrl, apikey, token, userId, tables, onChange, onState }) {
    const url = new URL(`${supabaseUrl.replace(/\/+$/, "")}/realtime/v1/websocket`);
    url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
    url.searchParams.set("apikey", apikey || "");
    url.searchParams.set("vsn", "1.0.0");
    this.url = url.toString();
    this.token = token;
    this.topic = `realtime:whatsapp-${userId}`;
    this.changes = tables.map((table) => ({
      event: "*",
      schema: "public",
      table,
      filter: `user_id=eq.${userId}`,
    }));
    this.onChange = onChange;
    this.onState = onState;
    this.ref = 0;
    this.failures = 0;
    this.stopped = true;
    this.ws = null;
  }

  start() {
    this.stopped = false;
    this.open();
  }

  stop() {
    this.stopped = true;
    this.clearTimers();
    if (this.ws) this.ws.close(1000);
    this.ws = null;
  }

  /** A refreshed access token: Realtime re-checks the channel's access with it. */
  setToken(token) {
    this.token = token;
    if (this.joined) this.push(this.topic, "access_token", { access_token: token });
  }

  open() {
    this.onState("connecting");
    this.joined = false;
    const ws = new WebSocket(this.url);
    this.ws = ws;
    ws.addEventListener("open", () => this.join());
    ws.addEventListener("message", (event) => this.receive(event.data));
    ws.addEventListener("close", () => {
      if (this.ws !== ws) return;
      this.clearTimers();
      this.ws = null;
      this.joined = false;
      if (this.stopped) return;
      const delay = RECONNECT_DELAYS_MS[Math.min(this.failures, RECONNECT_DELAYS_MS.length - 1)];
      this.failures += 1;
      this.onState("reconnecting", `retrying in ${Math.round(delay / 1000)} s`);
      this.reconnectTimer = setTimeout(() => this.open(), delay);
    });
  }

  join() {
    this.joinRef = this.push(
      this.topic,
      "phx_join",
      {
        config: {
          broadcast: { ack: false, self: false },
          presence: { key: "" },
          postgres_changes: this.changes,
        },
        access_token: this.token,
      },
      true,
    );
    this.joinTimer = setTimeout(() => this.drop(), JOIN_TIMEOUT_MS);
    this.pendingHeartbeat = null;
    this.heartbeatTimer = setInterval(() => {
      if (this.pendingHeartbeat) return this.drop(); // the last one was never answered
      this.pendingHeartbeat = this.push("phoenix", "heartbeat", {});
    }, HEARTBEAT_MS);
  }

  push(topic, event, payload, isJoin = false) {
    this.ref += 1;
    const ref = String(this.ref);
    const message = { topic, event, payload, ref };
    message.join_ref = isJoin ? ref : (this.joinRef ?? null);
    if (this.ws && this.ws.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(message));
    return ref;
  }

  receive(raw) {
    let message;
    try {
      message = JSON.parse(raw);
    } catch {
      return;
    }
    const { topic, event, payload, ref } = message;
    if (event === "phx_reply" && ref === this.pendingHeartbeat) {
      this.pendingHeartbeat = null;
      return;
    }
    if (topic !== this.topic) return;
    if (event === "phx_reply" && ref === this.joinRef) {
      clearTimeout(this.joinTimer);
      if (payload && payload.status === "ok") {
        this.joined = true;
        this.failures = 0;
        this.onState("subscribed");
      } else {
        const why = payload && payload.response && payload.response.reason;
        this.onState("reconnecting", why || "Realtime refused the subscription");
        this.drop();
      }
    } else if (event === "postgres_changes") {
      const data = payload && payload.data;
      if (data && data.table) {
        this.onChange({
          table: data.table,
          type: data.type,
          record: data.record || null,
          old: data.old_record || null,
        });
      }
    } else if (event === "system" && payload && payload.status === "error") {
      this.onState("reconnecting", payload.message || "Realtime reported an error");
      this.drop();
    } else if (event === "phx_error" || event === "phx_close") {
      this.drop();
    }
  }

  /** Close the socket; the close handler reconnects after a delay (unless stopped). */
  drop() {
    if (this.ws) this.ws.close(4000);
  }

  clearTimers() {
    clearTimeout(this.joinTimer);
    clearTimeout(this.reconnectTimer);
    clearInterval(this.heartbeatTimer);
  }
}
