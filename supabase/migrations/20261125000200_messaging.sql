-- Messaging: the outbox with idempotent sends, the per-session sending governor, inbound
-- messages stored once, and delivery acks that only move forward.

alter table public.whatsapp_messages
  add column message_type text not null default 'chat',
  add column origin text check (origin in ('client', 'owner')),
  add column idempotency_key text check (char_length(idempotency_key) between 1 and 255),
  add column request_hash text,
  add column send_state text check (send_state in ('pending', 'unknown', 'retryable', 'done')),
  add column lease_until timestamptz,
  add column attempts integer not null default 0,
  add column error_code text;

comment on column public.whatsapp_messages.origin is
  'Who wrote a message that did not come through send-message: owner (the account''s own '
  'number or device) or client.';
comment on column public.whatsapp_messages.send_state is
  'Outbound only: pending (an attempt holds the lease), unknown (the host took the request '
  'and did not answer), retryable (the host refused before sending), done.';

create unique index whatsapp_messages_idempotency_idx
  on public.whatsapp_messages (user_id, idempotency_key)
  where idempotency_key is not null;

-- Outbound rows still waiting for the host's message id, matched when a late ack arrives.
create index whatsapp_messages_unmatched_idx
  on public.whatsapp_messages (whatsapp_session_id, phone)
  where wpp_message_id is null and direction = 'outbound';

-- The sending governor's token bucket, one per session.
alter table public.whatsapp_sessions
  add column send_tokens double precision,
  add column send_tokens_at timestamptz;


create function public.gateway_message_rank(p_status text) returns integer
language sql
immutable
as $$
  select case p_status
    when 'queued' then 0 when 'sent' then 1 when 'delivered' then 2 when 'read' then 3
    else null end
$$;


create function public.gateway_begin_send(
  p_user_id uuid,
  p_session_name text,
  p_idempotency_key text,
  p_request_hash text,
  p_phone text,
  p_body text,
  p_contact_name text,
  p_burst double precision,
  p_rate_per_s double precision,
  p_lease_s integer,
  p_now timestamptz default now()
) returns jsonb
language plpgsql
set search_path = ''
as $$
declare
  s public.whatsapp_sessions;
  m public.whatsapp_messages;
  v_token text;
  v_tokens double precision;
begin
  -- Every send of a session takes the session's row lock first: concurrent requests with one
  -- key, and the token bucket, are decided one at a time.
  select * into s from public.whatsapp_sessions
  where session_id = p_session_name and user_id = p_user_id
  for update;

  if p_idempotency_key is not null then
    select * into m from public.whatsapp_messages
    where user_id = p_user_id and idempotency_key = p_idempotency_key;
    if found then
      if m.request_hash is distinct from p_request_hash then
        return jsonb_build_object('outcome', 'conflict');
      end if;
      if m.send_state = 'done' or m.wpp_message_id is not null then
        return jsonb_build_object('outcome', 'replay', 'message', to_jsonb(m));
      end if;
      if m.lease_until > p_now then
        return jsonb_build_object('outcome', 'in_flight', 'message', to_jsonb(m));
      end if;
      -- An earlier attempt failed before sending, or its lease ran out without the host's
      -- message id ever arriving: this attempt finishes it.
      if s.id is null or s.status <> 'connected' then
        return jsonb_build_object('outcome', 'not_connected');
      end if;
      update public.whatsapp_messages set
        status = 'queued', send_state = 'pending', error_code = null,
        lease_until = p_now + make_interval(secs => p_lease_s),
        attempts = attempts + 1, updated_at = p_now
      where id = m.id
      returning * into m;
      select host_token into v_token from public.whatsapp_session_secrets where session_id = s.id;
      return jsonb_build_object('outcome', 'send', 'message', to_jsonb(m), 'host_token', v_token);
    end if;
  end if;

  if s.id is null or s.status <> 'connected' then
    return jsonb_build_object('outcome', 'not_connected');
  end if;

  v_tokens := least(
    p_burst,
    coalesce(s.send_tokens, p_burst)
      + greatest(0, extract(epoch from p_now - coalesce(s.send_tokens_at, p_now))) * p_rate_per_s
  );
  if v_tokens < 1 then
    update public.whatsapp_sessions set send_tokens = v_tokens, send_tokens_at = p_now
    where id = s.id;
    return jsonb_build_object(
      'outcome', 'rate_limited', 'retry_after', ceil((1 - v_tokens) / p_rate_per_s)
    );
  end if;
  update public.whatsapp_sessions set
    send_tokens = v_tokens - 1, send_tokens_at = p_now, last_activity = p_now
  where id = s.id;

  insert into public.whatsapp_messages (
    user_id, whatsapp_session_id, direction, phone, contact_name, body, status,
    idempotency_key, request_hash, send_state, lease_until, attempts, created_at, updated_at
  ) values (
    p_user_id, s.id, 'outbound', p_phone, p_contact_name, p_body, 'queued',
    p_idempotency_key, p_request_hash, 'pending', p_now + make_interval(secs => p_lease_s), 1,
    p_now, p_now
  )
  returning * into m;

  select host_token into v_token from public.whatsapp_session_secrets where session_id = s.id;
  return jsonb_build_object('outcome', 'send', 'message', to_jsonb(m), 'host_token', v_token);
end
$$;

comment on function public.gateway_begin_send is
  'Decides a send before the host is called: replays an idempotent retry, refuses a reused key '
  'with another body, a disconnected session or an empty token bucket, else writes the outbox '
  'row (queued, with a lease) and returns it with the session''s encrypted host token.';


create function public.gateway_finish_send(
  p_message_id uuid,
  p_outcome text,
  p_wpp_message_id text default null,
  p_error_code text default null,
  p_session_lost boolean default false,
  p_now timestamptz default now()
) returns jsonb
language plpgsql
set search_path = ''
as $$
declare
  m public.whatsapp_messages;
begin
  if p_outcome not in ('sent', 'failed', 'retryable', 'unknown') then
    raise exception 'unknown send outcome %', p_outcome using errcode = '22023';
  end if;

  select * into strict m from public.whatsapp_messages where id = p_message_id for update;

  if p_outcome = 'sent' then
    update public.whatsapp_messages set
      wpp_message_id = coalesce(wpp_message_id, p_wpp_message_id),
      status = case when public.gateway_message_rank(status) >= 1 then status else 'sent' end,
      send_state = 'done', lease_until = null, error_code = null, updated_at = p_now
    where id = m.id
    returning * into m;
  elsif m.wpp_message_id is null then
    -- A late ack may already have matched this row; then it was sent after all.
    update public.whatsapp_messages set
      status = case when p_outcome = 'unknown' then 'queued' else 'failed' end,
      send_state = case p_outcome when 'failed' then 'done' else p_outcome end,
      lease_until = case when p_outcome = 'unknown' then lease_until end,
      error_code = p_error_code,
      updated_at = p_now
    where id = m.id
    returning * into m;
  end if;

  if p_session_lost then
    update public.whatsapp_sessions set
      status = 'disconnected', status_reason = 'host_disconnected', disconnected_at = p_now,
      qr_code = null, qr_image = null, qr_expires_at = null, pairing_code = null,
      updated_at = p_now
    where id = m.whatsapp_session_id and status <> 'disconnected';
  end if;

  return jsonb_build_object('message', to_jsonb(m));
end
$$;


create function public.gateway_record_inbound(
  p_session_name text,
  p_wpp_message_id text,
  p_phone text,
  p_body text,
  p_contact_name text,
  p_message_type text,
  p_from_me boolean,
  p_account_phone text,
  p_now timestamptz default now()
) returns jsonb
language plpgsql
set search_path = ''
as $$
declare
  s public.whatsapp_sessions;
  v_id uuid;
  v_origin text;
begin
  select * into s from public.whatsapp_sessions where session_id = p_session_name for update;
  if not found then
    return null;
  end if;

  if p_account_phone is not null and s.phone_number is null and s.status <> 'disconnected' then
    s.phone_number := p_account_phone;
  end if;
  v_origin := case when p_from_me or p_phone = s.phone_number then 'owner' else 'client' end;

  -- from_me: the owner wrote it on their own phone (the host's onselfmessage).
  insert into public.whatsapp_messages (
    user_id, whatsapp_session_id, direction, phone, contact_name, body, status,
    wpp_message_id, message_type, origin, created_at, updated_at
  ) values (
    s.user_id, s.id, case when p_from_me then 'outbound' else 'inbound' end, p_phone,
    p_contact_name, coalesce(p_body, ''), case when p_from_me then 'sent' else 'received' end,
    p_wpp_message_id, coalesce(p_message_type, 'chat'), v_origin, p_now, p_now
  )
  on conflict (wpp_message_id) do nothing
  returning id into v_id;

  update public.whatsapp_sessions set
    phone_number = s.phone_number, last_activity = p_now
  where id = s.id;

  return jsonb_build_object('stored', v_id is not null, 'id', v_id, 'origin', v_origin);
end
$$;

comment on function public.gateway_record_inbound is
  'Stores a message the host reports (incoming, or written on the owner''s phone) once per '
  'host message id, as owner or client by who wrote it.';


create function public.gateway_apply_ack(
  p_session_name text,
  p_wpp_message_id text,
  p_status text,
  p_phone text,
  p_body text,
  p_now timestamptz default now()
) returns jsonb
language plpgsql
set search_path = ''
as $$
declare
  s public.whatsapp_sessions;
  m public.whatsapp_messages;
  v_matched boolean := false;
  v_target text;
begin
  if p_status not in ('sent', 'delivered', 'read', 'failed') then
    raise exception 'unknown delivery status %', p_status using errcode = '22023';
  end if;

  select * into s from public.whatsapp_sessions where session_id = p_session_name for update;
  if not found then
    return null;
  end if;
  update public.whatsapp_sessions set last_activity = p_now where id = s.id;

  select * into m from public.whatsapp_messages
  where wpp_message_id = p_wpp_message_id and whatsapp_session_id = s.id
    and direction = 'outbound'
  for update;
  if not found then
    -- The send's answer never came back (a timeout): this ack says it went out after all.
    select * into m from public.whatsapp_messages
    where whatsapp_session_id = s.id and direction = 'outbound' and wpp_message_id is null
      and phone = p_phone and body = p_body and send_state in ('pending', 'unknown', 'retryable')
    order by created_at
    limit 1
    for update;
    if not found then
      return jsonb_build_object('changed', false);
    end if;
    v_matched := true;
    m.wpp_message_id := p_wpp_message_id;
    m.send_state := 'done';
    m.lease_until := null;
    m.error_code := null;
    if m.status = 'failed' then
      m.status := 'queued';
    end if;
  end if;

  -- Forward only: queued < sent < delivered < read; failed only before delivery, and final.
  v_target := m.status;
  if p_status = 'failed' then
    if m.status in ('queued', 'sent') then
      v_target := 'failed';
    end if;
  elsif m.status <> 'failed'
      and public.gateway_message_rank(p_status) > public.gateway_message_rank(m.status) then
    v_target := p_status;
  end if;

  if not v_matched and v_target = m.status then
    return jsonb_build_object('changed', false);
  end if;

  update public.whatsapp_messages set
    status = v_target,
    wpp_message_id = m.wpp_message_id,
    send_state = m.send_state,
    lease_until = m.lease_until,
    error_code = m.error_code,
    updated_at = p_now
  where id = m.id;
  return jsonb_build_object('changed', true);
end
$$;

comment on function public.gateway_apply_ack is
  'Moves an outbound message forward (sent, delivered, read; failed only before delivery), '
  'never back, whatever order acks arrive in; matches an ack to a send that timed out.';


-- The session and its encrypted host token, for functions that call the host for a user.
create function public.gateway_session_for_host(p_user_id uuid, p_session_name text)
returns jsonb
language sql
stable
set search_path = ''
as $$
  select jsonb_build_object('session', to_jsonb(s), 'host_token', k.host_token)
  from public.whatsapp_sessions s
  left join public.whatsapp_session_secrets k on k.session_id = s.id
  where s.session_id = p_session_name and s.user_id = p_user_id
$$;


-- What the host says now, applied as the truth (status refresh, disconnect): unlike events,
-- this may move a session back, because it is not a late report but a fresh look.
create function public.gateway_repair_session(
  p_session_name text,
  p_status text,
  p_reason text default null,
  p_now timestamptz default now()
) returns jsonb
language plpgsql
set search_path = ''
as $$
declare
  s public.whatsapp_sessions;
begin
  if p_status not in ('disconnected', 'starting', 'pairing', 'connected') then
    raise exception 'unknown session status %', p_status using errcode = '22023';
  end if;
  select * into s from public.whatsapp_sessions where session_id = p_session_name for update;
  if not found then
    return null;
  end if;
  if s.status = p_status then
    return jsonb_build_object('session', to_jsonb(s), 'changed', false);
  end if;
  update public.whatsapp_sessions set
    status = p_status,
    status_reason = case when p_status = 'disconnected' then p_reason end,
    disconnected_at = case when p_status = 'disconnected' then p_now else disconnected_at end,
    connected_at = case when p_status = 'connected' then p_now else connected_at end,
    qr_code = case when p_status = 'pairing' then qr_code end,
    qr_image = case when p_status = 'pairing' then qr_image end,
    qr_expires_at = case when p_status = 'pairing' then qr_expires_at end,
    pairing_code = case when p_status = 'pairing' then pairing_code end,
    last_activity = p_now,
    updated_at = p_now
  where id = s.id
  returning * into s;
  return jsonb_build_object('session', to_jsonb(s), 'changed', true);
end
$$;


revoke execute on function
  public.gateway_begin_send(uuid, text, text, text, text, text, text, double precision,
    double precision, integer, timestamptz),
  public.gateway_finish_send(uuid, text, text, text, boolean, timestamptz),
  public.gateway_record_inbound(text, text, text, text, text, text, boolean, text, timestamptz),
  public.gateway_apply_ack(text, text, text, text, text, timestamptz),
  public.gateway_session_for_host(uuid, text),
  public.gateway_repair_session(text, text, text, timestamptz)
  from public, anon, authenticated;
grant execute on function
  public.gateway_begin_send(uuid, text, text, text, text, text, text, double precision,
    double precision, integer, timestamptz),
  public.gateway_finish_send(uuid, text, text, text, boolean, timestamptz),
  public.gateway_record_inbound(text, text, text, text, text, text, boolean, text, timestamptz),
  public.gateway_apply_ack(text, text, text, text, text, timestamptz),
  public.gateway_session_for_host(uuid, text),
  public.gateway_repair_session(text, text, text, timestamptz)
  to service_role;
