-- Conversations: an inbox per contact and group, replies, reactions, edits, deletions, search.
--
-- * whatsapp_messages gains what WhatsApp's message kinds carry (a reply's quoted message, a
--   location, a contact card, a group and its author, an edit, a deletion), the host's own time
--   to sort by (message_at), the chat it belongs to (chat_id) and a full-text search column;
-- * whatsapp_reactions: one row per reaction someone (or the account) left on a message;
-- * whatsapp_groups: the groups an account is in, with their subjects and participants;
-- * whatsapp_conversations: a view, one row per account and chat, newest first;
-- * whatsapp_message_changes: what the host said about a message (an edit, a deletion, a
--   reaction), kept per message so that one arriving before its message is applied when the
--   message comes, and one older than what is already applied changes nothing.
--
-- Writes go through SQL functions only the service role may execute, as everywhere else; users
-- read their own rows, column by column.

-- Messages ------------------------------------------------------------------------------------

-- Domains, as the message's other values (the schema migration says why).
create domain public.gateway_wpp_id as text check (char_length(value) between 1 and 256);
create domain public.gateway_place as jsonb check (
  jsonb_typeof(value) = 'object'
  and jsonb_typeof(value -> 'lat') = 'number'
  and jsonb_typeof(value -> 'lng') = 'number'
  and (value -> 'name' is null or jsonb_typeof(value -> 'name') in ('string', 'null'))
);
create domain public.gateway_vcard as text check (char_length(value) <= 65536);
create domain public.gateway_group_id as text
  check (value ~ '^[0-9]{5,24}(-[0-9]{1,20})?@g\.us$');
create domain public.gateway_author as text check (value ~ '^[0-9]{5,20}(@lid)?$');

alter table public.whatsapp_messages
  add column reply_to uuid references public.whatsapp_messages (id) on delete set null,
  add column reply_to_wpp_id public.gateway_wpp_id,
  add column edited_at timestamptz,
  add column deleted_at timestamptz,
  add column location public.gateway_place,
  add column vcard public.gateway_vcard,
  add column group_id public.gateway_group_id,
  add column author public.gateway_author,
  add column host_at timestamptz,
  -- The host's time of the message (WhatsApp's own, the order every phone shows), else when it
  -- is due (scheduled), else when it was written here.
  add column message_at timestamptz generated always as (
    coalesce(host_at, send_at, created_at)
  ) stored,
  -- The chat as WhatsApp names it: the group, else the contact's number, else their LID.
  add column chat_id text generated always as (
    coalesce(group_id, phone || '@c.us', contact_lid || '@lid')
  ) stored,
  -- Words of the text, the contact card and the contact's name, in no language (no stemming):
  -- search with supabase-js .textSearch('search', words, {config: 'simple'}).
  add column search tsvector generated always as (
    to_tsvector('simple'::regconfig,
      coalesce(body, '') || ' ' || coalesce(contact_name, '') || ' ' || coalesce(vcard, ''))
  ) stored;

comment on column public.whatsapp_messages.reply_to is
  'The message this one quotes (a reply), when it is stored here.';
comment on column public.whatsapp_messages.reply_to_wpp_id is
  'WhatsApp''s id of the quoted message, also when that message is not stored here.';
comment on column public.whatsapp_messages.edited_at is
  'When the text was last edited (the edit''s own time on WhatsApp).';
comment on column public.whatsapp_messages.deleted_at is
  'When the message was deleted for everyone; its text, location and card are then gone.';
comment on column public.whatsapp_messages.location is
  'A location message: {"lat", "lng", "name"} (name: the place''s name and address, or null).';
comment on column public.whatsapp_messages.vcard is
  'A contact card message: the vCard text (several cards one after the other).';
comment on column public.whatsapp_messages.group_id is
  'The group a group message belongs to (<digits>[-<digits>]@g.us).';
comment on column public.whatsapp_messages.author is
  'Who wrote an incoming group message: their number, or their LID as <digits>@lid.';
comment on column public.whatsapp_messages.host_at is
  'WhatsApp''s time of a message the host reported (its t).';
comment on column public.whatsapp_messages.message_at is
  'The order of a chat: WhatsApp''s time of the message, else when it is due, else when it '
  'was written here. Pages order by (message_at, id).';
comment on column public.whatsapp_messages.chat_id is
  'The chat the message belongs to, as WhatsApp names it: <group>@g.us, <number>@c.us or '
  '<lid>@lid.';

-- A group message names a group, an outbound one maybe nothing else.
alter table public.whatsapp_messages drop constraint whatsapp_messages_names_a_contact;
alter table public.whatsapp_messages add constraint whatsapp_messages_names_a_chat
  check (phone is not null or contact_lid is not null or group_id is not null);

-- One chat's messages, newest first, page by page (keyset on message_at, id).
create index whatsapp_messages_chat_idx
  on public.whatsapp_messages (whatsapp_session_id, chat_id, message_at, id);
-- The foreign key of replies.
create index whatsapp_messages_reply_to_idx on public.whatsapp_messages (reply_to);
-- Replies whose quoted message has not arrived yet, linked when it does.
create index whatsapp_messages_waiting_quote_idx
  on public.whatsapp_messages (whatsapp_session_id, reply_to_wpp_id)
  where reply_to is null and reply_to_wpp_id is not null;
create index whatsapp_messages_search_idx on public.whatsapp_messages using gin (search);

grant select (
  reply_to,         -- the quoted message of a reply
  reply_to_wpp_id,  -- WhatsApp's id of it, also when it is not stored here
  edited_at,        -- shown as "edited"
  deleted_at,       -- shown as "this message was deleted"
  location,         -- a location message's place
  vcard,            -- a contact card
  group_id,         -- the group of a group message
  author,           -- who wrote an incoming group message
  message_at,       -- the order of a chat
  chat_id,          -- the chat a message belongs to
  search            -- full-text search (.textSearch needs to read the column it filters)
) on public.whatsapp_messages to authenticated;


-- Groups --------------------------------------------------------------------------------------

-- The groups of an account, as the host last described them: kept by the webhook (a
-- participant added, removed, promoted or demoted), by reconcile (subjects from list-chats,
-- participants from group-info) and by sends to a group (which ask the host when the list is
-- unknown or old). participants is null while the host has not listed them.
create table public.whatsapp_groups (
  id uuid primary key default gen_random_uuid(),
  user_id uuid not null references auth.users (id) on delete cascade,
  whatsapp_session_id uuid not null references public.whatsapp_sessions (id) on delete cascade,
  account text not null,
  group_id text not null check (group_id ~ '^[0-9]{5,24}(-[0-9]{1,20})?@g\.us$'),
  subject text check (char_length(subject) <= 512),
  participants jsonb check (jsonb_typeof(participants) = 'array'),
  participants_at timestamptz,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  constraint whatsapp_groups_session_group_key unique (whatsapp_session_id, group_id)
);

comment on table public.whatsapp_groups is
  'The groups of an account: subject and participants ([{"id": "<digits>@c.us" or '
  '"<digits>@lid", "admin": true|false}], null while unknown), as the host last said.';
comment on column public.whatsapp_groups.participants_at is
  'When the whole participant list was last read from the host (changes since are applied '
  'one by one from the webhook).';

create index whatsapp_groups_user_id_idx on public.whatsapp_groups (user_id);

-- Chats: what the conversations view shows, kept by a trigger on whatsapp_messages ------------

-- One row per account and chat, kept by gateway_track_chat whatever writes the messages, so
-- a page of conversations is one index range however many messages there are (a view over
-- the messages themselves reads every message of the user on every page).
create table public.whatsapp_chats (
  id uuid primary key default gen_random_uuid(),
  user_id uuid not null references auth.users (id) on delete cascade,
  whatsapp_session_id uuid not null references public.whatsapp_sessions (id) on delete cascade,
  account text not null,
  chat_id text not null,
  phone text,
  contact_lid text,
  group_id text,
  contact_name text,
  last_message_id uuid not null,
  last_body text not null,
  last_at timestamptz not null,
  last_direction text not null,
  last_message_type text not null,
  last_status text not null,
  unread integer not null default 0 check (unread >= 0),
  updated_at timestamptz not null default now(),
  constraint whatsapp_chats_session_chat_key unique (whatsapp_session_id, chat_id)
);

comment on table public.whatsapp_chats is
  'Per account and chat: its last message and how many incoming messages are unread. Kept '
  'by the trigger gateway_track_chat; read through the view whatsapp_conversations.';

-- A user's conversations, newest first, page by page (keyset on last_at, last_message_id).
create index whatsapp_chats_page_idx
  on public.whatsapp_chats (user_id, last_at, last_message_id);

create view public.whatsapp_conversations with (security_invoker = true) as
select
  c.id,
  c.user_id,
  c.whatsapp_session_id,
  c.account,
  c.chat_id,
  c.phone,
  c.contact_lid,
  c.group_id,
  coalesce(g.subject, c.contact_name) as contact_name,
  c.last_message_id,
  c.last_body,
  c.last_at,
  c.last_direction,
  c.last_message_type,
  c.last_status,
  c.unread
from public.whatsapp_chats c
left join public.whatsapp_groups g
  on g.whatsapp_session_id = c.whatsapp_session_id and g.group_id = c.group_id;

comment on view public.whatsapp_conversations is
  'One row per account and chat (a contact or a group), newest first by (last_at, '
  'last_message_id): the last message, its time and direction, and the unread incoming '
  'messages. contact_name is a group''s subject, else the contact''s name. Runs as its reader.';

-- Reactions -----------------------------------------------------------------------------------

create table public.whatsapp_reactions (
  id uuid primary key default gen_random_uuid(),
  user_id uuid not null references auth.users (id) on delete cascade,
  message_id uuid not null references public.whatsapp_messages (id) on delete cascade,
  -- Who reacted: 'me' (the account), else the contact's id (<digits>@c.us or <digits>@lid).
  reactor text not null check (reactor = 'me' or reactor ~ '^[0-9]{5,20}@(c\.us|lid)$'),
  emoji text not null check (emoji <> '' and octet_length(emoji) <= 64),
  from_me boolean not null,
  phone text check (phone ~ '^[0-9]{5,20}$'),
  contact_lid text check (contact_lid ~ '^[0-9]{5,20}$'),
  reacted_at timestamptz not null,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  constraint whatsapp_reactions_message_reactor_key unique (message_id, reactor)
);

comment on table public.whatsapp_reactions is
  'A reaction on a message, one per person (the account: from_me), the latest they left; a '
  'reaction taken back is deleted.';

create index whatsapp_reactions_user_id_idx on public.whatsapp_reactions (user_id);

-- Changes to messages, kept per message ------------------------------------------------------

-- The newest edit, deletion and reaction (per person) the host reported for each message, by
-- WhatsApp's id of the message: a change that arrives before its message (the host's events
-- overtake each other) waits here and is applied when the message is stored, whichever path
-- stores it; and one older than the kept one changes nothing. Service only.
create table public.whatsapp_message_changes (
  whatsapp_session_id uuid not null
    references public.whatsapp_sessions (id) on delete cascade,
  target text not null check (char_length(target) between 1 and 256),
  kind text not null check (kind in ('edit', 'revoke', 'reaction')),
  reactor text not null default '',
  body text,
  emoji text,
  phone text,
  contact_lid text,
  at timestamptz,           -- the change's own time on WhatsApp; null when the host gave none
  applied_at timestamptz,   -- null: its message is not stored yet
  received_at timestamptz not null default now(),
  primary key (whatsapp_session_id, target, kind, reactor)
);

comment on table public.whatsapp_message_changes is
  'The newest edit, deletion and reaction per person the host reported for each message (by '
  'WhatsApp''s id), applied when the message is stored (service only).';

-- Privileges ----------------------------------------------------------------------------------

revoke all on table public.whatsapp_groups, public.whatsapp_chats, public.whatsapp_reactions,
  public.whatsapp_message_changes, public.whatsapp_conversations
  from anon, authenticated;

-- whatsapp_groups: every column but the bookkeeping of when the list was read.
grant select (
  id, user_id, whatsapp_session_id, account, group_id, subject, participants, created_at,
  updated_at
) on public.whatsapp_groups to authenticated;

-- whatsapp_chats: read through the view (which runs as its reader); every column.
grant select (
  id, user_id, whatsapp_session_id, account, chat_id, phone, contact_lid, group_id,
  contact_name, last_message_id, last_body, last_at, last_direction, last_message_type,
  last_status, unread, updated_at
) on public.whatsapp_chats to authenticated;

-- whatsapp_reactions: all but reactor (who reacted is from_me, phone and contact_lid).
grant select (
  id, user_id, message_id, emoji, from_me, phone, contact_lid, reacted_at, created_at,
  updated_at
) on public.whatsapp_reactions to authenticated;

grant select on table public.whatsapp_conversations to authenticated;

grant all on table public.whatsapp_groups, public.whatsapp_chats, public.whatsapp_reactions,
  public.whatsapp_message_changes, public.whatsapp_conversations
  to service_role;

alter table public.whatsapp_groups enable row level security;
alter table public.whatsapp_chats enable row level security;
alter table public.whatsapp_reactions enable row level security;
alter table public.whatsapp_message_changes enable row level security;

create policy "users read their own groups" on public.whatsapp_groups
  for select to authenticated using ((select auth.uid()) = user_id);

create policy "users read their own chats" on public.whatsapp_chats
  for select to authenticated using ((select auth.uid()) = user_id);

create policy "users read their own reactions" on public.whatsapp_reactions
  for select to authenticated using ((select auth.uid()) = user_id);

-- Realtime: the inbox follows its chats, reactions and groups (RLS applies per subscriber).
alter publication supabase_realtime add table public.whatsapp_chats, public.whatsapp_reactions,
  public.whatsapp_groups;

-- Keeping the chats -----------------------------------------------------------------------------

-- The chat's last message read again from its messages (the last one left, was deleted or
-- moved to another chat); a chat with no message left goes.
create function public.gateway_refresh_chat_last(p_session_id uuid, p_chat_id text)
returns void
language plpgsql
set search_path = ''
as $$
declare
  l public.whatsapp_messages;
begin
  select * into l from public.whatsapp_messages m
  where m.whatsapp_session_id = p_session_id and m.chat_id = p_chat_id
    and m.status not in ('scheduled', 'cancelled')
  order by m.message_at desc, m.id desc
  limit 1;
  if not found then
    delete from public.whatsapp_chats
    where whatsapp_session_id = p_session_id and chat_id = p_chat_id;
    return;
  end if;
  update public.whatsapp_chats set
    last_message_id = l.id,
    last_body = l.body,
    last_at = l.message_at,
    last_direction = l.direction,
    last_message_type = public.gateway_shown_type(l.message_type, l.deleted_at),
    last_status = l.status,
    updated_at = now()
  where whatsapp_session_id = p_session_id and chat_id = p_chat_id;
end
$$;

comment on function public.gateway_refresh_chat_last is
  'Reads a chat''s last message again from its messages; removes a chat left with none.';


-- A message's type as a chat shows it: "revoked" once deleted for everyone, as WhatsApp has it.
create function public.gateway_shown_type(p_type text, p_deleted_at timestamptz) returns text
language plpgsql
immutable
set search_path = ''
as $$
begin
  return case when p_deleted_at is not null then 'revoked' else p_type end;
end
$$;

comment on function public.gateway_shown_type is
  'A message''s type as its chat shows it: revoked once deleted for everyone.';


-- Every change of a message moves its chat: the message leaves the chat it was in (an update
-- that changes its chat, or a delete) and enters the one it is in now, with its unread count
-- (an incoming message not marked read and not deleted counts) and, when it is the newest, as
-- the chat's last message. Scheduled and cancelled messages and those of a purged session are
-- in no chat. This runs on every message written, so it does as little as it can: one update
-- of the chat when it exists.
create function public.gateway_track_chat() returns trigger
language plpgsql
set search_path = ''
as $$
declare
  v_was boolean := false;
  v_is boolean := false;
  v_same boolean := false;
  v_unread integer := 0;
  v_old_unread integer := 0;
  v_last_id uuid;
  v_type text;
begin
  if tg_op <> 'INSERT' then
    v_was := old.whatsapp_session_id is not null and old.status not in ('scheduled', 'cancelled');
    v_old_unread := case when old.direction = 'inbound' and old.read_at is null
                          and old.deleted_at is null then 1 else 0 end;
  end if;
  if tg_op <> 'DELETE' then
    v_is := new.whatsapp_session_id is not null and new.status not in ('scheduled', 'cancelled');
    v_unread := case when new.direction = 'inbound' and new.read_at is null
                      and new.deleted_at is null then 1 else 0 end;
  end if;
  if v_was and v_is then
    v_same := old.whatsapp_session_id = new.whatsapp_session_id and old.chat_id = new.chat_id;
  end if;

  if v_was and not v_same then
    update public.whatsapp_chats set unread = unread - v_old_unread, updated_at = now()
    where whatsapp_session_id = old.whatsapp_session_id and chat_id = old.chat_id
    returning last_message_id into v_last_id;
    if v_last_id = old.id then
      perform public.gateway_refresh_chat_last(old.whatsapp_session_id, old.chat_id);
    end if;
  end if;

  if not v_is then
    return null;
  end if;
  if v_same then
    v_unread := v_unread - v_old_unread;
  end if;
  v_type := public.gateway_shown_type(new.message_type, new.deleted_at);
  loop
    update public.whatsapp_chats k set
      unread = k.unread + v_unread,
      phone = coalesce(new.phone, k.phone),
      contact_lid = coalesce(new.contact_lid, k.contact_lid),
      -- A contact's name: the one their messages carry, else the one the user gave.
      contact_name = case
        when new.group_id is null and new.contact_name is not null
             and (new.direction = 'inbound' or k.contact_name is null)
          then new.contact_name
        else k.contact_name end,
      last_message_id = case when (new.message_at, new.id) >= (k.last_at, k.last_message_id)
        or k.last_message_id = new.id then new.id else k.last_message_id end,
      last_body = case when (new.message_at, new.id) >= (k.last_at, k.last_message_id)
        or k.last_message_id = new.id then new.body else k.last_body end,
      last_at = case when (new.message_at, new.id) >= (k.last_at, k.last_message_id)
        or k.last_message_id = new.id then new.message_at else k.last_at end,
      last_direction = case when (new.message_at, new.id) >= (k.last_at, k.last_message_id)
        or k.last_message_id = new.id then new.direction else k.last_direction end,
      last_message_type = case when (new.message_at, new.id) >= (k.last_at, k.last_message_id)
        or k.last_message_id = new.id then v_type else k.last_message_type end,
      last_status = case when (new.message_at, new.id) >= (k.last_at, k.last_message_id)
        or k.last_message_id = new.id then new.status else k.last_status end,
      updated_at = now()
    where k.whatsapp_session_id = new.whatsapp_session_id and k.chat_id = new.chat_id
      -- A change of a message the chat does not show (an ack or an edit of an older one)
      -- leaves the chat as it is: no new row version, no Realtime update for nothing.
      and (not v_same or v_unread <> 0
           or (new.message_at, new.id) >= (k.last_at, k.last_message_id)
           or k.last_message_id = new.id
           or (new.phone, new.contact_lid, new.contact_name)
              is distinct from (old.phone, old.contact_lid, old.contact_name))
    returning k.last_message_id into v_last_id;
    exit when found;
    if v_same and exists (select 1 from public.whatsapp_chats k
                          where k.whatsapp_session_id = new.whatsapp_session_id
                            and k.chat_id = new.chat_id) then
      return null;
    end if;
    -- The chat's first message makes it (a message written at the same time by another
    -- transaction may make it first: then it is updated as above).
    insert into public.whatsapp_chats (
      user_id, whatsapp_session_id, account, chat_id, phone, contact_lid, group_id, contact_name,
      last_message_id, last_body, last_at, last_direction, last_message_type, last_status,
      unread
    ) values (
      new.user_id, new.whatsapp_session_id,
      (select s.account from public.whatsapp_sessions s where s.id = new.whatsapp_session_id),
      new.chat_id, new.phone, new.contact_lid, new.group_id,
      case when new.group_id is null then new.contact_name end,
      new.id, new.body, new.message_at, new.direction, v_type, new.status, greatest(v_unread, 0)
    )
    on conflict (whatsapp_session_id, chat_id) do nothing;
    exit when found;
  end loop;
  -- The last message moved back in time (its host time came late): another may be newer.
  if v_same and v_last_id = new.id and new.message_at < old.message_at then
    perform public.gateway_refresh_chat_last(new.whatsapp_session_id, new.chat_id);
  end if;
  return null;
end
$$;

comment on function public.gateway_track_chat is
  'Trigger: keeps whatsapp_chats (last message, unread count) as messages are written, moved '
  'between chats, read, edited, deleted or removed.';

create trigger whatsapp_messages_track_chat_insert
  after insert on public.whatsapp_messages
  for each row execute function public.gateway_track_chat();

create trigger whatsapp_messages_track_chat_update
  after update on public.whatsapp_messages
  for each row
  when ((old.whatsapp_session_id, old.chat_id, old.status, old.body, old.read_at,
         old.deleted_at, old.message_at, old.contact_name, old.message_type, old.direction)
        is distinct from
        (new.whatsapp_session_id, new.chat_id, new.status, new.body, new.read_at,
         new.deleted_at, new.message_at, new.contact_name, new.message_type, new.direction))
  execute function public.gateway_track_chat();

create trigger whatsapp_messages_track_chat_delete
  after delete on public.whatsapp_messages
  for each row execute function public.gateway_track_chat();

-- Edits, deletions and reactions ----------------------------------------------------------------

-- (gateway_message_change, the record of an edit, a deletion or a reaction: in the message
-- functions' migration, as reconcile's findings carry it.)

-- The kept changes of a message not applied yet, applied now that it is stored: an edit (unless
-- it is older than the text's last edit, or the message is deleted), a deletion for everyone
-- (its text, place and card go), a reaction (the person's newest; '' takes theirs back).
create function public.gateway_apply_changes(
  p_session_id uuid,
  p_target text,
  p_now timestamptz
) returns integer
language plpgsql
set search_path = ''
as $$
declare
  m public.whatsapp_messages;
  k public.whatsapp_message_changes;
  v_applied integer := 0;
begin
  select * into m from public.whatsapp_messages
  where wpp_message_id = p_target and whatsapp_session_id = p_session_id
  for update;
  if not found then
    return 0;
  end if;
  for k in
    select * from public.whatsapp_message_changes
    where whatsapp_session_id = p_session_id and target = p_target and applied_at is null
    order by kind, at nulls first  -- edits, reactions, then a deletion (which ends the rest)
    for update
  loop
    if k.kind = 'edit' then
      update public.whatsapp_messages set
        body = k.body, edited_at = coalesce(k.at, p_now), updated_at = p_now
      where id = m.id and deleted_at is null
        and (edited_at is null or edited_at < coalesce(k.at, p_now));
    elsif k.kind = 'revoke' then
      update public.whatsapp_messages set
        body = '', location = null, vcard = null, deleted_at = coalesce(k.at, p_now),
        updated_at = p_now
      where id = m.id and deleted_at is null;
    elsif k.emoji = '' then
      delete from public.whatsapp_reactions where message_id = m.id and reactor = k.reactor;
    else
      insert into public.whatsapp_reactions as r (
        user_id, message_id, reactor, emoji, from_me, phone, contact_lid, reacted_at,
        created_at, updated_at
      ) values (
        m.user_id, m.id, k.reactor, k.emoji, k.reactor = 'me', k.phone, k.contact_lid,
        coalesce(k.at, p_now), p_now, p_now
      )
      on conflict (message_id, reactor) do update set
        emoji = excluded.emoji, phone = coalesce(excluded.phone, r.phone),
        contact_lid = coalesce(excluded.contact_lid, r.contact_lid),
        reacted_at = excluded.reacted_at, updated_at = excluded.updated_at;
    end if;
    update public.whatsapp_message_changes set applied_at = p_now
    where whatsapp_session_id = k.whatsapp_session_id and target = k.target and kind = k.kind
      and reactor = k.reactor;
    v_applied := v_applied + 1;
  end loop;
  return v_applied;
end
$$;

comment on function public.gateway_apply_changes is
  'Applies the kept changes of a message (by WhatsApp''s id) that wait for it: edits, its '
  'deletion, reactions; returns how many.';


create function public.gateway_apply_change(
  p_change jsonb,
  p_now timestamptz default now()
) returns jsonb
language plpgsql
set search_path = ''
as $$
declare
  c constant public.gateway_message_change :=
    jsonb_populate_record(null::public.gateway_message_change, p_change);
  v_at constant timestamptz := to_timestamp(c.at_ms / 1000.0);
  v_reactor constant text := case when c.kind = 'reaction' then c.reactor else '' end;
  s public.whatsapp_sessions;
  k public.whatsapp_message_changes;
begin
  if c.kind not in ('edit', 'revoke', 'reaction') then
    raise exception 'unknown message change %', c.kind using errcode = '22023';
  end if;
  -- The session's lock, as an incoming message takes it: a change and its message are
  -- decided one after the other.
  select * into s from public.whatsapp_sessions where session_id = c.session_name for update;
  if not found then
    return null;
  end if;

  select * into k from public.whatsapp_message_changes
  where whatsapp_session_id = s.id and target = c.target and kind = c.kind
    and reactor = v_reactor
  for update;
  -- A deletion is final; an edit or a reaction no newer than the one kept changes nothing.
  if found and (c.kind = 'revoke' or (k.at is not null and (v_at is null or v_at <= k.at))) then
    return jsonb_build_object('changed', false);
  end if;

  insert into public.whatsapp_message_changes as k (
    whatsapp_session_id, target, kind, reactor, body, emoji, phone, contact_lid, at,
    applied_at, received_at
  ) values (
    s.id, c.target, c.kind, v_reactor, c.body, c.emoji, c.phone, c.contact_lid, v_at, null,
    p_now
  )
  on conflict (whatsapp_session_id, target, kind, reactor) do update set
    body = excluded.body, emoji = excluded.emoji, phone = excluded.phone,
    contact_lid = excluded.contact_lid, at = excluded.at, applied_at = null,
    received_at = excluded.received_at;

  return jsonb_build_object('changed', true,
    'applied', public.gateway_apply_changes(s.id, c.target, p_now) > 0);
end
$$;

comment on function public.gateway_apply_change is
  'Keeps an edit, a deletion or a reaction of a message (by WhatsApp''s id) unless an equal '
  'or newer one is kept, and applies it at once if the message is stored (else when it comes).';


-- A message that gets its WhatsApp id (stored from the host, or sent): the changes that came
-- before it are applied, and replies that came before it are linked to it.
create function public.gateway_message_arrived() returns trigger
language plpgsql
set search_path = ''
as $$
begin
  if exists (select 1 from public.whatsapp_message_changes k
             where k.whatsapp_session_id = new.whatsapp_session_id
               and k.target = new.wpp_message_id and k.applied_at is null) then
    perform public.gateway_apply_changes(new.whatsapp_session_id, new.wpp_message_id,
      new.updated_at);
  end if;
  update public.whatsapp_messages set reply_to = new.id
  where whatsapp_session_id = new.whatsapp_session_id and reply_to_wpp_id = new.wpp_message_id
    and reply_to is null;
  return null;
end
$$;

comment on function public.gateway_message_arrived is
  'Trigger: applies the changes that waited for a message and links the replies that quote '
  'it, once it has its WhatsApp id.';

create trigger whatsapp_messages_arrived_insert
  after insert on public.whatsapp_messages
  for each row
  when (new.wpp_message_id is not null and new.whatsapp_session_id is not null)
  execute function public.gateway_message_arrived();

create trigger whatsapp_messages_arrived_update
  after update of wpp_message_id on public.whatsapp_messages
  for each row
  when (new.wpp_message_id is not null and new.whatsapp_session_id is not null
        and old.wpp_message_id is distinct from new.wpp_message_id)
  execute function public.gateway_message_arrived();

-- Groups: kept from the host -------------------------------------------------------------------

-- (gateway_group_update and gateway_group_participant: in the message functions' migration,
-- as reconcile's findings carry them.)

create function public.gateway_record_group(
  p_group jsonb,
  p_now timestamptz default now()
) returns jsonb
language plpgsql
set search_path = ''
as $$
declare
  u constant public.gateway_group_update :=
    jsonb_populate_record(null::public.gateway_group_update, p_group);
  s public.whatsapp_sessions;
  g public.whatsapp_groups;
  v_list jsonb;
begin
  if u.action is not null and u.action not in ('add', 'remove', 'promote', 'demote') then
    raise exception 'unknown participant action %', u.action using errcode = '22023';
  end if;
  select * into s from public.whatsapp_sessions where session_id = u.session_name;
  if not found then
    return null;
  end if;

  -- Written only when it says something new: reconcile repeats every subject every pass.
  insert into public.whatsapp_groups as k (
    user_id, whatsapp_session_id, account, group_id, subject, participants, participants_at,
    created_at, updated_at
  ) values (
    s.user_id, s.id, s.account, u.group_id, u.subject,
    case when u.participants is not null then to_jsonb(u.participants) end,
    case when u.participants is not null then p_now end, p_now, p_now
  )
  on conflict (whatsapp_session_id, group_id) do update set
    subject = coalesce(excluded.subject, k.subject),
    participants = coalesce(excluded.participants, k.participants),
    participants_at = coalesce(excluded.participants_at, k.participants_at),
    updated_at = excluded.updated_at
  where (excluded.subject is not null and excluded.subject is distinct from k.subject)
     or excluded.participants is not null;
  select * into strict g from public.whatsapp_groups
  where whatsapp_session_id = s.id and group_id = u.group_id;

  -- One change of the participants, applied to a known list.
  if u.action is not null and g.participants is not null then
    select coalesce(jsonb_agg(p order by p ->> 'id'), '[]'::jsonb) into v_list from (
      select case when u.action in ('promote', 'demote') and p ->> 'id' = any(u.who)
               then jsonb_set(p, '{admin}', to_jsonb(u.action = 'promote')) else p end as p
      from jsonb_array_elements(g.participants) p
      where not (u.action = 'remove' and p ->> 'id' = any(u.who))
      union all
      select jsonb_build_object('id', w, 'admin', false)
      from unnest(u.who) w
      where u.action = 'add'
        and not exists (select 1 from jsonb_array_elements(g.participants) e
                        where e ->> 'id' = w)
    ) t;
    update public.whatsapp_groups set participants = v_list, updated_at = p_now
    where id = g.id
    returning * into g;
  end if;

  return jsonb_build_object('group', to_jsonb(g), 'phone_number', s.phone_number);
end
$$;

comment on function public.gateway_record_group is
  'Keeps what the host said of a group of a session: its subject, its whole participant list, '
  'or one change of it (add, remove, promote, demote) applied to a known list.';


create function public.gateway_group_of(p_session_name text, p_group_id text)
returns jsonb
language plpgsql
stable
set search_path = ''
as $$
begin
  return (
    select jsonb_build_object('group', to_jsonb(g), 'phone_number', s.phone_number)
    from public.whatsapp_sessions s
    left join public.whatsapp_groups g
      on g.whatsapp_session_id = s.id and g.group_id = p_group_id
    where s.session_id = p_session_name
  );
end
$$;

comment on function public.gateway_group_of is
  'A session''s group as last kept (null: unknown), with the account''s own number.';

-- Replies, reactions, edits, deletions and reads from send-message ------------------------------

-- A reply quotes a message of its own chat that WhatsApp has (send-message with reply_to).
create function public.gateway_check_reply(
  p_send public.gateway_outbound_request,
  p_session_id uuid
) returns jsonb
language plpgsql
stable
set search_path = ''
as $$
declare
  q public.whatsapp_messages;
begin
  select * into q from public.whatsapp_messages
  where id = p_send.reply_to and user_id = p_send.user_id;
  if not found then
    return jsonb_build_object('outcome', 'message_not_found');
  end if;
  if q.whatsapp_session_id is distinct from p_session_id
      or (p_send.group_id is not null and q.group_id is distinct from p_send.group_id)
      or (p_send.group_id is null and (q.group_id is not null
          or public.gateway_contact_key(p_session_id, q.phone, q.contact_lid)
             is distinct from public.gateway_contact_key(p_session_id, p_send.phone,
                                                        p_send.contact_lid))) then
    return jsonb_build_object('outcome', 'reply_other_chat');
  end if;
  if q.wpp_message_id is null then
    return jsonb_build_object('outcome', 'message_not_sent');
  end if;
  if q.deleted_at is not null then
    return jsonb_build_object('outcome', 'message_deleted');
  end if;
  return jsonb_build_object('outcome', 'ok', 'wpp_message_id', q.wpp_message_id);
end
$$;

comment on function public.gateway_check_reply is
  'Whether a send may quote this message: the caller''s, of the same account and chat, on '
  'WhatsApp and not deleted; ok with its WhatsApp id, or why not.';


-- What send-message's react, edit, delete and read ask (read through its type).
create type public.gateway_message_action as (
  user_id uuid,
  kind text,              -- react, edit, delete or read
  message_id uuid,        -- react, edit, delete: the caller's message
  session_name text,      -- read: the account's session
  chat_id text,           -- read: <digits>@c.us, <digits>@lid or <group>@g.us
  emoji text,             -- react: the emoji, '' to take the reaction back
  body text,              -- edit: the new text
  idempotency_key text,
  request_hash text,
  window_s integer        -- edit, delete: WhatsApp's limit since the message went out
);

-- Keys of react, edit, delete and read calls that were done, for a day: a retry with the key
-- answers without asking the host again; another request with it is a conflict.
create table public.whatsapp_action_keys (
  user_id uuid not null references auth.users (id) on delete cascade,
  idempotency_key text not null check (char_length(idempotency_key) between 1 and 255),
  request_hash text not null,
  created_at timestamptz not null default now(),
  primary key (user_id, idempotency_key)
);

comment on table public.whatsapp_action_keys is
  'Idempotency keys of send-message''s react, edit, delete and read, kept a day (service only).';

revoke all on table public.whatsapp_action_keys from anon, authenticated;
grant all on table public.whatsapp_action_keys to service_role;
alter table public.whatsapp_action_keys enable row level security;


-- A row as JSON, or null for none (a record variable that found nothing has only nulls).
create function public.gateway_row_json(p_row anyelement) returns jsonb
language plpgsql
immutable
set search_path = ''
as $$
begin
  return case when p_row is null then null else to_jsonb(p_row) end;
end
$$;

comment on function public.gateway_row_json is 'A row as JSON; null when it is null (not found).';


-- The chat a read names: by its id, else the chat of the same contact (a Brazilian number with
-- or without its ninth digit, a LID and the number the host mapped it to).
create function public.gateway_chat_named(p_session_id uuid, p_chat_id text)
returns public.whatsapp_chats
language plpgsql
stable
set search_path = ''
as $$
declare
  c public.whatsapp_chats;
  v_user text := split_part(p_chat_id, '@', 1);
  v_server text := split_part(p_chat_id, '@', 2);
begin
  select * into c from public.whatsapp_chats
  where whatsapp_session_id = p_session_id and chat_id = p_chat_id;
  if found or v_server = 'g.us' then
    return c;
  end if;
  select * into c from public.whatsapp_chats k
  where k.whatsapp_session_id = p_session_id and k.group_id is null
    and public.gateway_contact_key(p_session_id, k.phone, k.contact_lid)
        = public.gateway_contact_key(p_session_id,
            case when v_server = 'c.us' then v_user end,
            case when v_server = 'lid' then v_user end)
  order by k.last_at desc
  limit 1;
  return c;
end
$$;

comment on function public.gateway_chat_named is
  'A session''s chat by its id, or the chat of the same contact under another id.';


create function public.gateway_begin_action(
  p_action jsonb,
  p_burst double precision,
  p_rate_per_s double precision,
  p_now timestamptz default now()
) returns jsonb
language plpgsql
set search_path = ''
as $$
declare
  a constant public.gateway_message_action :=
    jsonb_populate_record(null::public.gateway_message_action, p_action);
  s public.whatsapp_sessions;
  m public.whatsapp_messages;
  c public.whatsapp_chats;
  v_wait integer;
  v_own text;
  v_hash text;
begin
  if a.kind not in ('react', 'edit', 'delete', 'read') then
    raise exception 'unknown message action %', a.kind using errcode = '22023';
  end if;

  -- The session's row lock first, as a send takes it: one call of a session at a time.
  if a.kind = 'read' then
    select * into s from public.whatsapp_sessions
    where session_id = a.session_name and user_id = a.user_id
    for update;
    if not found then
      return jsonb_build_object('outcome', 'not_connected');
    end if;
  else
    select * into m from public.whatsapp_messages
    where id = a.message_id and user_id = a.user_id;
    if not found or m.whatsapp_session_id is null then
      return jsonb_build_object('outcome', 'message_not_found');
    end if;
    select * into strict s from public.whatsapp_sessions where id = m.whatsapp_session_id
    for update;
    select * into strict m from public.whatsapp_messages where id = m.id for update;
  end if;

  if a.idempotency_key is not null then
    perform public.gateway_lock_idempotency_key(a.user_id, a.idempotency_key);
    select request_hash into v_hash from public.whatsapp_action_keys
    where user_id = a.user_id and idempotency_key = a.idempotency_key;
    if found and v_hash is distinct from a.request_hash then
      return jsonb_build_object('outcome', 'conflict');
    end if;
    if found then
      if a.kind = 'read' then
        c := public.gateway_chat_named(s.id, a.chat_id);
      end if;
      return jsonb_build_object('outcome', 'replay', 'message', public.gateway_row_json(m),
        'chat', public.gateway_row_json(c));
    end if;
  end if;

  -- A login still syncing is a retry, as for a send: the host is getting it ready.
  if s.status = 'starting' and s.status_reason = 'syncing' then
    return jsonb_build_object('outcome', 'starting');
  end if;
  if s.status <> 'connected' then
    return jsonb_build_object('outcome', 'not_connected');
  end if;

  if a.kind = 'read' then
    c := public.gateway_chat_named(s.id, a.chat_id);
    if c.id is null or c.unread = 0 then
      return jsonb_build_object('outcome', 'unchanged', 'chat', public.gateway_row_json(c));
    end if;
  else
    -- WhatsApp acts only on a message it has, and never on one deleted for everyone.
    if m.wpp_message_id is null then
      return jsonb_build_object('outcome', 'message_not_sent', 'message', to_jsonb(m));
    end if;
    if m.deleted_at is not null then
      return jsonb_build_object(
        'outcome', case when a.kind = 'delete' then 'unchanged' else 'message_deleted' end,
        'message', to_jsonb(m));
    end if;
    -- Only the account's own messages are edited or deleted for everyone, within WhatsApp's
    -- limit from when they went out; only a text is edited.
    if a.kind in ('edit', 'delete') then
      if m.direction <> 'outbound' then
        return jsonb_build_object('outcome', 'not_own_message', 'message', to_jsonb(m));
      end if;
      if a.kind = 'edit' and m.message_type <> 'chat' then
        return jsonb_build_object('outcome', 'not_editable', 'message', to_jsonb(m));
      end if;
      if p_now > coalesce(m.sent_at, m.host_at, m.created_at)
                 + make_interval(secs => a.window_s) then
        return jsonb_build_object('outcome', 'window_passed', 'message', to_jsonb(m));
      end if;
    end if;
    if a.kind = 'edit' and m.body = a.body then
      return jsonb_build_object('outcome', 'unchanged', 'message', to_jsonb(m));
    end if;
    if a.kind = 'react' then
      select r.emoji into v_own from public.whatsapp_reactions r
      where r.message_id = m.id and r.reactor = 'me';
      if coalesce(v_own, '') = a.emoji then
        return jsonb_build_object('outcome', 'unchanged', 'message', to_jsonb(m));
      end if;
    end if;
  end if;

  v_wait := public.gateway_take_token(s, p_burst, p_rate_per_s, p_now);
  if v_wait > 0 then
    return jsonb_build_object('outcome', 'rate_limited', 'retry_after', v_wait);
  end if;
  return jsonb_build_object('outcome', 'act', 'session', to_jsonb(s),
    'message', public.gateway_row_json(m), 'chat', public.gateway_row_json(c))
    || public.gateway_host_access(s);
end
$$;

comment on function public.gateway_begin_action is
  'Decides a react, edit, delete or read before the host is asked: the caller''s message (or '
  'chat) on a connected session, WhatsApp''s rules (own text, within the window, not '
  'deleted), nothing to do (unchanged), an idempotent replay or conflict, the governor, a '
  'login still syncing (starting: a retry); act comes with what it takes to call the host.';


create function public.gateway_finish_action(
  p_action jsonb,
  p_now timestamptz default now()
) returns jsonb
language plpgsql
set search_path = ''
as $$
declare
  a constant public.gateway_message_action :=
    jsonb_populate_record(null::public.gateway_message_action, p_action);
  s public.whatsapp_sessions;
  m public.whatsapp_messages;
  c public.whatsapp_chats;
  v_marked integer := 0;
begin
  if a.kind = 'read' then
    select * into strict s from public.whatsapp_sessions
    where session_id = a.session_name and user_id = a.user_id;
    c := public.gateway_chat_named(s.id, a.chat_id);
    update public.whatsapp_messages set read_at = p_now, updated_at = p_now
    where whatsapp_session_id = s.id and chat_id = c.chat_id and direction = 'inbound'
      and read_at is null;
    get diagnostics v_marked = row_count;
    c := public.gateway_chat_named(s.id, c.chat_id);
  else
    select * into strict m from public.whatsapp_messages
    where id = a.message_id and user_id = a.user_id;
    select * into strict s from public.whatsapp_sessions where id = m.whatsapp_session_id;
    -- Kept as a change of the message, so a late report of an older state changes nothing.
    perform public.gateway_apply_change(to_jsonb(row(
      s.session_id, m.wpp_message_id,
      case a.kind when 'react' then 'reaction' when 'edit' then 'edit' else 'revoke' end,
      'me', a.body, a.emoji, null, null, floor(extract(epoch from p_now) * 1000)::bigint
    )::public.gateway_message_change), p_now);
    select * into strict m from public.whatsapp_messages where id = m.id;
  end if;

  if a.idempotency_key is not null then
    insert into public.whatsapp_action_keys (user_id, idempotency_key, request_hash, created_at)
    values (a.user_id, a.idempotency_key, a.request_hash, p_now)
    on conflict (user_id, idempotency_key) do nothing;
    delete from public.whatsapp_action_keys
    where user_id = a.user_id and created_at < p_now - interval '1 day';
  end if;

  return jsonb_build_object('message', public.gateway_row_json(m),
    'chat', public.gateway_row_json(c), 'marked', v_marked);
end
$$;

comment on function public.gateway_finish_action is
  'Records a react, edit, delete or read the host did: the message''s change (kept like the '
  'host''s own reports), or the chat''s incoming messages marked read; keeps the key a day.';


-- Functions: service_role only (the trigger functions run as whoever writes the row). --------

revoke execute on function
  public.gateway_shown_type(text, timestamptz),
  public.gateway_refresh_chat_last(uuid, text),
  public.gateway_track_chat(),
  public.gateway_apply_changes(uuid, text, timestamptz),
  public.gateway_apply_change(jsonb, timestamptz),
  public.gateway_message_arrived(),
  public.gateway_record_group(jsonb, timestamptz),
  public.gateway_group_of(text, text),
  public.gateway_check_reply(public.gateway_outbound_request, uuid),
  public.gateway_row_json(anyelement),
  public.gateway_chat_named(uuid, text),
  public.gateway_begin_action(jsonb, double precision, double precision, timestamptz),
  public.gateway_finish_action(jsonb, timestamptz)
  from public, anon, authenticated;
-- service_role, which the functions call as, runs every function of the gateway.
grant execute on all functions in schema public to service_role;
