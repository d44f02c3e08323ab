// The inbox's reads, straight from the tables and views through supabase-js as the user (RLS
// gives them their own rows): conversations newest first, one conversation's messages page by
// page (keyset on WhatsApp's time and id), the reactions of the messages on screen, groups,
// and full-text search. Each is one PostgREST query Supabase serves as it is.

import { MESSAGE_COLUMNS } from "./api.js";
import { app } from "./state.js";

export const PAGE = 50;
const CONVERSATION_COLUMNS =
  "id,whatsapp_session_id,account,chat_id,phone,contact_lid,group_id,contact_name," +
  "last_message_id,last_body,last_at,last_direction,last_message_type,last_status,unread";

const rows = async (build) => {
  const data = await app.client.table(build);
  return Array.isArray(data) ? data : [];
};

/** The newest page of conversations. */
export function readConversations() {
  return rows((db) =>
    db
      .from("whatsapp_conversations")
      .select(CONVERSATION_COLUMNS)
      .order("last_at", { ascending: false })
      .order("last_message_id", { ascending: false })
      .limit(PAGE),
  );
}

/** A conversation's newest messages, or those before `before` ({message_at, id}). */
export function readMessages(open, before = null) {
  return rows((db) => {
    let query = db.from("whatsapp_messages").select(MESSAGE_COLUMNS.join(",")).eq("chat_id", open.chat_id);
    if (open.whatsapp_session_id) query = query.eq("whatsapp_session_id", open.whatsapp_session_id);
    if (before) {
      query = query
        .lte("message_at", before.message_at)
        .or(`message_at.lt.${before.message_at},id.lt.${before.id}`);
    }
    // WhatsApp's own time of each message: files sent together keep their order whatever
    // order their webhooks arrived in.
    return query.order("message_at", { ascending: false }).order("id", { ascending: false }).limit(PAGE);
  });
}

/** The reactions on these messages. */
export function readReactions(ids) {
  if (!ids.length) return Promise.resolve([]);
  return rows((db) =>
    db
      .from("whatsapp_reactions")
      .select("id,message_id,emoji,from_me,phone,contact_lid")
      .in("message_id", ids)
      .limit(1000),
  );
}

/** The account's groups: subjects and participants. */
export function readGroups() {
  return rows((db) => db.from("whatsapp_groups").select("group_id,subject,participants").limit(500));
}

/** Messages whose words match `words` (web search syntax: quotes, or, -), newest first. */
export function searchMessages(words) {
  return rows((db) =>
    db
      .from("whatsapp_messages")
      .select(MESSAGE_COLUMNS.join(","))
      .textSearch("search", words, { config: "simple", type: "websearch" })
      .order("message_at", { ascending: false })
      .limit(20),
  );
}
