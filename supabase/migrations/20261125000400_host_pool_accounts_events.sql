-- Past one host: a pool of WPPConnect hosts with placement, several WhatsApp accounts per
-- user, and a durable, deduplicated event log.

-- Hosts ---------------------------------------------------------------------------------------

create table public.wpp_hosts (
  id uuid primary key default gen_random_uuid(),
  name text not null unique check (name ~ '^[a-z0-9][a-z0-9-]{0,62}$'),
  url text not null unique check (url ~ '^https?://[^\s]+$'),
  secret_key text not null check (secret_key like 'v1.%'),
  capacity integer not null check (capacity > 0),
  state text not null default 'active' check (state in ('active', 'draining', 'down')),
  last_health_at timestamptz,
  last_health_ok boolean,
  last_error text,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);

comment on table public.wpp_hosts is
  'WPPConnect hosts sessions are placed on. secret_key is the host''s SECRET_KEY, AES-256-GCM '
  'encrypted by the functions. Operators manage it; no client role can read it.';

revoke all on table public.wpp_hosts from anon, authenticated;
grant all on table public.wpp_hosts to service_role;
alter table public.wpp_hosts enable row level security;

-- Sessions: placement and accounts ------------------------------------------------------------

alter table public.whatsapp_sessions
  add column host_id uuid references public.wpp_hosts (id) on delete set null,
  add column account text not null default 'default'
    check (account ~ '^[a-z0-9][a-z0-9-]{0,31}$');

create unique index whatsapp_sessions_user_account_idx
  on public.whatsapp_sessions (user_id, account);
-- Sessions holding a browser on a host: what placement counts against capacity.
create index whatsapp_sessions_host_idx
  on public.whatsapp_sessions (host_id) where status <> 'disconnected';

-- The event log -------------------------------------------------------------------------------

create table public.whatsapp_events (
  id bigint generated always as identity primary key,
  user_id uuid not null references auth.users (id) on delete cascade,
  whatsapp_session_id uuid not null references public.whatsapp_sessions (id) on delete cascade,
  seq bigint not null,
  event text not null,
  dedup_key text not null,
  payload jsonb not null,
  received_at timestamptz not null default now(),
  unique (whatsapp_session_id, seq),
  unique (whatsapp_session_id, dedup_key)
);

comment on table public.whatsapp_events is
  'Every event a host sent, once, numbered per session (seq) in the order it was applied.';

create index whatsapp_events_user_id_idx on public.whatsapp_events (user_id);
create index whatsapp_events_received_at_idx on public.whatsapp_events (received_at);

-- The last sequence number per session, apart from the session row so that numbering events
-- does not publish a session change to every Realtime subscriber.
create table public.whatsapp_event_seqs (
  whatsapp_session_id uuid primary key
    references public.whatsapp_sessions (id) on delete cascade,
  last_seq bigint not null
);

revoke all on table public.whatsapp_events, public.whatsapp_event_seqs from anon, authenticated;
grant select on table public.whatsapp_events to authenticated;
grant all on table public.whatsapp_events, public.whatsapp_event_seqs to service_role;
alter table public.whatsapp_events enable row level security;
alter table public.whatsapp_event_seqs enable row level security;

create policy "users read their own events" on public.whatsapp_events
  for select to authenticated using ((select auth.uid()) = user_id);


-- start-session, with accounts and placement --------------------------------------------------

drop function public.gateway_begin_start(uuid, text, text, text, timestamptz);

create function public.gateway_begin_start(
  p_user_id uuid,
  p_session_name text,
  p_account text,
  p_method text,
  p_max_accounts integer,
  p_default_server_url text,
  p_now timestamptz default now()
) returns jsonb
language plpgsql
set search_path = ''
as $$
declare
  s public.whatsapp_sessions;
  h public.wpp_hosts;
  v_action text;
  v_token text;
  v_opened boolean := false;
begin
  if p_method not in ('qr', 'code') then
    raise exception 'unknown pairing method %', p_method using errcode = '22023';
  end if;

  select * into s from public.whatsapp_sessions where session_id = p_session_name for update;
  if not found then
    -- A new account: one at a time per user, so two concurrent starts can't pass the limit.
    perform pg_advisory_xact_lock(hashtextextended('gateway_accounts:' || p_user_id::text, 0));
    if (select count(*) from public.whatsapp_sessions where user_id = p_user_id)
        >= p_max_accounts then
      return jsonb_build_object('outcome', 'account_limit');
    end if;
    insert into public.whatsapp_sessions (user_id, session_id, account, pairing_method)
    values (p_user_id, p_session_name, p_account, p_method)
    on conflict (session_id) do nothing;
    select * into strict s from public.whatsapp_sessions
    where session_id = p_session_name
    for update;
  end if;

  if s.user_id <> p_user_id or s.account <> p_account then
    raise exception 'session belongs to another user or account' using errcode = '42501';
  end if;

  if s.status = 'connected' then
    v_action := 'none';
  elsif s.status = 'pairing' and s.pairing_method = p_method and (
      (p_method = 'qr' and s.qr_code is not null and s.qr_expires_at > p_now)
      or (p_method = 'code' and s.pairing_code is not null)) then
    v_action := 'none';
  elsif s.status in ('starting', 'pairing') and s.pairing_method <> p_method then
    v_action := 'restart';
  else
    v_action := 'start';
  end if;

  if v_action = 'start' and s.status = 'disconnected' then
    -- A new attempt needs a host: its own if that one is active and has room, else the
    -- active host with the most free capacity. Placements are decided one at a time.
    if exists (select 1 from public.wpp_hosts) then
      perform pg_advisory_xact_lock(hashtextextended('gateway_placement', 0));
      select * into h from public.wpp_hosts c
      where c.state = 'active'
        and c.capacity > (select count(*) from public.whatsapp_sessions o
                          where o.host_id = c.id and o.status <> 'disconnected')
      order by (c.id = s.host_id) desc nulls last,
        c.capacity - (select count(*) from public.whatsapp_sessions o
                      where o.host_id = c.id and o.status <> 'disconnected') desc,
        c.id
      limit 1;
      if not found then
        return jsonb_build_object('outcome', 'no_capacity');
      end if;
      s.host_id := h.id;
      s.server_url := h.url;
    else
      s.host_id := null;
      s.server_url := p_default_server_url;
    end if;
  end if;

  if v_action = 'restart' or (v_action = 'start' and s.status = 'disconnected') then
    v_opened := s.status = 'disconnected';
    update public.whatsapp_sessions set
      status = 'starting',
      pairing_method = p_method,
      qr_code = null, qr_image = null, qr_expires_at = null, qr_updated_at = null, qr_count = 0,
      pairing_code = null,
      status_reason = null,
      host_id = s.host_id,
      server_url = s.server_url,
      last_activity = p_now,
      updated_at = p_now
    where id = s.id
    returning * into s;
  end if;

  select host_token into v_token from public.whatsapp_session_secrets where session_id = s.id;

  return jsonb_build_object(
    'outcome', 'ok', 'session', to_jsonb(s), 'action', v_action, 'opened', v_opened,
    'host_token', v_token, 'host', public.gateway_host_of(s.host_id)
  );
end
$$;


-- The host a session lives on, for the functions that call it (null: the default host).
create function public.gateway_host_of(p_host_id uuid) returns jsonb
language sql
stable
set search_path = ''
as $$
  select jsonb_build_object('id', h.id, 'url', h.url, 'secret_key', h.secret_key)
  from public.wpp_hosts h
  where h.id = p_host_id
$$;


drop function public.gateway_session_for_host(uuid, text);

create function public.gateway_session_for_host(p_user_id uuid, p_session_name text)
returns jsonb
language sql
stable
set search_path = ''
as $$
  select jsonb_build_object(
    'session', to_jsonb(s), 'host_token', k.host_token, 'host', public.gateway_host_of(s.host_id))
  from public.whatsapp_sessions s
  left join public.whatsapp_session_secrets k on k.session_id = s.id
  where s.session_id = p_session_name and s.user_id = p_user_id
$$;


-- send-message needs the session's host too -------------------------------------------------

create or replace function public.gateway_begin_send(
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
      return jsonb_build_object('outcome', 'send', 'message', to_jsonb(m), 'host_token', v_token,
        'host', public.gateway_host_of(s.host_id));
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
  return jsonb_build_object('outcome', 'send', 'message', to_jsonb(m), 'host_token', v_token,
    'host', public.gateway_host_of(s.host_id));
end
$$;


-- Ingesting a host event: logged once, then applied, in one transaction ----------------------

create function public.gateway_ingest_event(
  p_session_name text,
  p_host_id uuid,
  p_event text,
  p_dedup_key text,
  p_payload jsonb,
  p_kind text,
  p_args jsonb,
  p_qr_first_ttl_s integer default 60,
  p_qr_next_ttl_s integer default 20,
  p_now timestamptz default now()
) returns jsonb
language plpgsql
set search_path = ''
as $$
declare
  s public.whatsapp_sessions;
  v_seq bigint;
  v_result jsonb;
  v_changed boolean := false;
begin
  if p_kind not in ('session', 'inbound', 'ack', 'none') then
    raise exception 'unknown event kind %', p_kind using errcode = '22023';
  end if;

  select * into s from public.whatsapp_sessions where session_id = p_session_name for update;
  if not found then
    return jsonb_build_object('stored', false, 'reason', 'unknown_session');
  end if;
  -- A session moved to another host no longer listens to the old one.
  if p_host_id is not null and s.host_id is distinct from p_host_id then
    return jsonb_build_object('stored', false, 'reason', 'other_host');
  end if;
  if exists (select 1 from public.whatsapp_events
             where whatsapp_session_id = s.id and dedup_key = p_dedup_key) then
    return jsonb_build_object('stored', false, 'reason', 'duplicate');
  end if;

  insert into public.whatsapp_event_seqs as q (whatsapp_session_id, last_seq)
  values (s.id, 1)
  on conflict (whatsapp_session_id) do update set last_seq = q.last_seq + 1
  returning last_seq into v_seq;

  insert into public.whatsapp_events (
    user_id, whatsapp_session_id, seq, event, dedup_key, payload, received_at
  ) values (s.user_id, s.id, v_seq, p_event, p_dedup_key, p_payload, p_now);

  if p_kind = 'session' then
    v_result := public.gateway_apply_host_state(
      p_session_name, p_args ->> 'status', p_args ->> 'qr_code', p_args ->> 'qr_image',
      p_args ->> 'pairing_code', null, p_args ->> 'reason', null,
      p_qr_first_ttl_s, p_qr_next_ttl_s, p_now);
    v_changed := coalesce((v_result ->> 'changed')::boolean, false);
  elsif p_kind = 'inbound' then
    v_result := public.gateway_record_inbound(
      p_session_name, p_args ->> 'wpp_message_id', p_args ->> 'phone', p_args ->> 'body',
      p_args ->> 'contact_name', p_args ->> 'message_type', (p_args ->> 'from_me')::boolean,
      p_args ->> 'account_phone', p_now);
    v_changed := coalesce((v_result ->> 'stored')::boolean, false);
  elsif p_kind = 'ack' then
    v_result := public.gateway_apply_ack(
      p_session_name, p_args ->> 'wpp_message_id', p_args ->> 'status', p_args ->> 'phone',
      p_args ->> 'body', p_now);
    v_changed := coalesce((v_result ->> 'changed')::boolean, false);
  end if;

  return jsonb_build_object('stored', true, 'seq', v_seq, 'changed', v_changed);
end
$$;

comment on function public.gateway_ingest_event is
  'Logs a host event once per session (deduplicated by p_dedup_key, numbered by seq) and '
  'applies it (session state, an inbound message or an ack), all in one transaction.';


-- Placement bookkeeping for the purge's host checks -------------------------------------------

create function public.gateway_host_sessions(p_host_id uuid, p_idle_before timestamptz)
returns jsonb
language sql
stable
set search_path = ''
as $$
  select coalesce(jsonb_agg(jsonb_build_object(
    'session_id', s.session_id, 'host_token', k.host_token) order by s.session_id), '[]')
  from public.whatsapp_sessions s
  left join public.whatsapp_session_secrets k on k.session_id = s.id
  where s.host_id = p_host_id and s.status <> 'disconnected'
    and (p_idle_before is null or s.last_activity < p_idle_before)
$$;

-- A host marked down: its sessions are disconnected, so their next start places them anew.
create function public.gateway_mark_host(
  p_host_id uuid,
  p_ok boolean,
  p_error text,
  p_mark_down boolean,
  p_now timestamptz default now()
) returns jsonb
language plpgsql
set search_path = ''
as $$
declare
  v_disconnected integer := 0;
begin
  update public.wpp_hosts set
    last_health_at = p_now, last_health_ok = p_ok, last_error = p_error,
    state = case when p_mark_down then 'down' else state end,
    updated_at = p_now
  where id = p_host_id;
  if p_mark_down then
    update public.whatsapp_sessions set
      status = 'disconnected', status_reason = 'host_down', disconnected_at = p_now,
      qr_code = null, qr_image = null, qr_expires_at = null, pairing_code = null,
      updated_at = p_now
    where host_id = p_host_id and status <> 'disconnected';
    get diagnostics v_disconnected = row_count;
  end if;
  return jsonb_build_object('sessions_disconnected', v_disconnected);
end
$$;


-- The purge also forgets old events ------------------------------------------------------------

create function public.gateway_purge_events(
  p_retention_s integer,
  p_batch_size integer,
  p_now timestamptz default now()
) returns integer
language plpgsql
set search_path = ''
as $$
declare
  v_deleted integer;
begin
  delete from public.whatsapp_events e
  using (
    select id from public.whatsapp_events
    where received_at < p_now - make_interval(secs => p_retention_s)
    order by received_at
    limit p_batch_size
    for update skip locked
  ) old
  where e.id = old.id;
  get diagnostics v_deleted = row_count;
  return v_deleted;
end
$$;


-- Purged sessions bring their host along, for closing them there.
create or replace function public.gateway_purge_batch(
  p_qr_ttl_s integer,
  p_stale_after_s integer,
  p_batch_size integer,
  p_now timestamptz default now()
) returns jsonb
language plpgsql
set search_path = ''
as $$
declare
  v_qr_cleared integer;
  v_deleted jsonb;
begin
  with old_qr as (
    select id from public.whatsapp_sessions
    where qr_code is not null and qr_updated_at < p_now - make_interval(secs => p_qr_ttl_s)
    order by qr_updated_at
    limit p_batch_size
    for update skip locked
  )
  update public.whatsapp_sessions s set
    qr_code = null, qr_image = null, qr_expires_at = null, updated_at = p_now
  from old_qr
  where s.id = old_qr.id;
  get diagnostics v_qr_cleared = row_count;

  with stale as (
    select s.id, s.session_id, s.host_id, k.host_token
    from public.whatsapp_sessions s
    left join public.whatsapp_session_secrets k on k.session_id = s.id
    where s.status = 'disconnected'
      and coalesce(s.disconnected_at, s.updated_at) < p_now - make_interval(secs => p_stale_after_s)
    order by coalesce(s.disconnected_at, s.updated_at)
    limit p_batch_size
    for update of s skip locked
  ), gone as (
    delete from public.whatsapp_sessions s
    using stale
    where s.id = stale.id
    returning stale.session_id, stale.host_id, stale.host_token
  )
  select coalesce(jsonb_agg(jsonb_build_object(
    'session_id', session_id, 'host_id', host_id, 'host_token', host_token)), '[]')
  into v_deleted
  from gone;

  return jsonb_build_object('qr_cleared', v_qr_cleared, 'deleted', v_deleted);
end
$$;


revoke execute on function
  public.gateway_begin_start(uuid, text, text, text, integer, text, timestamptz),
  public.gateway_host_of(uuid),
  public.gateway_session_for_host(uuid, text),
  public.gateway_ingest_event(text, uuid, text, text, jsonb, text, jsonb, integer, integer,
    timestamptz),
  public.gateway_host_sessions(uuid, timestamptz),
  public.gateway_mark_host(uuid, boolean, text, boolean, timestamptz),
  public.gateway_purge_events(integer, integer, timestamptz)
  from public, anon, authenticated;
grant execute on function
  public.gateway_begin_start(uuid, text, text, text, integer, text, timestamptz),
  public.gateway_host_of(uuid),
  public.gateway_session_for_host(uuid, text),
  public.gateway_ingest_event(text, uuid, text, text, jsonb, text, jsonb, integer, integer,
    timestamptz),
  public.gateway_host_sessions(uuid, timestamptz),
  public.gateway_mark_host(uuid, boolean, text, boolean, timestamptz),
  public.gateway_purge_events(integer, integer, timestamptz)
  to service_role;


-- Operators manage the pool through these (wa_gateway.hosts_cli, make host-add) ---------------

create function public.gateway_hosts() returns jsonb
language sql
stable
set search_path = ''
as $$
  select coalesce(jsonb_agg(jsonb_build_object(
    'id', h.id, 'name', h.name, 'url', h.url, 'secret_key', h.secret_key,
    'capacity', h.capacity, 'state', h.state,
    'sessions', (select count(*) from public.whatsapp_sessions o
                 where o.host_id = h.id and o.status <> 'disconnected'),
    'last_health_at', h.last_health_at, 'last_health_ok', h.last_health_ok,
    'last_error', h.last_error) order by h.name), '[]')
  from public.wpp_hosts h
$$;

create function public.gateway_put_host(
  p_name text,
  p_url text,
  p_secret_key text,
  p_capacity integer,
  p_state text
) returns jsonb
language plpgsql
set search_path = ''
as $$
declare
  h public.wpp_hosts;
begin
  if p_url is null then
    -- Changing an existing host: only what is given.
    update public.wpp_hosts set
      secret_key = coalesce(p_secret_key, secret_key),
      capacity = coalesce(p_capacity, capacity),
      state = coalesce(p_state, state),
      updated_at = now()
    where name = p_name
    returning * into h;
    if not found then
      raise exception 'no host named %', p_name using errcode = 'P0001';
    end if;
  else
    insert into public.wpp_hosts (name, url, secret_key, capacity, state)
    values (p_name, p_url, p_secret_key, p_capacity, coalesce(p_state, 'active'))
    on conflict (name) do update set
      url = excluded.url,
      secret_key = excluded.secret_key,
      capacity = excluded.capacity,
      state = excluded.state,
      updated_at = now()
    returning * into h;
  end if;
  return jsonb_build_object('id', h.id, 'name', h.name, 'url', h.url,
    'capacity', h.capacity, 'state', h.state);
end
$$;

create function public.gateway_remove_host(p_name text) returns boolean
language plpgsql
set search_path = ''
as $$
declare
  v_id uuid;
begin
  select id into v_id from public.wpp_hosts where name = p_name;
  if v_id is null then
    return false;
  end if;
  if exists (select 1 from public.whatsapp_sessions
             where host_id = v_id and status <> 'disconnected') then
    raise exception 'host % still holds sessions: drain it first', p_name using errcode = 'P0001';
  end if;
  delete from public.wpp_hosts where id = v_id;
  return true;
end
$$;

revoke execute on function
  public.gateway_hosts(),
  public.gateway_put_host(text, text, text, integer, text),
  public.gateway_remove_host(text)
  from public, anon, authenticated;
grant execute on function
  public.gateway_hosts(),
  public.gateway_put_host(text, text, text, integer, text),
  public.gateway_remove_host(text)
  to service_role;
