-- Reconcile: every live session put right from its host, for what no webhook reported (the
-- host posts each event once and never retries). A pass claims sessions under a lease
-- (gateway_claim_reconcile), asks their hosts, and applies what it found chat by chat as it
-- goes (gateway_reconcile_chat), then the session's state and mark
-- (gateway_reconcile_session), each a transaction of its own that writes only while the
-- pass still holds the lease, through the same functions as the webhook: inbound messages
-- stored once by host message id, acks that only move forward, and the session's state as a
-- fresh look (gateway_repair_session). What it changed goes into the event log as
-- reconcile.status, reconcile.message and reconcile.ack, so a browser's replay sees it.

-- Per session, apart from the session row so that a pass publishes no Realtime change of the
-- session to its subscribers: the lease of the pass working on it, when it was last put right,
-- and the host time (seconds, the `t` of WhatsApp's messages) up to which every chat of this
-- attempt has been looked at.
create table public.whatsapp_reconcile_marks (
  whatsapp_session_id uuid primary key
    references public.whatsapp_sessions (id) on delete cascade,
  attempt integer,
  host_t bigint,
  lease_until timestamptz,
  lease_id uuid,            -- the pass holding the lease: only it writes
  reconciled_at timestamptz
);

comment on table public.whatsapp_reconcile_marks is
  'Reconcile''s bookkeeping per session (service only): its lease and the pass that holds it, '
  'when it was last put right, and the host time up to which the chats of its attempt have '
  'been looked at.';

-- Progress chat by chat, for the chats a pass read past the session's mark before it moved
-- (a pass reads a bounded number of chats, within a deadline): the host time each was read to,
-- or why it was skipped. A row goes once the session's mark passes it.
create table public.whatsapp_reconcile_chats (
  whatsapp_session_id uuid not null
    references public.whatsapp_sessions (id) on delete cascade,
  chat_id text not null,
  attempt integer not null,
  host_t bigint not null,   -- the chat's messages up to this host time are stored
  skipped text,             -- why the host could not be read for it (chat_unreadable)
  updated_at timestamptz not null,
  primary key (whatsapp_session_id, chat_id)
);

comment on table public.whatsapp_reconcile_chats is
  'Reconcile''s progress per chat past its session''s mark (service only): the host time each '
  'chat was read to, or why it was skipped.';

revoke all on table public.whatsapp_reconcile_chats from anon, authenticated;
grant all on table public.whatsapp_reconcile_chats to service_role;
alter table public.whatsapp_reconcile_chats enable row level security;

create index whatsapp_reconcile_marks_order_idx
  on public.whatsapp_reconcile_marks (reconciled_at nulls first);

revoke all on table public.whatsapp_reconcile_marks from anon, authenticated;
grant all on table public.whatsapp_reconcile_marks to service_role;
alter table public.whatsapp_reconcile_marks enable row level security;


-- Records (read through their types: see the session functions' migration) ---------------------

-- What a pass claims: a batch of the live sessions put right longest ago, or the one named.
create type public.gateway_reconcile_claim as (
  batch_size integer,       -- sessions at most
  lease_s integer,          -- how long the pass holds them
  ack_window_s integer,     -- outbound messages younger than this may still change
  ack_limit integer,        -- at most this many of them a session
  session_name text,        -- this session only, whatever its status (a status refresh)
  pass_started timestamptz, -- sessions put right since the pass started are not taken again
  edit_window_s integer     -- chats with incoming messages this recent are read again (edits)
);

-- A message the host has and the database missed, with the host's own JSON of it (logged as
-- a reconcile.message event); an ack likewise (reconcile.ack).
create type public.gateway_found_message as (
  message public.gateway_inbound_message,
  payload jsonb
);

create type public.gateway_found_ack as (
  ack public.gateway_ack,
  payload jsonb
);

-- What a pass found in one chat (or why it could not read it), applied at once.
create type public.gateway_reconcile_chat as (
  session_name text,
  lease uuid,                              -- the pass's lease (gateway_claim_reconcile)
  chat_id text,
  inbound public.gateway_found_message[],  -- oldest first
  acks public.gateway_found_ack[],
  host_t bigint,                           -- the chat is read to this host time (null: not)
  skipped text                             -- why it could not be read (null: it was)
);

-- What a pass found on the host for the session itself, applied when it is done with it.
create type public.gateway_reconcile_findings as (
  session_name text,
  lease uuid,
  seen_updated_at timestamptz,             -- the session row's updated_at the claim read
  update public.gateway_session_update,    -- the host's state now (null: nothing to say)
  host_status text,                        -- the host's own word for it, for the event log
  acks public.gateway_found_ack[],         -- found by message id, outside the chats read
  mark bigint,                             -- the host time the session's chats are read to
  host_token text,                         -- a new encrypted host token, if the host gave one
  groups public.gateway_group_update[],    -- the subjects of its group chats (conversations)
  changes public.gateway_message_change[]  -- reactions read back from the host
);


-- The chat ids a contact may have on the host: its number's (a Brazilian mobile with and
-- without its ninth digit, gateway_contact_key's equivalence), its LID's, and the number the
-- session's contacts map its LID to. Reconcile reads those the host lists: a send's row may
-- hold the number as typed (a file send's answer names no recipient), and get-messages
-- fails (401) for an id the host does not hold.
create function public.gateway_contact_chats(p_session_id uuid, p_phone text, p_lid text)
returns jsonb
language plpgsql
stable
set search_path = ''
as $$
declare
  v_phone constant text := public.gateway_contact_phone(p_session_id, p_phone, p_lid);
begin
  return (
    select coalesce(jsonb_agg(distinct id), '[]'::jsonb) from unnest(array[
      v_phone || '@c.us',
      public.gateway_br_twin(v_phone) || '@c.us',
      p_lid || '@lid'
    ]) id where id is not null);
end
$$;

comment on function public.gateway_contact_chats is
  'The chat ids a contact may have on the host (its number in both Brazilian forms, its LID, '
  'the number its LID maps to).';


-- The session a reconcile pass writes to, its row locked (a claim takes that lock first), and
-- whether the pass holding p_lease still holds its lease; where it does not, the answer the
-- pass gets instead: null if the session is gone, lease_lost if another pass has taken it.
create function public.gateway_hold_reconcile(
  p_session_name text, p_lease uuid, p_now timestamptz,
  out session public.whatsapp_sessions, out held boolean, out answer jsonb
)
language plpgsql
set search_path = ''
as $$
begin
  select * into session from public.whatsapp_sessions s
  where s.session_id = p_session_name for update;
  held := exists (
    select 1 from public.whatsapp_reconcile_marks m
    where m.whatsapp_session_id = session.id and m.lease_id = p_lease
      and m.lease_until > p_now);
  if session.id is not null and not held then
    answer := jsonb_build_object('lease_lost', true);
  end if;
end
$$;


create function public.gateway_claim_reconcile(
  p_claim jsonb,
  p_now timestamptz default now()
) returns jsonb
language plpgsql
set search_path = ''
as $$
declare
  c constant public.gateway_reconcile_claim :=
    jsonb_populate_record(null::public.gateway_reconcile_claim, p_claim);
  v_ids uuid[];
  v_busy boolean := false;
begin
  if c.session_name is not null then
    -- One session, whatever its status (status?refresh=true): waits for a webhook holding it.
    select array_agg(s.id) into v_ids from public.whatsapp_sessions s
    where s.session_id = c.session_name;
    perform 1 from public.whatsapp_sessions where id = any(v_ids) for update;
  else
    -- The live sessions put right longest ago, and not yet by this pass (it started at
    -- c.pass_started); one a webhook holds now waits for the next pass.
    select array_agg(t.id) into v_ids from (
      select s.id from public.whatsapp_sessions s
      left join public.whatsapp_reconcile_marks m on m.whatsapp_session_id = s.id
      where s.status in ('starting', 'pairing', 'connected')
        and (m.lease_until is null or m.lease_until <= p_now)
        and (m.reconciled_at is null or m.reconciled_at < coalesce(c.pass_started, p_now))
      order by m.reconciled_at nulls first, s.id
      limit c.batch_size
      for update of s skip locked
    ) t;
  end if;
  if v_ids is null then
    return jsonb_build_object('busy', false, 'sessions', '[]'::jsonb, 'now', p_now);
  end if;
  -- Read again now that the rows are locked: a pass that committed its lease meanwhile keeps
  -- its sessions.
  select coalesce(array_agg(s.id), '{}') into v_ids from public.whatsapp_sessions s
  left join public.whatsapp_reconcile_marks m on m.whatsapp_session_id = s.id
  where s.id = any(v_ids) and (m.lease_until is null or m.lease_until <= p_now);
  v_busy := c.session_name is not null and cardinality(v_ids) = 0;

  -- Each claim is a lease of its own: only the pass holding it writes (gateway_reconcile_chat
  -- and gateway_reconcile_session check it), so a pass that ran past its lease, whose session
  -- another pass has taken since, changes nothing.
  insert into public.whatsapp_reconcile_marks (whatsapp_session_id, lease_until, lease_id)
  select id, p_now + make_interval(secs => c.lease_s), gen_random_uuid() from unnest(v_ids) id
  on conflict (whatsapp_session_id) do update set
    lease_until = excluded.lease_until, lease_id = excluded.lease_id;

  return jsonb_build_object('busy', v_busy, 'now', p_now, 'sessions', coalesce((
    select jsonb_agg(public.gateway_host_access(s) || jsonb_build_object(
      'session', to_jsonb(s),
      'lease', m.lease_id,
      'mark', case when m.attempt = s.attempt then m.host_t end,
      'linked_at', floor(extract(epoch from s.connected_at))::bigint,
      -- The chats read past the mark already, each to its own host time.
      'chats', coalesce((
        select jsonb_object_agg(rc.chat_id, rc.host_t) from public.whatsapp_reconcile_chats rc
        where rc.whatsapp_session_id = s.id and rc.attempt = s.attempt), '{}'::jsonb),
      -- Outbound messages whose ack may still change: sent and not yet read or failed, and
      -- sends whose answer never came (a message of the chat may prove they went out).
      'pending', coalesce((
        select jsonb_agg(jsonb_build_object('wpp_message_id', o.wpp_message_id,
          'phone', o.phone, 'contact_lid', o.contact_lid, 'status', o.status,
          'chats', public.gateway_contact_chats(s.id, o.phone, o.contact_lid)))
        from (
          select o.wpp_message_id, o.phone, o.contact_lid, o.status
          from public.whatsapp_messages o
          where o.whatsapp_session_id = s.id and o.direction = 'outbound'
            and o.created_at > p_now - make_interval(secs => c.ack_window_s)
            and ((o.wpp_message_id is not null and o.status in ('queued', 'sent', 'delivered'))
                 or (o.wpp_message_id is null and o.send_state = 'unknown'))
          order by o.created_at
          limit c.ack_limit
        ) o), '[]'::jsonb),
      -- Chats whose incoming messages may still be edited by their senders: read again, as
      -- the host posts no event for an edit (the conversations migration).
      'recent_chats', coalesce((
        select jsonb_agg(distinct i.chat_id)
        from public.whatsapp_messages i
        where i.whatsapp_session_id = s.id and i.direction = 'inbound'
          and i.created_at > p_now - make_interval(secs => coalesce(c.edit_window_s, 0))
          and i.deleted_at is null), '[]'::jsonb)
    ) order by m.reconciled_at nulls first, s.id)
    from public.whatsapp_sessions s
    join public.whatsapp_reconcile_marks m on m.whatsapp_session_id = s.id
    where s.id = any(v_ids)), '[]'::jsonb));
end
$$;

comment on function public.gateway_claim_reconcile is
  'Leases live sessions put right longest ago (or the one named) to one reconcile pass (a '
  'lease id of its own), with what it takes to ask their host: token, host, the host time '
  'looked at so far and each chat''s past it, the time of the current link, the outbound '
  'messages whose ack may still change with the chats they may be in, and the chats whose '
  'incoming messages may still be edited.';


-- Acks a pass found, applied through the webhook's own function (only forward), each change
-- logged as reconcile.ack; how many changed something.
create function public.gateway_reconcile_acks(
  p_session public.whatsapp_sessions,
  p_acks public.gateway_found_ack[],
  p_now timestamptz
) returns integer
language plpgsql
set search_path = ''
as $$
declare
  v_ack public.gateway_found_ack;
  v_changed integer := 0;
begin
  foreach v_ack in array coalesce(p_acks, '{}') loop
    if coalesce((public.gateway_apply_ack(to_jsonb(v_ack.ack), p_now) ->> 'changed')::boolean,
                false) then
      v_changed := v_changed + 1;
      perform public.gateway_log_event(p_session, 'reconcile.ack',
        p_session.attempt || ':reconcile.ack:' || (v_ack.ack).wpp_message_id || ':'
          || (v_ack.ack).status,
        v_ack.payload, p_now);
    end if;
  end loop;
  return v_changed;
end
$$;

comment on function public.gateway_reconcile_acks is
  'Applies the acks a reconcile pass found (forward only), logging each change; how many.';


create function public.gateway_reconcile_chat(
  p_chat jsonb,
  p_now timestamptz default now()
) returns jsonb
language plpgsql
set search_path = ''
as $$
declare
  c constant public.gateway_reconcile_chat :=
    jsonb_populate_record(null::public.gateway_reconcile_chat, p_chat);
  k record;
  s public.whatsapp_sessions;
  v_result jsonb;
  v_found public.gateway_found_message;
  v_i integer := 0;
  v_stored integer := 0;
  v_acks integer := 0;
  v_lids jsonb := '[]'::jsonb;
  v_media jsonb := '[]'::jsonb;
begin
  select * into k from public.gateway_hold_reconcile(c.session_name, c.lease, p_now);
  if not k.held then
    return k.answer;
  end if;
  s := k.session;

  -- Acks first: one of the chat's messages may be the answer that never came of a send (the
  -- ack's rule matches it), and a message of the owner's comes as an ack and a message both,
  -- stored as the owner's only when no send of the gateway is it.
  v_acks := public.gateway_reconcile_acks(s, c.acks, p_now);

  -- Missed messages, oldest first: each stored once by its host message id, as the webhook
  -- stores it (a webhook racing this pass inserts nothing twice), or completed by a fuller
  -- report (decrypted after ciphertext); its file due to fetch and its sender's LID asked
  -- about, as the webhook's.
  foreach v_found in array coalesce(c.inbound, '{}') loop
    v_i := v_i + 1;
    v_result := public.gateway_record_inbound(to_jsonb(v_found.message),
      p_now + v_i * interval '1 microsecond');
    if coalesce((v_result ->> 'stored')::boolean, false) then
      v_stored := v_stored + 1;
      perform public.gateway_log_event(s, 'reconcile.message',
        s.attempt || ':reconcile.message:' || (v_found.message).wpp_message_id
          || case when (v_result ->> 'completed')::boolean
                  then ':' || (v_found.message).message_type else '' end,
        v_found.payload, p_now);
    end if;
    if v_result ->> 'lid_lookup' is not null then
      v_lids := v_lids || (v_result -> 'lid_lookup');
    end if;
    if jsonb_typeof(v_result -> 'media') = 'object' then
      v_media := v_media || jsonb_build_array(v_result -> 'media' -> 'message_id');
    end if;
  end loop;

  if c.host_t is not null then
    insert into public.whatsapp_reconcile_chats as rc (
      whatsapp_session_id, chat_id, attempt, host_t, skipped, updated_at
    ) values (s.id, c.chat_id, s.attempt, c.host_t, c.skipped, p_now)
    on conflict (whatsapp_session_id, chat_id) do update set
      attempt = excluded.attempt, host_t = excluded.host_t, skipped = excluded.skipped,
      updated_at = excluded.updated_at;
  end if;

  return jsonb_build_object('stored', v_stored, 'acks', v_acks, 'lid_lookups', v_lids,
    'media', v_media);
end
$$;

comment on function public.gateway_reconcile_chat is
  'Applies what a reconcile pass found in one chat, while the pass holds the session''s lease: '
  'acks, then missed inbound messages through the webhook''s own functions (with the files '
  'due to fetch and the LIDs to ask about), each change logged as a reconcile.* event; and '
  'the host time the chat is read to, or why it was skipped.';


create function public.gateway_reconcile_session(
  p_findings jsonb,
  p_qr_first_ttl_s integer default 60,
  p_qr_next_ttl_s integer default 20,
  p_now timestamptz default now()
) returns jsonb
language plpgsql
set search_path = ''
as $$
declare
  f constant public.gateway_reconcile_findings :=
    jsonb_populate_record(null::public.gateway_reconcile_findings, p_findings);
  u constant public.gateway_session_update := f.update;
  k record;
  s public.whatsapp_sessions;
  v_result jsonb;
  v_group public.gateway_group_update;
  v_change public.gateway_message_change;
  v_status_changed boolean := false;
  v_acks integer := 0;
begin
  select * into k from public.gateway_hold_reconcile(f.session_name, f.lease, p_now);
  if not k.held then
    return k.answer;
  end if;
  s := k.session;

  if f.host_token is not null then
    perform public.gateway_store_host_token(s.id, f.host_token, p_now);
  end if;

  -- The host's answer is a fresh look, applied as the truth, unless the session changed since
  -- the pass read it: then a webhook came after the look, and the next pass looks again.
  if u.status is not null and s.updated_at <= f.seen_updated_at then
    if u.status <> s.status
        or (u.status = 'starting' and u.reason is distinct from s.status_reason) then
      v_result := public.gateway_repair_session(f.session_name, u.status, u.reason, p_now);
      v_status_changed := coalesce((v_result ->> 'changed')::boolean, false);
    end if;
    if u.status = 'pairing' and (u.qr_code is not null or u.pairing_code is not null) then
      v_result := public.gateway_apply_host_state(to_jsonb(u), p_qr_first_ttl_s,
        p_qr_next_ttl_s, p_now);
      v_status_changed := v_status_changed or coalesce((v_result ->> 'changed')::boolean, false);
    end if;
    if v_status_changed then
      perform public.gateway_log_event(s, 'reconcile.status',
        s.attempt || ':reconcile.status:' || extract(epoch from p_now)::text,
        jsonb_build_object('status', u.status, 'reason', u.reason, 'host_status', f.host_status),
        p_now);
    end if;
  end if;

  v_acks := public.gateway_reconcile_acks(s, f.acks, p_now);

  -- Group subjects, as the chat list names them, and reactions read back: kept as the
  -- webhook's are (the conversations migration), after the messages they are about.
  foreach v_group in array coalesce(f.groups, '{}') loop
    perform public.gateway_record_group(to_jsonb(v_group), p_now);
  end loop;
  foreach v_change in array coalesce(f.changes, '{}') loop
    perform public.gateway_apply_change(to_jsonb(v_change), p_now);
  end loop;

  -- A send the host called "does not exist" that no ack showed to have gone out by the end
  -- of its lease did not go.
  perform public.gateway_settle_unconfirmed(s.id, p_now);

  update public.whatsapp_reconcile_marks m set
    attempt = s.attempt,
    host_t = case when f.mark is not null then f.mark
                  when m.attempt = s.attempt then m.host_t end,
    reconciled_at = p_now,
    lease_until = null,
    lease_id = null
  where m.whatsapp_session_id = s.id;
  -- Chats the mark has passed, and any of an earlier attempt, need no row of their own.
  delete from public.whatsapp_reconcile_chats rc
  where rc.whatsapp_session_id = s.id
    and (rc.attempt <> s.attempt or rc.host_t <= f.mark);

  select * into s from public.whatsapp_sessions where id = s.id;
  return jsonb_build_object('session', to_jsonb(s), 'status_changed', v_status_changed,
    'acks', v_acks);
end
$$;

comment on function public.gateway_reconcile_session is
  'Applies what a reconcile pass found for a session itself, while it holds the session''s '
  'lease: the host''s state (unless a webhook changed the session since the pass read it), '
  'acks found by message id, each change logged as a reconcile.* event, its group chats'' '
  'subjects and the reactions read back; then moves the '
  'session''s mark (forgetting the chats it passes) and releases the lease.';


create function public.gateway_release_reconcile(p_leases jsonb)
returns void
language sql
set search_path = ''
as $$
  update public.whatsapp_reconcile_marks m set lease_until = null, lease_id = null
  where m.lease_id in (select (jsonb_array_elements_text(p_leases))::uuid)
$$;

comment on function public.gateway_release_reconcile is
  'Gives back leases a pass holds and is done with without finishing (its time ran out, or '
  'the host failed): by lease id, so a lease another pass holds since is not touched.';


revoke execute on function
  public.gateway_contact_chats(uuid, text, text),
  public.gateway_reconcile_acks(public.whatsapp_sessions, public.gateway_found_ack[], timestamptz),
  public.gateway_hold_reconcile(text, uuid, timestamptz),
  public.gateway_claim_reconcile(jsonb, timestamptz),
  public.gateway_reconcile_chat(jsonb, timestamptz),
  public.gateway_reconcile_session(jsonb, integer, integer, timestamptz),
  public.gateway_release_reconcile(jsonb)
  from public, anon, authenticated;
-- service_role, which the functions call as, runs every function of the gateway.
grant execute on all functions in schema public to service_role;
