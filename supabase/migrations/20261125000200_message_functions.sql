-- Messaging and host events: the outbox with idempotent sends and the sending governor,
-- inbound messages stored once, delivery acks that only move forward, and the event log's
-- ingest, which logs every host event once and applies it in the same transaction.
--
-- These are the busiest paths, so they write no more than they must: an incoming message or an
-- ack moves the session's last_activity in steps of a minute (all the purge and the page need),
-- not on every event, which would add a row version, and a Realtime update of the session for
-- every subscriber, each time; and host events do not wait for their commit to reach the disk,
-- except where the reasons beside gateway_ingest_event's code say so.

-- Records (read through their types: see the session functions' migration) ---------------------

-- A file a message carries, as send-message checked it: the caller's upload stays at its path;
-- a file sent inline is stored under the message's own name, with its extension.
create type public.gateway_outgoing_file as (
  message_type text,  -- image, sticker, video, audio, ptt or document
  mime_type text,
  filename text,
  size bigint,
  sha256 text,
  path text,          -- the caller's upload, or null
  ext text            -- for a file sent inline
);

create type public.gateway_outbound_request as (
  user_id uuid,
  session_name text,
  phone text,
  body text,
  contact_name text,
  idempotency_key text,
  request_hash text,
  contact_lid text,
  media public.gateway_outgoing_file,
  reply_to uuid,          -- the caller's message this one quotes (the conversations migration)
  group_id text           -- a group instead of a contact: <digits>[-<digits>]@g.us
);

-- What the host did with a send (gateway_finish_send).
create type public.gateway_finished_send as (
  message_id uuid,
  attempt integer,        -- the attempt that sent (the row's attempts when it was taken)
  outcome text,           -- sent, failed, retryable, unknown or withdrawn
  wpp_message_id text,
  error_code text,
  session_lost boolean,   -- the host said the session is gone: it is disconnected too
  phone text,             -- the canonical id the host sent to
  contact_lid text
);

-- A received file as the host describes it, before it is fetched.
create type public.gateway_incoming_file as (
  mime_type text,
  filename text,
  size bigint,
  ext text,    -- where it will be kept: <user id>/<session id>/<message id>.<ext>
  state text   -- pending (to fetch) or too_large
);

-- A location message's place.
create type public.gateway_location as (
  lat double precision,
  lng double precision,
  name text               -- the place's name and address, or null
);

create type public.gateway_inbound_message as (
  session_name text,
  wpp_message_id text,
  phone text,
  body text,
  contact_name text,
  message_type text,
  from_me boolean,        -- written on the owner's own phone
  account_phone text,     -- the session's own number, as the message names it
  contact_lid text,
  media public.gateway_incoming_file,
  -- What the message kinds carry (the conversations migration):
  group_id text,          -- a group message's group; phone and contact_lid are then null
  author text,            -- who wrote it in the group: digits, or <digits>@lid
  reply_to_wpp_id text,   -- the message it quotes
  location public.gateway_location,
  vcard text,             -- a contact card's vCard (several, one after the other)
  host_t bigint,          -- WhatsApp's time of the message (seconds)
  edited_ms bigint,       -- when its text was last edited (ms), if it was
  revoked boolean         -- deleted for everyone
);

-- An edit, a deletion or a reaction the host reported (onrevokedmessage, onreactionmessage, an
-- edited or revoked message read back), or one this gateway made (send-message's react, edit
-- and delete), by WhatsApp's id of the message it changes.
create type public.gateway_message_change as (
  session_name text,
  target text,        -- WhatsApp's id of the message changed
  kind text,          -- edit, revoke or reaction
  reactor text,       -- a reaction's author: 'me', or <digits>@c.us / <digits>@lid
  body text,          -- an edit's new text
  emoji text,         -- a reaction's emoji; '' when it was taken back
  phone text,         -- a reaction's author, as digits: their number
  contact_lid text,   -- or their LID
  at_ms bigint        -- the change's own time on WhatsApp, in ms (null: the host gave none)
);

create type public.gateway_group_participant as (
  id text,        -- <digits>@c.us or <digits>@lid
  admin boolean
);

-- What the host said about a group: its subject or whole participant list (group-info,
-- list-chats), or one change of its participants (onparticipantschanged).
create type public.gateway_group_update as (
  session_name text,
  group_id text,
  subject text,                                       -- null: unchanged
  participants public.gateway_group_participant[],    -- the whole list; null: unchanged
  action text,                                        -- add, remove, promote, demote or null
  who text[]                                          -- the participants the action is about
);

create type public.gateway_ack as (
  session_name text,
  wpp_message_id text,
  status text,            -- sent, delivered, read or failed
  phone text,
  body text,              -- a text's body; a file's caption
  lid text,
  failure_code text,
  message_type text,      -- the host's type of the message: chat, image, document...
  sha256 text             -- a file's digest as the host reports it (its filehash), hex
);

-- A host event: logged as it came (payload), applied by kind with its record (args: a
-- gateway_session_update, gateway_inbound_message, gateway_ack, gateway_message_change or
-- gateway_group_update).
create type public.gateway_host_event as (
  session_name text,
  host_id uuid,           -- the pool host whose webhook URL it came by
  attempt integer,        -- the attempt whose webhook URL it came by
  event text,
  dedup_key text,
  payload jsonb,
  kind text,              -- session, inbound, ack, change, group or none
  args jsonb
);

create function public.gateway_message_rank(p_status text) returns integer
language plpgsql
immutable
set search_path = ''
as $$
begin
  return case p_status
    when 'queued' then 0 when 'sent' then 1 when 'delivered' then 2 when 'read' then 3
    else null end;
end
$$;



comment on function public.gateway_message_rank is
  'The order of outbound delivery states: queued < sent < delivered < read.';


-- The host reports a new message at once undecrypted (type ciphertext, no body) and again,
-- with the same id, once decrypted (wa-js's chat.new_message, then change:type). A report
-- replaces the stored message only if it is more complete, so the decrypted one wins in
-- whatever order the two arrive, and a late or replayed report never takes a text back: a
-- message revoked or edited since is not brought back by an older report of it.
create function public.gateway_message_completeness(p_type text) returns integer
language plpgsql
immutable
set search_path = ''
as $$
begin
  return case when p_type = 'ciphertext' then 0 else 1 end;
end
$$;

comment on function public.gateway_message_completeness is
  'How complete a report of a message is: ciphertext (not decrypted yet) 0, any other 1.';


-- A Brazilian mobile is one account with and without its ninth digit: 55, a two-digit area
-- code, 9 and eight digits is the same as 55, the area and the eight digits.
create function public.gateway_br_twin(p_phone text) returns text
language plpgsql
immutable
set search_path = ''
as $$
begin
  return case
    when p_phone ~ '^55[1-9][0-9]9[0-9]{8}$' then left(p_phone, 4) || right(p_phone, 8)
    when p_phone ~ '^55[1-9][0-9][0-9]{8}$' then left(p_phone, 4) || '9' || right(p_phone, 8)
  end;
end
$$;

comment on function public.gateway_br_twin is
  'The other form of a Brazilian mobile number (with or without its ninth digit), or null.';


-- A contact's number: the one given, else the one the session's contacts map its LID to.
create function public.gateway_contact_phone(p_session_id uuid, p_phone text, p_lid text)
returns text
language sql
stable
set search_path = ''
as $$
  select coalesce(p_phone, (
    select c.phone from public.whatsapp_contacts c
    where c.whatsapp_session_id = p_session_id and c.lid = p_lid))
$$;

comment on function public.gateway_contact_phone is
  'A contact''s number: the one given, else the one the session''s contacts map its LID to.';


create function public.gateway_contact_key(p_session_id uuid, p_phone text, p_lid text)
returns text
language plpgsql
stable
set search_path = ''
as $$
declare
  v_phone constant text := public.gateway_contact_phone(p_session_id, p_phone, p_lid);
begin
  if v_phone is null then
    return case when p_lid is not null then p_lid || '@lid' end;
  end if;
  -- A Brazilian mobile's key is its form without the ninth digit (gateway_br_twin).
  if length(v_phone) = 13 and public.gateway_br_twin(v_phone) is not null then
    return public.gateway_br_twin(v_phone);
  end if;
  return v_phone;
end
$$;

comment on function public.gateway_contact_key is
  'One key per WhatsApp contact of a session: numbers that WhatsApp treats as one (a Brazilian '
  'mobile with or without its ninth digit) and a LID the session''s contacts map to a number '
  'have the same key. Two (phone, lid) pairs name the same contact when their keys are equal.';


-- The sending governor: a token bucket per session, of p_burst tokens refilled at
-- p_rate_per_s, kept on the session row (send_tokens at send_tokens_at). What it holds now;
-- a send takes one token, and is refused below one.
create function public.gateway_send_tokens(
  p_session public.whatsapp_sessions,
  p_burst double precision,
  p_rate_per_s double precision,
  p_now timestamptz
) returns double precision
language plpgsql
stable
set search_path = ''
as $$
begin
  return least(
    p_burst,
    coalesce(p_session.send_tokens, p_burst)
      + greatest(0, extract(epoch from p_now - coalesce(p_session.send_tokens_at, p_now)))
        * p_rate_per_s
  );
end
$$;

comment on function public.gateway_send_tokens is
  'The tokens a session''s sending governor holds at p_now.';


-- The one way a call takes a message from the sending governor, on the session it holds locked:
-- 0 when it took one, else the seconds until one is there.
create function public.gateway_take_token(
  p_session public.whatsapp_sessions,
  p_burst double precision,
  p_rate_per_s double precision,
  p_now timestamptz
) returns integer
language plpgsql
set search_path = ''
as $$
declare
  v_tokens constant double precision :=
    public.gateway_send_tokens(p_session, p_burst, p_rate_per_s, p_now);
begin
  if v_tokens < 1 then
    update public.whatsapp_sessions set send_tokens = v_tokens, send_tokens_at = p_now
    where id = p_session.id;
    return ceil((1 - v_tokens) / p_rate_per_s)::integer;
  end if;
  update public.whatsapp_sessions set
    send_tokens = v_tokens - 1, send_tokens_at = p_now, last_activity = p_now
  where id = p_session.id;
  return 0;
end
$$;

comment on function public.gateway_take_token is
  'Takes one message from the session''s token bucket: 0, or the seconds until one is there.';


create function public.gateway_lock_idempotency_key(p_user_id uuid, p_key text)
returns void
language sql
set search_path = ''
as $$
  -- A key is unique per user, whichever account the request names; the session's row lock
  -- covers one account only.
  select pg_advisory_xact_lock(
    hashtextextended('gateway_idempotency:' || p_user_id::text || ':' || p_key, 0))
$$;

comment on function public.gateway_lock_idempotency_key is
  'Takes, for the transaction, the lock of one user''s Idempotency-Key: requests with it, on '
  'any of the user''s accounts, are decided one at a time.';


create function public.gateway_settle_unconfirmed(
  p_session_id uuid,
  p_now timestamptz default now()
) returns integer
language plpgsql
set search_path = ''
as $$
declare
  v_settled integer;
begin
  -- The host said "does not exist" and may have sent all the same (its lookup failed on
  -- WhatsApp's side). A send that went out is acked within moments: one that no ack matched
  -- by the end of its lease did not go, and the number is taken at its word.
  update public.whatsapp_messages set
    status = 'failed', send_state = 'done', lease_until = null, updated_at = p_now
  where whatsapp_session_id = p_session_id and direction = 'outbound'
    and wpp_message_id is null and send_state = 'unknown' and error_code = 'unknown_recipient'
    and lease_until <= p_now;
  get diagnostics v_settled = row_count;
  return v_settled;
end
$$;

comment on function public.gateway_settle_unconfirmed is
  'Fails, as unknown_recipient, the session''s sends the host called "does not exist" that no '
  'ack showed to have gone out by the end of their lease; returns how many.';


-- How every send starts, whichever function is asked (gateway_begin_send, or
-- gateway_prepare_send for a template or a time): it takes the session's row lock, so the
-- token bucket is decided one send at a time, and the key's own lock, so requests with one
-- key are too, whichever of the user's accounts they name. Then a key already used: the same
-- key with another request is a conflict; a message that went out, or that waits for its
-- time, answers as it is (replay); one an attempt still holds under its lease is in flight.
-- Any other (its attempt failed before sending, or its lease ran out without the host's
-- message id) comes back with no answer: the message this attempt sends.
-- A new key finds no message.
create function public.gateway_open_send(
  p_request public.gateway_outbound_request,
  p_now timestamptz,
  out session public.whatsapp_sessions,
  out message public.whatsapp_messages,
  out answer jsonb
)
language plpgsql
set search_path = ''
as $$
begin
  select * into session from public.whatsapp_sessions s
  where s.session_id = p_request.session_name and s.user_id = p_request.user_id
  for update;
  if p_request.idempotency_key is null then
    return;
  end if;
  perform public.gateway_lock_idempotency_key(p_request.user_id, p_request.idempotency_key);
  select * into message from public.whatsapp_messages m
  where m.user_id = p_request.user_id and m.idempotency_key = p_request.idempotency_key;
  if not found then
    return;
  end if;
  if message.request_hash is distinct from p_request.request_hash then
    answer := jsonb_build_object('outcome', 'conflict');
    return;
  end if;
  -- A "does not exist" that no ack contradicted by the end of the lease is final.
  if message.error_code = 'unknown_recipient' and session.id is not null
      and public.gateway_settle_unconfirmed(session.id, p_now) > 0 then
    select * into message from public.whatsapp_messages m where m.id = message.id;
  end if;
  if message.send_at is not null or message.send_state = 'done'
      or message.wpp_message_id is not null then
    answer := jsonb_build_object('outcome', 'replay', 'message', to_jsonb(message));
  elsif message.lease_until > p_now then
    answer := jsonb_build_object('outcome', 'in_flight', 'message', to_jsonb(message));
  end if;
end
$$;

comment on function public.gateway_open_send is
  'A send''s session, locked, and the message its Idempotency-Key already names with the '
  'answer it gets as it is (conflict, replay, in_flight), or none when this attempt sends it.';


-- What a send needs to know of its session besides how to reach its host: whether it is still
-- syncing (logged in, inChat not yet seen), and whether its login is so recent that the host
-- may still be finishing it (inChat can come up to a second before the library's client is
-- ready, while the host's entry still shows its last QR).
create function public.gateway_send_session(
  s public.whatsapp_sessions,
  p_now timestamptz
) returns jsonb
language sql
stable
set search_path = ''
as $$
  select jsonb_build_object(
    'syncing', s.status <> 'connected',
    'settling', s.status <> 'connected' or s.connected_at > p_now - interval '5 seconds'
  ) || public.gateway_host_access(s)
$$;

comment on function public.gateway_send_session is
  'A send''s session: its host access, whether it is syncing, and whether its login may still '
  'be settling on the host.';


-- An attempt takes an outbox row to send it (a send, a retry, a scheduler's claim): queued,
-- under the attempt's lease, and counted, as the attempt is the fence (gateway_finish_send).
create function public.gateway_take_send(
  p_message_id uuid,
  p_lease_s integer,
  p_now timestamptz
) returns public.whatsapp_messages
language sql
set search_path = ''
as $$
  update public.whatsapp_messages set
    status = 'queued', send_state = 'pending', error_code = null,
    lease_until = p_now + make_interval(secs => p_lease_s),
    attempts = attempts + 1, updated_at = p_now
  where id = p_message_id
  returning *
$$;

comment on function public.gateway_take_send is
  'Takes an outbox row for one more attempt: queued, leased for p_lease_s, attempts counted.';


create function public.gateway_begin_send(
  p_send jsonb,
  p_burst double precision,
  p_rate_per_s double precision,
  p_lease_s integer,
  p_now timestamptz default now()
) returns jsonb
language plpgsql
set search_path = ''
as $$
declare
  r constant public.gateway_outbound_request :=
    jsonb_populate_record(null::public.gateway_outbound_request, p_send);
  f constant public.gateway_outgoing_file := r.media;
  s public.whatsapp_sessions;
  m public.whatsapp_messages;
  k record;
  v_wait integer;
  v_id uuid := gen_random_uuid();
  v_quote jsonb;
  v_sendable boolean;
begin
  select * into k from public.gateway_open_send(r, p_now);
  if k.answer is not null then
    return k.answer;
  end if;
  s := k.session;
  -- Connected, or logged in and syncing: the host is asked whether it has the session's
  -- client yet, and a send waits for it (503 session_starting) rather than failing.
  v_sendable := s.status = 'connected' or (s.status = 'starting' and s.status_reason = 'syncing');
  if s.id is null or not v_sendable then
    return jsonb_build_object('outcome', 'not_connected');
  end if;
  if (k.message).id is not null then
    -- An earlier attempt failed before sending, or its lease ran out without the host's
    -- message id ever arriving: this attempt finishes it.
    m := public.gateway_take_send((k.message).id, p_lease_s, p_now);
    return jsonb_build_object('outcome', 'send', 'message', to_jsonb(m))
      || public.gateway_send_session(s, p_now);
  end if;

  -- A reply quotes a message of its own chat that WhatsApp has (gateway_check_reply).
  if r.reply_to is not null then
    v_quote := public.gateway_check_reply(r, s.id);
    if v_quote ->> 'outcome' <> 'ok' then
      return v_quote;
    end if;
  end if;

  v_wait := public.gateway_take_token(s, p_burst, p_rate_per_s, p_now);
  if v_wait > 0 then
    return jsonb_build_object('outcome', 'rate_limited', 'retry_after', v_wait);
  end if;

  -- Media: a file the caller uploaded stays at its path (already stored); one sent inline is
  -- stored by the function under the message's own name.
  insert into public.whatsapp_messages (
    id, user_id, whatsapp_session_id, direction, phone, contact_name, body, status,
    idempotency_key, request_hash, send_state, lease_until, attempts, created_at, updated_at,
    contact_lid, message_type, mime_type, filename, size, sha256, media_path, media_state,
    reply_to, reply_to_wpp_id, group_id
  ) values (
    v_id, r.user_id, s.id, 'outbound', r.phone, r.contact_name, r.body, 'queued',
    r.idempotency_key, r.request_hash, 'pending', p_now + make_interval(secs => p_lease_s), 1,
    p_now, p_now, r.contact_lid, coalesce(f.message_type, 'chat'),
    f.mime_type, f.filename, f.size, f.sha256,
    coalesce(f.path, public.gateway_media_path(r.user_id, s.id, v_id, f.ext)),
    case when f.path is not null then 'stored' when f.mime_type is not null then 'pending' end,
    r.reply_to, v_quote ->> 'wpp_message_id', r.group_id
  )
  returning * into m;

  return jsonb_build_object('outcome', 'send', 'message', to_jsonb(m))
    || public.gateway_send_session(s, p_now);
end
$$;

comment on function public.gateway_begin_send is
  'Decides a send before the host is called: replays an idempotent retry, refuses a reused key '
  'with another body, a session neither connected nor syncing, or an empty token bucket, else '
  'writes the outbox row (queued, with a lease) and returns it with the session''s encrypted '
  'host token (and whether the session is still syncing).';



create function public.gateway_finish_send(
  p_finished jsonb,
  p_now timestamptz default now()
) returns jsonb
language plpgsql
set search_path = ''
as $$
declare
  c_next_pass constant interval := interval '1 minute';
  r constant public.gateway_finished_send :=
    jsonb_populate_record(null::public.gateway_finished_send, p_finished);
  m public.whatsapp_messages;
  v_holds boolean;
begin

  if r.outcome not in ('sent', 'failed', 'retryable', 'unknown', 'withdrawn') then
    raise exception 'unknown send outcome %', r.outcome using errcode = '22023';
  end if;

  select * into strict m from public.whatsapp_messages where id = r.message_id for update;
  -- The attempt is the fence: each take of the row (a send, a retry, a scheduler's claim)
  -- counts one more. An attempt whose lease ran out and that another took over no longer
  -- holds the row, and what it says of its failure changes nothing; that it sent is a fact
  -- all the same, kept as a late ack would keep it.
  v_holds := m.attempts = r.attempt and m.send_state = 'pending';

  -- Nothing reached the host (it was still bringing the session up) and the caller was told
  -- to try again: the row goes, so no message is left failed or queued for a send that never
  -- happened; a retry with the same Idempotency-Key starts afresh.
  if r.outcome = 'withdrawn' then
    if v_holds then
      delete from public.whatsapp_messages where id = m.id and wpp_message_id is null;
    end if;
    return jsonb_build_object('message', to_jsonb(m));
  end if;

  if r.outcome = 'sent'
      and (v_holds or m.wpp_message_id is null or m.wpp_message_id = r.wpp_message_id) then
    -- The host sent to WhatsApp's canonical id of the number: the row names the contact by it,
    -- as the contact's replies and acks will.
    update public.whatsapp_messages set
      wpp_message_id = coalesce(wpp_message_id, r.wpp_message_id),
      phone = coalesce(r.phone, phone),
      contact_lid = coalesce(r.contact_lid, contact_lid),
      status = case when public.gateway_message_rank(status) >= 1 then status else 'sent' end,
      send_state = 'done', lease_until = null, error_code = null, updated_at = p_now
    where id = m.id
    returning * into m;
  elsif r.outcome <> 'sent' and v_holds and m.wpp_message_id is null then
    -- A late ack may already have matched this row; then it was sent after all. A scheduled
    -- message refused before sending waits for a later claim, as it waited for its time: the
    -- next pass's (a pass runs every minute), not this one's again.
    update public.whatsapp_messages set
      status = case when r.outcome = 'unknown' then 'queued'
                    when r.outcome = 'retryable' and send_at is not null then 'scheduled'
                    else 'failed' end,
      send_state = case r.outcome when 'failed' then 'done' else r.outcome end,
      lease_until = case when r.outcome = 'unknown' then lease_until
                         when r.outcome = 'retryable' and send_at is not null
                           then p_now + c_next_pass end,
      error_code = r.error_code,
      updated_at = p_now
    where id = m.id
    returning * into m;
  end if;

  if coalesce(r.session_lost, false) then
    perform public.gateway_mark_disconnected(
      array[m.whatsapp_session_id], 'host_disconnected', p_now);
  end if;

  return jsonb_build_object('message', to_jsonb(m), 'held', v_holds);
end
$$;



comment on function public.gateway_finish_send is
  'Records what the host did with a send, if the attempt still holds the row: sent (with its '
  'message id and the canonical id it went to), failed for good, retryable (refused before '
  'sending; a scheduled message waits again) or unknown (no answer: the row keeps its lease '
  'for a late ack) or withdrawn (never sent: the row is deleted). A send by an attempt that '
  'lost the row is kept all the same; a lost session is marked disconnected in the same '
  'transaction.';


create function public.gateway_hold_send(
  p_message_id uuid,
  p_attempt integer,
  p_lease_s integer,
  p_now timestamptz default now()
) returns jsonb
language plpgsql
set search_path = ''
as $$
declare
  m public.whatsapp_messages;
begin
  -- Still this attempt's, still to send: a pass whose lease ran out may have lost it to
  -- another, and a late ack of an earlier attempt may have shown it went out.
  update public.whatsapp_messages set lease_until = p_now + make_interval(secs => p_lease_s)
  where id = p_message_id and attempts = p_attempt and send_state = 'pending'
    and wpp_message_id is null
  returning * into m;
  if found then
    return jsonb_build_object('held', true, 'message', to_jsonb(m));
  end if;
  select * into m from public.whatsapp_messages where id = p_message_id;
  return jsonb_build_object('held', false, 'message', to_jsonb(m));
end
$$;

comment on function public.gateway_hold_send is
  'Right before a host call: the attempt holding an outbox row keeps it for p_lease_s more '
  'seconds (0: gives it back, to be taken again at once); held false when the attempt no '
  'longer holds it (another took it over, or an ack showed it went out).';


-- The session comes locked: the webhook's event locked it already (gateway_ingest_event), and
-- locking it again would cost each message a second read of the row.
create function public.gateway_store_inbound(
  s public.whatsapp_sessions,
  r public.gateway_inbound_message,
  p_now timestamptz
) returns jsonb
language plpgsql
set search_path = ''
as $$
declare
  c_activity_step constant interval := interval '1 minute';
  -- A LID the host could not map is asked again after this long.
  c_lid_retry constant interval := interval '10 minutes';
  f constant public.gateway_incoming_file := r.media;
  v_id uuid;
  v_origin text;
  v_phone_before text;
  v_phone text := r.phone;
  v_fetch jsonb;
  v_asked timestamptz;
  v_lookup boolean := false;
  v_inserted boolean;
begin
  v_phone_before := s.phone_number;

  -- The account's own number, as a message of the current link names it: one written before
  -- the session last disconnected may come from a phone linked before (a relink to another
  -- phone), and changes nothing.
  if r.account_phone is not null and s.status <> 'disconnected'
      and (s.disconnected_at is null or r.host_t is null
           or to_timestamp(r.host_t) > s.disconnected_at) then
    s.phone_number := r.account_phone;
  end if;
  -- A sender named by their LID: the number is the one the host mapped it to, if it did.
  if v_phone is null and r.contact_lid is not null then
    select c.phone, c.updated_at into v_phone, v_asked from public.whatsapp_contacts c
    where c.whatsapp_session_id = s.id and c.lid = r.contact_lid;
    v_lookup := v_phone is null and (v_asked is null or v_asked < p_now - c_lid_retry);
  end if;
  v_origin := case when r.from_me or v_phone = s.phone_number then 'owner' else 'client' end;

  -- from_me: the owner wrote it on their own phone (the host's onselfmessage). A message
  -- stored already takes this report only if it is more complete (see
  -- gateway_message_completeness): its text, kind, file and what its kind carries, nothing
  -- else; never once deleted for everyone, and never the text of an edit applied since.
  insert into public.whatsapp_messages as m (
    user_id, whatsapp_session_id, direction, phone, contact_name, body, status,
    wpp_message_id, message_type, origin, created_at, updated_at, contact_lid,
    mime_type, filename, size, media_state,
    group_id, author, reply_to, reply_to_wpp_id, location, vcard, host_at, edited_at, deleted_at
  ) values (
    s.user_id, s.id, case when r.from_me then 'outbound' else 'inbound' end, v_phone,
    r.contact_name, case when r.revoked then '' else coalesce(r.body, '') end,
    case when r.from_me then 'sent' else 'received' end,
    r.wpp_message_id, coalesce(r.message_type, 'chat'), v_origin, p_now, p_now, r.contact_lid,
    f.mime_type, f.filename, f.size, f.state,
    r.group_id, r.author,
    (select q.id from public.whatsapp_messages q
     where q.wpp_message_id = r.reply_to_wpp_id and q.whatsapp_session_id = s.id),
    r.reply_to_wpp_id,
    case when (r.location).lat is not null and r.revoked is not true
      then to_jsonb(r.location) end,
    case when r.revoked is not true then r.vcard end,
    to_timestamp(r.host_t), to_timestamp(r.edited_ms / 1000.0),
    case when r.revoked then p_now end
  )
  on conflict (wpp_message_id) do update set
    body = case when m.edited_at is null then excluded.body else m.body end,
    message_type = excluded.message_type,
    contact_name = coalesce(excluded.contact_name, m.contact_name),
    mime_type = excluded.mime_type,
    filename = excluded.filename,
    size = excluded.size,
    media_state = excluded.media_state,
    group_id = coalesce(excluded.group_id, m.group_id),
    author = coalesce(excluded.author, m.author),
    reply_to = coalesce(excluded.reply_to, m.reply_to),
    reply_to_wpp_id = coalesce(excluded.reply_to_wpp_id, m.reply_to_wpp_id),
    location = excluded.location,
    vcard = excluded.vcard,
    host_at = coalesce(m.host_at, excluded.host_at),
    updated_at = excluded.updated_at
  where public.gateway_message_completeness(excluded.message_type)
      > public.gateway_message_completeness(m.message_type)
    and m.deleted_at is null
  returning m.id, m.xmax = 0 into v_id, v_inserted;

  -- A message the host shows edited or deleted for everyone: the change is kept (and applied
  -- to the stored message when it is not the one just written), in its order with the others.
  if r.edited_ms is not null or r.revoked then
    perform public.gateway_apply_change(to_jsonb(row(
      r.session_name, r.wpp_message_id, case when r.revoked then 'revoke' else 'edit' end,
      null, r.body, null, null, null, r.edited_ms)::public.gateway_message_change), p_now);
  end if;

  if s.phone_number is distinct from v_phone_before
      or s.last_activity < p_now - c_activity_step then
    update public.whatsapp_sessions set
      phone_number = s.phone_number, last_activity = p_now
    where id = s.id;
  end if;

  -- The host is asked for the number once (gateway_remember_contact keeps its answer); the
  -- moment of asking is kept now, so a burst from one LID asks once.
  v_lookup := v_lookup and v_id is not null;
  if v_lookup then
    insert into public.whatsapp_contacts (whatsapp_session_id, lid, phone, updated_at)
    values (s.id, r.contact_lid, null, p_now)
    on conflict (whatsapp_session_id, lid) do update set updated_at = excluded.updated_at;
  end if;

  -- A file to fetch from the host: where to keep it, due at once (the media function).
  if v_id is not null and f.state = 'pending' then
    insert into public.whatsapp_media_fetches (message_id, path, next_at)
    values (v_id, public.gateway_media_path(s.user_id, s.id, v_id, f.ext), p_now)
    on conflict (message_id) do update set next_at = excluded.next_at, path = excluded.path;
    v_fetch := jsonb_build_object('message_id', v_id);
  end if;

  return jsonb_build_object('stored', v_id is not null,
    'completed', coalesce(not v_inserted, false), 'id', v_id, 'origin', v_origin,
    'lid_lookup', case when v_lookup then r.contact_lid end, 'media', v_fetch);
end
$$;

comment on function public.gateway_store_inbound is
  'Stores a message the host reports (incoming, or written on the owner''s phone) once per '
  'host message id, as owner or client by who wrote it, or completes it with a fuller report '
  '(decrypted after ciphertext: completed); a sender named by a LID gets the number the '
  'session''s contacts map it to, and lid_lookup names the LID when the host must be asked; '
  'media names the message whose file is now due to fetch from the host.';


create function public.gateway_record_inbound(
  p_message jsonb,
  p_now timestamptz default now()
) returns jsonb
language plpgsql
set search_path = ''
as $$
declare
  r constant public.gateway_inbound_message :=
    jsonb_populate_record(null::public.gateway_inbound_message, p_message);
  s public.whatsapp_sessions;
begin
  select * into s from public.whatsapp_sessions where session_id = r.session_name for update;
  if not found then
    return null;
  end if;
  return public.gateway_store_inbound(s, r, p_now);
end
$$;

comment on function public.gateway_record_inbound is
  'gateway_store_inbound for the session the message names, locked; null if there is none.';


create function public.gateway_remember_contact(
  p_session_name text,
  p_lid text,
  p_phone text,
  p_now timestamptz default now()
) returns jsonb
language plpgsql
set search_path = ''
as $$
declare
  s public.whatsapp_sessions;
  v_filled integer := 0;
begin
  select * into s from public.whatsapp_sessions where session_id = p_session_name;
  if not found then
    return null;
  end if;
  insert into public.whatsapp_contacts (whatsapp_session_id, lid, phone, updated_at)
  values (s.id, p_lid, p_phone, p_now)
  on conflict (whatsapp_session_id, lid) do update set
    phone = coalesce(excluded.phone, public.whatsapp_contacts.phone),
    updated_at = excluded.updated_at;
  if p_phone is not null then
    update public.whatsapp_messages set phone = p_phone, updated_at = p_now
    where whatsapp_session_id = s.id and contact_lid = p_lid and phone is null;
    get diagnostics v_filled = row_count;
  end if;
  return jsonb_build_object('filled', v_filled);
end
$$;

comment on function public.gateway_remember_contact is
  'Keeps the number the host mapped a contact''s LID to (null: it could not tell) and fills it '
  'in on that contact''s messages that have none yet.';



-- The session comes locked, as gateway_store_inbound's.
create function public.gateway_store_ack(
  s public.whatsapp_sessions,
  a public.gateway_ack,
  p_now timestamptz
) returns jsonb
language plpgsql
set search_path = ''
as $$
declare
  c_activity_step constant interval := interval '1 minute';
  m public.whatsapp_messages;
  v_matched boolean := false;
  v_target text;
  v_key text;
  v_media boolean;
begin
  if a.status not in ('sent', 'delivered', 'read', 'failed') then
    raise exception 'unknown delivery status %', a.status using errcode = '22023';
  end if;

  if s.last_activity < p_now - c_activity_step then
    update public.whatsapp_sessions set last_activity = p_now where id = s.id;
  end if;

  select * into m from public.whatsapp_messages
  where wpp_message_id = a.wpp_message_id and whatsapp_session_id = s.id
    and direction = 'outbound'
  for update;
  if not found then
    -- The send's answer never came back (a timeout): this ack says it went out after all. It
    -- names WhatsApp's canonical id of the contact, which may differ from the number sent to.
    -- A text is matched by its body. A file's message reports the file's digest (filehash)
    -- and its caption, never the file as the body (a preview, or the whole file under
    -- autoDownload): the same file first, then the same caption; a file sent without one
    -- shows the library's stand-in (its name), so it takes any caption.
    v_key := public.gateway_contact_key(s.id, a.phone, a.lid);
    v_media := coalesce(a.message_type, 'chat') <> 'chat';
    select * into m from public.whatsapp_messages o
    where o.whatsapp_session_id = s.id and o.direction = 'outbound'
      and o.wpp_message_id is null
      and (o.send_state in ('pending', 'unknown', 'retryable')
           or (o.status = 'failed' and o.error_code = 'unknown_recipient'))
      and public.gateway_contact_key(s.id, o.phone, o.contact_lid) = v_key
      and case when v_media
            then o.message_type <> 'chat'
              and (o.sha256 = a.sha256 or o.body = coalesce(a.body, '') or o.body = '')
            else o.message_type = 'chat' and o.body = a.body end
    order by coalesce(o.sha256 = a.sha256, false) desc,
      o.body = coalesce(a.body, '') desc,
      o.created_at
    limit 1
    for update;
    if not found then
      return jsonb_build_object('changed', false);
    end if;
    v_matched := true;
    m.wpp_message_id := a.wpp_message_id;
    m.phone := coalesce(a.phone, m.phone);
    m.contact_lid := coalesce(a.lid, m.contact_lid);
    m.send_state := 'done';
    m.lease_until := null;
    m.error_code := null;
    if m.status = 'failed' then
      m.status := 'queued';
    end if;
  end if;

  -- Forward only: queued < sent < delivered < read; failed only before delivery, and final.
  v_target := m.status;
  if a.status = 'failed' then
    if m.status in ('queued', 'sent') then
      v_target := 'failed';
      m.failure_code := a.failure_code;
    end if;
  elsif m.status <> 'failed'
      and public.gateway_message_rank(a.status) > public.gateway_message_rank(m.status) then
    v_target := a.status;
  end if;

  if not v_matched and v_target = m.status then
    return jsonb_build_object('changed', false);
  end if;

  update public.whatsapp_messages set
    status = v_target,
    wpp_message_id = m.wpp_message_id,
    phone = m.phone,
    contact_lid = m.contact_lid,
    failure_code = m.failure_code,
    send_state = m.send_state,
    lease_until = m.lease_until,
    error_code = m.error_code,
    updated_at = p_now
  where id = m.id;
  return jsonb_build_object('changed', true, 'matched', v_matched);
end
$$;

comment on function public.gateway_store_ack is
  'Moves an outbound message forward (sent, delivered, read; failed only before delivery), '
  'never back, whatever order acks arrive in; matches an ack to a send whose answer never '
  'came by the contact (gateway_contact_key) and the text, or a file''s digest and caption.';


create function public.gateway_apply_ack(
  p_ack jsonb,
  p_now timestamptz default now()
) returns jsonb
language plpgsql
set search_path = ''
as $$
declare
  a constant public.gateway_ack := jsonb_populate_record(null::public.gateway_ack, p_ack);
  s public.whatsapp_sessions;
begin
  select * into s from public.whatsapp_sessions where session_id = a.session_name for update;
  if not found then
    return null;
  end if;
  return public.gateway_store_ack(s, a, p_now);
end
$$;

comment on function public.gateway_apply_ack is
  'gateway_store_ack for the session the ack names, locked; null if there is none.';



create function public.gateway_log_event(
  p_session public.whatsapp_sessions,
  p_event text,
  p_dedup_key text,
  p_payload jsonb,
  p_now timestamptz
) returns bigint
language plpgsql
set search_path = ''
as $$
declare
  v_seq bigint;
begin
  if exists (select 1 from public.whatsapp_events
             where whatsapp_session_id = p_session.id and dedup_key = p_dedup_key) then
    return null;
  end if;
  insert into public.whatsapp_event_seqs as q (whatsapp_session_id, last_seq)
  values (p_session.id, 1)
  on conflict (whatsapp_session_id) do update set last_seq = q.last_seq + 1
  returning last_seq into v_seq;
  insert into public.whatsapp_events (
    user_id, whatsapp_session_id, seq, event, dedup_key, payload, received_at
  ) values (p_session.user_id, p_session.id, v_seq, p_event, p_dedup_key, p_payload, p_now);
  return v_seq;
end
$$;

comment on function public.gateway_log_event is
  'Appends an event to the session''s log under the next seq, once per dedup key; returns its '
  'seq, or null when that key is logged already.';



create function public.gateway_ingest_event(
  p_event jsonb,
  p_qr_first_ttl_s integer default 60,
  p_qr_next_ttl_s integer default 20,
  p_now timestamptz default now()
) returns jsonb
language plpgsql
set search_path = ''
as $$
declare
  e constant public.gateway_host_event :=
    jsonb_populate_record(null::public.gateway_host_event, p_event);
  s public.whatsapp_sessions;
  v_seq bigint;
  v_key text;
  v_result jsonb;
  v_changed boolean := false;
  v_durable text;
  v_lookup jsonb;
  v_media jsonb;
  v_held boolean;
begin
  if e.kind not in ('session', 'inbound', 'ack', 'change', 'group', 'none') then
    raise exception 'unknown event kind %', e.kind using errcode = '22023';
  end if;
  -- Only what exists nowhere else waits for its commit to reach the disk (see the end). The
  -- rest commits asynchronously: a crash of the database server within a few hundred
  -- milliseconds could lose it, never half of it, and something else puts it right again: the
  -- next event, the next ack or status?refresh=true a session or an ack; reconcile an incoming
  -- message, which the host keeps and reconcile reads back past its mark (a mark is committed
  -- durably, so it never passes a message whose commit a crash could still lose).
  v_durable := current_setting('synchronous_commit');
  perform set_config('synchronous_commit', 'off', true);

  select * into s from public.whatsapp_sessions where session_id = e.session_name for update;
  if not found then
    return jsonb_build_object('stored', false, 'reason', 'unknown_session');
  end if;
  -- A session moved to another host no longer listens to the old one.
  if e.host_id is not null and s.host_id is distinct from e.host_id then
    return jsonb_build_object('stored', false, 'reason', 'other_host');
  end if;
  -- An earlier attempt's late session events (a logout or a QR still in flight when the user
  -- linked again) must not touch the new one: the webhook URL of each attempt names it. Its
  -- messages and acks are facts all the same. A host that returned early from a start keeps
  -- posting to the URL of the attempt that launched its browser (host_attempt): those events
  -- are the session's current ones.
  if e.attempt is not null and e.attempt < s.attempt and e.kind = 'session'
      and e.attempt is distinct from s.host_attempt then
    return jsonb_build_object('stored', false, 'reason', 'other_attempt');
  end if;
  -- Whether the held attempt's browser is still the session's depends on the host's answer to
  -- the start under way: its session events wait for that answer (see gateway_apply_host_state).
  v_held := e.attempt is not null and e.attempt < s.attempt and e.kind = 'session'
    and s.held_updates is not null;
  -- The same event twice within one attempt is a duplicate; in the next attempt (a re-link
  -- sends the same status-find events again) it is new.
  v_key := s.attempt::text || ':' || e.dedup_key;
  v_seq := public.gateway_log_event(s, e.event, v_key, e.payload, p_now);
  if v_seq is null then
    return jsonb_build_object('stored', false, 'reason', 'duplicate');
  end if;

  if v_held then
    update public.whatsapp_sessions set held_updates = held_updates || jsonb_build_array(e.args)
    where id = s.id;
  elsif e.kind = 'session' then
    v_result := public.gateway_apply_host_state(e.args, p_qr_first_ttl_s, p_qr_next_ttl_s, p_now);
    v_changed := coalesce((v_result ->> 'changed')::boolean, false);
  elsif e.kind = 'inbound' then
    v_result := public.gateway_store_inbound(s,
      jsonb_populate_record(null::public.gateway_inbound_message, e.args), p_now);
    v_changed := coalesce((v_result ->> 'stored')::boolean, false);
    if jsonb_typeof(v_result -> 'media') = 'object' then
      v_media := v_result -> 'media';  -- a file due to fetch: the media function's
    end if;
    if v_result ->> 'lid_lookup' is not null then
      -- What the function needs to ask the host for the number behind the sender's LID.
      v_lookup := jsonb_build_object('lid', v_result ->> 'lid_lookup')
        || public.gateway_host_access(s);
    end if;
  elsif e.kind = 'ack' then
    v_result := public.gateway_store_ack(s,
      jsonb_populate_record(null::public.gateway_ack, e.args), p_now);
    v_changed := coalesce((v_result ->> 'changed')::boolean, false);
  elsif e.kind = 'change' then
    -- An edit, a deletion or a reaction (the conversations migration).
    v_result := public.gateway_apply_change(e.args, p_now);
    v_changed := coalesce((v_result ->> 'changed')::boolean, false);
  elsif e.kind = 'group' then
    v_result := public.gateway_record_group(e.args, p_now);
    v_changed := v_result is not null;
  end if;

  -- An ack that is the only record that a send whose answer never came went out (without it,
  -- a retry after the lease would send the message again) commits as the database is
  -- configured to.
  if coalesce((v_result ->> 'matched')::boolean, false) then
    perform set_config('synchronous_commit', v_durable, true);
  end if;

  return jsonb_build_object('stored', true, 'seq', v_seq, 'changed', v_changed,
    'lid_lookup', v_lookup, 'media', v_media);
end
$$;

comment on function public.gateway_ingest_event is
  'Logs a host event once per session (deduplicated by its dedup_key, numbered by seq) and '
  'applies it (session state, an inbound message, an ack, a change of a message or of a '
  'group), all in one transaction.';


revoke execute on function
  public.gateway_message_rank(text),
  public.gateway_message_completeness(text),
  public.gateway_br_twin(text),
  public.gateway_contact_phone(uuid, text, text),
  public.gateway_send_tokens(public.whatsapp_sessions, double precision, double precision,
    timestamptz),
  public.gateway_take_token(public.whatsapp_sessions, double precision, double precision,
    timestamptz),
  public.gateway_open_send(public.gateway_outbound_request, timestamptz),
  public.gateway_lock_idempotency_key(uuid, text),
  public.gateway_settle_unconfirmed(uuid, timestamptz),
  public.gateway_send_session(public.whatsapp_sessions, timestamptz),
  public.gateway_take_send(uuid, integer, timestamptz),
  public.gateway_begin_send(jsonb, double precision, double precision, integer, timestamptz),
  public.gateway_finish_send(jsonb, timestamptz),
  public.gateway_hold_send(uuid, integer, integer, timestamptz),
  public.gateway_store_inbound(public.whatsapp_sessions, public.gateway_inbound_message,
    timestamptz),
  public.gateway_record_inbound(jsonb, timestamptz),
  public.gateway_remember_contact(text, text, text, timestamptz),
  public.gateway_store_ack(public.whatsapp_sessions, public.gateway_ack, timestamptz),
  public.gateway_apply_ack(jsonb, timestamptz),
  public.gateway_contact_key(uuid, text, text),
  public.gateway_log_event(public.whatsapp_sessions, text, text, jsonb, timestamptz),
  public.gateway_ingest_event(jsonb, integer, integer, timestamptz)
  from public, anon, authenticated;
-- service_role, which the functions call as, runs every function of the gateway.
grant execute on all functions in schema public to service_role;
