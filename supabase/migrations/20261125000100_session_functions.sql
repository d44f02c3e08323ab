-- Session state transitions. Each is one SQL function, so a function call is one database round
-- trip and one transaction, and every rule about how a session's state may change lives here.
--
-- Within one start (an "epoch", opened by gateway_begin_start) a session only moves forward:
--   starting -> pairing -> starting (syncing) -> connected -> disconnected
-- A login (a scan, or a saved login restored) is `starting` with status_reason 'syncing' until
-- the host has the session's client (inChat): the host cannot use it before.
-- Host events arrive late, out of order and twice; an event that would move a session backwards
-- (a late QR after connecting, anything after a disconnect) changes nothing, and so does a
-- duplicate. Only a new start leaves 'disconnected'.
--
-- Reads that run on every call are PL/pgSQL even where one SELECT would do: a SQL-language
-- function that cannot be inlined (it has a FROM clause, or a SET clause) is parsed and planned
-- again on every call, while PL/pgSQL keeps its plan for the connection (a status read: 0.29 ->
-- 0.20 ms on the local socket).

-- Records ----------------------------------------------------------------------------------------
-- A function that takes more than a few values takes them as one record, in jsonb, and reads it
-- through the record's type (jsonb_populate_record), once, where the function starts: a key the
-- type has no attribute for would not be read, so every key the functions send is an attribute
-- of the type (the store builds each record in one place, and a test compares the two).

create type public.gateway_start_request as (
  user_id uuid,
  session_name text,
  account text,
  method text,             -- qr or code
  max_accounts integer,    -- the user's limit of accounts
  default_server_url text, -- the host of a session placed nowhere else (no pool)
  logout_settle_s integer, -- after our logout, how long to wait for its browser to close
  stuck_after_s integer    -- a start without progress this long is stalled
);

comment on type public.gateway_start_request is
  'What start-session asks of gateway_begin_start.';

-- What the host said about a session, in the gateway's words (sessions/transitions.py).
create type public.gateway_session_update as (
  session_name text,
  status text,
  qr_code text,
  qr_image text,
  pairing_code text,
  phone_number text,
  reason text,
  host_token text,        -- a new encrypted host token to keep, if the host gave one
  host_attempt integer,   -- the attempt whose webhook URL the host now holds
  start_attempt integer   -- set by a start: this is the host's answer to the start of it
);

comment on type public.gateway_session_update is
  'What the host said about a session, for gateway_apply_host_state.';

create function public.gateway_host_of(p_host_id uuid) returns jsonb
language plpgsql
stable
set search_path = ''
as $$
begin
  return (
    select jsonb_build_object('id', h.id, 'url', h.url, 'secret_key', h.secret_key)
    from public.wpp_hosts h
    where h.id = p_host_id
  );
end
$$;

comment on function public.gateway_host_of is
  'The pool host a session lives on, for the functions that call it (null: the default host).';



create function public.gateway_host_access(p_session public.whatsapp_sessions) returns jsonb
language plpgsql
stable
set search_path = ''
as $$
begin
  return jsonb_build_object(
    'host_token', (select k.host_token from public.whatsapp_session_secrets k
                   where k.session_id = p_session.id),
    'host', public.gateway_host_of(p_session.host_id));
end
$$;

comment on function public.gateway_host_access is
  'What it takes to call a session''s host: its encrypted host token and its host.';



-- A user's rows in a table counted against their limit, one creation at a time per user and
-- table (the user's lock for it, held to the end of the transaction), so two concurrent
-- creations cannot both take the last place.
create function public.gateway_user_at_limit(p_table regclass, p_user_id uuid, p_limit integer)
returns boolean
language plpgsql
set search_path = ''
as $$
declare
  v_count bigint;
begin
  perform pg_advisory_xact_lock(hashtextextended(p_table::text || ':' || p_user_id::text, 0));
  execute format('select count(*) from %s where user_id = $1', p_table)
    into v_count using p_user_id;
  return v_count >= p_limit;
end
$$;

comment on function public.gateway_user_at_limit is
  'Whether a user already has p_limit rows in p_table, under the user''s lock for that table.';



create function public.gateway_session_rank(p_status text, p_reason text) returns integer
language plpgsql
immutable
set search_path = ''
as $$
begin
  return case p_status
    when 'starting' then case when p_reason = 'syncing' then 3 else 1 end
    when 'pairing' then 2
    when 'connected' then 4
    when 'disconnected' then 5
  end;
end
$$;

comment on function public.gateway_session_rank is
  'The order of a session''s states within an attempt: starting < pairing < starting '
  '(syncing: logged in, not usable yet) < connected < disconnected; null for an unknown status.';



create function public.gateway_start_action(
  s public.whatsapp_sessions,
  p_method text,
  p_now timestamptz
) returns text
language plpgsql
stable
set search_path = ''
as $$
begin
  return case
    when s.status = 'connected' then 'none'
    -- Logged in: the host is getting it ready, and a start would only return early.
    when s.status = 'starting' and s.status_reason = 'syncing' then 'none'
    when s.status = 'pairing' and s.pairing_method = p_method and (
        (p_method = 'qr' and s.qr_code is not null and s.qr_expires_at > p_now)
        or (p_method = 'code' and s.pairing_code is not null)) then 'none'
    when s.status in ('starting', 'pairing') and s.pairing_method <> p_method then 'restart'
    else 'start'
  end;
end
$$;

comment on function public.gateway_start_action is
  'What start-session must ask the host for a session: none (connected, syncing, or a valid '
  'QR/code exists), start, or restart (pairing method changed).';



create function public.gateway_begin_start(
  p_start jsonb,
  p_now timestamptz default now()
) returns jsonb
language plpgsql
set search_path = ''
as $$
declare
  r constant public.gateway_start_request :=
    jsonb_populate_record(null::public.gateway_start_request, p_start);
  s public.whatsapp_sessions;
  h public.wpp_hosts;
  v_action text;
  v_opened boolean := false;
  v_host_attempt integer;  -- the attempt whose browser the host may hold as a new one opens
  v_stalled boolean := false;
  v_settle_s double precision;
begin
  if r.method not in ('qr', 'code') then
    raise exception 'unknown pairing method %', r.method using errcode = '22023';
  end if;

  -- The common repeat (connected, or a QR or code still valid) is answered from a plain
  -- read: no row lock, so no write and no wait for the commit to reach the disk.
  select * into s from public.whatsapp_sessions where session_id = r.session_name;
  if found and s.user_id = r.user_id and s.account = r.account
      and public.gateway_start_action(s, r.method, p_now) = 'none' then
    v_action := 'none';
  else
    select * into s from public.whatsapp_sessions where session_id = r.session_name for update;
    if not found then
      -- A new account: one at a time per user, so two concurrent starts can't pass the limit.
      if public.gateway_user_at_limit('public.whatsapp_sessions', r.user_id, r.max_accounts) then
        return jsonb_build_object('outcome', 'account_limit');
      end if;
      insert into public.whatsapp_sessions (user_id, session_id, account, pairing_method)
      values (r.user_id, r.session_name, r.account, r.method)
      on conflict (session_id) do nothing;
      select * into strict s from public.whatsapp_sessions
      where session_id = r.session_name
      for update;
    end if;

    if s.user_id <> r.user_id or s.account <> r.account then
      raise exception 'session belongs to another user or account' using errcode = '42501';
    end if;

    v_action := public.gateway_start_action(s, r.method, p_now);

    -- After our logout the old client closes its browser a second or two later (it polls its
    -- registration each second, then waits a second more), and a start meanwhile would
    -- launch a second browser on the same profile, which fails and sticks. Wait for its
    -- browserClose, for at most logout_settle_s.
    if v_action = 'start' and s.status = 'disconnected' and s.status_reason = 'logged_out' then
      v_settle_s := coalesce(r.logout_settle_s, 0)
        - extract(epoch from p_now - s.disconnected_at);
      if v_settle_s > 0 and not exists (
          select 1 from public.whatsapp_events e
          where e.whatsapp_session_id = s.id and e.received_at >= s.connected_at
            and e.event = 'status-find' and e.payload ->> 'status' = 'browserClose') then
        return jsonb_build_object('outcome', 'wait', 'retry_in', v_settle_s);
      end if;
    end if;

    -- A start that made no progress for stuck_after_s (the host's browser never launched), or
    -- one that reconcile found so: the host's entry is stuck in INITIALIZING.
    v_stalled := (s.status = 'starting' and s.status_reason is null
                  and s.last_activity < p_now - make_interval(secs => coalesce(r.stuck_after_s, 0)))
      or (s.status = 'disconnected' and s.status_reason = 'start_failed');

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
        s.server_url := r.default_server_url;
      end if;
    end if;

    if v_action = 'restart' or (v_action = 'start' and s.status = 'disconnected') then
      v_opened := s.status = 'disconnected';
      -- After a logout the host holds nothing of the session (logout-session removes its entry
      -- at once): the old browser's last events (disconnectedMobile, browserClose, in either
      -- order) count until this attempt opens, and not for it. Otherwise the host may still
      -- hold host_attempt's browser: whether it is the session's depends on the host's answer
      -- to this start (a fresh browser or an early answer), so that attempt's session events
      -- wait for it (held_updates).
      v_host_attempt := case when s.status = 'disconnected' and s.status_reason = 'logged_out'
                             then null else s.host_attempt end;
      update public.whatsapp_sessions set
        status = 'starting',
        attempt = attempt + 1,
        host_attempt = v_host_attempt,
        held_updates = case when v_host_attempt is null then null else '[]'::jsonb end,
        pairing_method = r.method,
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
  end if;

  return jsonb_build_object(
    'outcome', 'ok', 'session', to_jsonb(s), 'action', v_action, 'opened', v_opened,
    'stalled', v_stalled
  ) || public.gateway_host_access(s);
end
$$;

comment on function public.gateway_begin_start is
  'Creates (within the per-user account limit) or reads a session, locking it only when the '
  'host must be asked, places a new attempt on a host of the pool when there is one, and '
  'decides what start-session must ask the host: none (connected, syncing, or a valid QR/code '
  'exists), start, or restart (pairing method changed); wait (our logout''s browser may still '
  'hold the profile: ask again in retry_in seconds); stalled says the start before made no '
  'progress.';



-- Every path into 'disconnected' (a host event, a status refresh, a send that finds the session
-- gone, a host marked down) goes through this one function, so what a disconnect clears is
-- decided once; the table's check constraint refuses a disconnected row that still holds a QR or
-- a pairing code. The linked number goes too: the next link may be another phone, whose number
-- its first message brings. As with any change of status, the disconnect is the session's last
-- activity.
-- A session already disconnected keeps its reason and its disconnected_at, from which the purge
-- counts its age.
create function public.gateway_mark_disconnected(
  p_session_ids uuid[],
  p_reason text,
  p_now timestamptz
) returns setof public.whatsapp_sessions
language sql
set search_path = ''
as $$
  update public.whatsapp_sessions set
    status = 'disconnected',
    status_reason = p_reason,
    disconnected_at = p_now,
    qr_code = null, qr_image = null, qr_expires_at = null, pairing_code = null,
    phone_number = null,
    held_updates = null,
    last_activity = p_now,
    updated_at = p_now
  where id = any(p_session_ids) and status <> 'disconnected'
  returning *
$$;

comment on function public.gateway_mark_disconnected is
  'Marks these sessions disconnected (with p_reason), clearing their QR, pairing code and '
  'linked number; '
  'returns the sessions it changed.';



create function public.gateway_store_host_token(
  p_session_id uuid,
  p_host_token text,
  p_now timestamptz
) returns void
language sql
set search_path = ''
as $$
  insert into public.whatsapp_session_secrets (session_id, host_token, updated_at)
  values (p_session_id, p_host_token, p_now)
  on conflict (session_id) do update
    set host_token = excluded.host_token, updated_at = excluded.updated_at;
$$;

comment on function public.gateway_store_host_token is
  'Keeps a session''s host token (encrypted by the functions), replacing the one it had.';


create function public.gateway_apply_host_state(
  p_update jsonb,
  p_qr_first_ttl_s integer default 60,
  p_qr_next_ttl_s integer default 20,
  p_now timestamptz default now()
) returns jsonb
language plpgsql
set search_path = ''
as $$
declare
  u constant public.gateway_session_update :=
    jsonb_populate_record(null::public.gateway_session_update, p_update);
  s public.whatsapp_sessions;
  n public.whatsapp_sessions;
  v_old integer;
  v_new integer;
  v_held jsonb;
  v_result jsonb;
  v_next jsonb;
begin
  v_new := public.gateway_session_rank(u.status, u.reason);
  if v_new is null then
    raise exception 'unknown session status %', u.status using errcode = '22023';
  end if;

  select * into s from public.whatsapp_sessions where session_id = u.session_name for update;
  if not found then
    return null;
  end if;

  -- The host's answer to the start that opened this attempt decides the session events held
  -- meanwhile (held_updates): after a fresh browser (host_attempt) they were another
  -- browser's, and are dropped; after an early answer the held attempt's browser is the
  -- session's, and they are applied after the answer, in the order they came.
  if u.start_attempt = s.attempt and s.held_updates is not null then
    update public.whatsapp_sessions set held_updates = null where id = s.id;
    v_result := public.gateway_apply_host_state(p_update - 'start_attempt', p_qr_first_ttl_s,
                                                p_qr_next_ttl_s, p_now);
    if u.host_attempt is null then
      for v_held in select value from jsonb_array_elements(s.held_updates) loop
        v_next := public.gateway_apply_host_state(v_held, p_qr_first_ttl_s, p_qr_next_ttl_s,
                                                  p_now);
        v_result := jsonb_build_object('session', v_next -> 'session',
          'changed', (v_result ->> 'changed')::boolean or (v_next ->> 'changed')::boolean);
      end loop;
    end if;
    return v_result;
  end if;

  if u.host_token is not null then
    perform public.gateway_store_host_token(s.id, u.host_token, p_now);
  end if;

  -- Which attempt's webhook URL the host holds is a fact about the host, whatever the status.
  if u.host_attempt is not null and u.host_attempt is distinct from s.host_attempt then
    update public.whatsapp_sessions set host_attempt = u.host_attempt
    where id = s.id
    returning * into s;
  end if;

  v_old := public.gateway_session_rank(s.status, s.status_reason);
  if s.status = 'disconnected' and u.status = 'disconnected' then
    -- browserClose says only that the browser went; the event that says why (the phone
    -- unlinked, a logout...) may arrive after it, and its reason is the one kept.
    if s.status_reason = 'browserClose' and u.reason is not null
        and u.reason <> 'browserClose' then
      update public.whatsapp_sessions set status_reason = u.reason, updated_at = p_now
      where id = s.id
      returning * into n;
      return jsonb_build_object('session', to_jsonb(n), 'changed', true);
    end if;
    return jsonb_build_object('session', to_jsonb(s), 'changed', false);
  end if;
  if s.status = 'disconnected' then
    -- Disconnected is final for the attempt, except where the gateway only inferred the loss
    -- from a look at a host that did not have the session at that moment: the host saying it
    -- has logged the session in (a login, inChat) brings it back.
    if s.status_reason not in ('host_disconnected', 'host_lost_session', 'host_closed',
                               'host_down')
        or v_new < 3 then
      return jsonb_build_object('session', to_jsonb(s), 'changed', false);
    end if;
    v_old := 0;
  end if;
  if v_new < v_old then
    return jsonb_build_object('session', to_jsonb(s), 'changed', false);
  end if;
  if u.status = 'disconnected' then
    select * into n from public.gateway_mark_disconnected(array[s.id], u.reason, p_now);
    return jsonb_build_object('session', to_jsonb(n), 'changed', true);
  end if;

  n := s;
  if v_new > v_old then
    n.status := u.status;
    n.status_reason := case when u.status = 'starting' then u.reason end;
    n.last_activity := p_now;
    if u.status <> 'pairing' then
      n.qr_code := null;
      n.qr_image := null;
      n.qr_expires_at := null;
      n.pairing_code := null;
    end if;
    if u.status = 'connected' then
      n.connected_at := p_now;
    end if;
  end if;

  if n.status = 'pairing' and u.status = 'pairing' then
    if u.qr_code is not null and u.qr_code is distinct from s.qr_code then
      n.qr_code := u.qr_code;
      n.qr_image := u.qr_image;
      n.qr_updated_at := p_now;
      n.qr_expires_at := p_now + make_interval(secs => case when s.qr_count = 0
        then p_qr_first_ttl_s else p_qr_next_ttl_s end);
      n.qr_count := s.qr_count + 1;
      n.last_activity := p_now;
    end if;
    if u.pairing_code is not null and u.pairing_code is distinct from s.pairing_code then
      n.pairing_code := u.pairing_code;
      n.last_activity := p_now;
    end if;
  end if;

  if u.phone_number is not null and n.status <> 'disconnected' then
    n.phone_number := u.phone_number;
  end if;

  if n is not distinct from s then
    return jsonb_build_object('session', to_jsonb(s), 'changed', false);
  end if;

  update public.whatsapp_sessions set
    status = n.status,
    qr_code = n.qr_code,
    qr_image = n.qr_image,
    qr_expires_at = n.qr_expires_at,
    qr_updated_at = n.qr_updated_at,
    qr_count = n.qr_count,
    pairing_code = n.pairing_code,
    phone_number = n.phone_number,
    status_reason = n.status_reason,
    connected_at = n.connected_at,
    disconnected_at = n.disconnected_at,
    last_activity = n.last_activity,
    updated_at = p_now
  where id = s.id
  returning * into n;

  return jsonb_build_object('session', to_jsonb(n), 'changed', true);
end
$$;

comment on function public.gateway_apply_host_state is
  'Applies what the host said about a session (a webhook event or a start/status answer), '
  'moving it only forward within its epoch (a login brings back a session the gateway had '
  'inferred lost); duplicates and late events change nothing; its host_attempt records the '
  'attempt whose webhook URL the host now holds; a start''s answer (start_attempt) settles the '
  'events held while it was under way.';



-- It runs as the caller, who may select only some columns of the table (see the grants in
-- the schema): it names them, since to_jsonb(s) or select * would be refused (42501).
create function public.gateway_get_session(p_session_name text)
returns jsonb
language plpgsql
stable
set search_path = ''
as $$
begin
  return (
    select jsonb_build_object(
      'id', s.id, 'user_id', s.user_id, 'account', s.account, 'session_id', s.session_id,
      'status', s.status, 'status_reason', s.status_reason, 'pairing_method', s.pairing_method,
      'qr_code', s.qr_code, 'qr_image', s.qr_image, 'qr_expires_at', s.qr_expires_at, 'pairing_code', s.pairing_code,
      'phone_number', s.phone_number, 'last_activity', s.last_activity,
      'created_at', s.created_at, 'updated_at', s.updated_at)
    from public.whatsapp_sessions s
    where s.session_id = p_session_name
      and s.user_id = (select auth.uid())
  );
end
$$;

comment on function public.gateway_get_session is
  'The caller''s session of this name (the columns users may read), or null. Runs as the '
  'caller, under RLS.';



create function public.gateway_session_for_host(p_user_id uuid, p_session_name text)
returns jsonb
language plpgsql
stable
set search_path = ''
as $$
begin
  return (
    select jsonb_build_object('session', to_jsonb(s)) || public.gateway_host_access(s)
    from public.whatsapp_sessions s
    where s.session_id = p_session_name and s.user_id = p_user_id
  );
end
$$;

comment on function public.gateway_session_for_host is
  'A user''s session with its encrypted host token and its host, for calls to the host.';



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
  -- A starting session's reason is part of its state (syncing or not); a disconnected one keeps
  -- the reason it went with.
  if s.status = p_status
      and (p_status <> 'starting' or s.status_reason is not distinct from p_reason) then
    return jsonb_build_object('session', to_jsonb(s), 'changed', false);
  end if;
  if p_status = 'disconnected' then
    select * into s from public.gateway_mark_disconnected(array[s.id], p_reason, p_now);
    return jsonb_build_object('session', to_jsonb(s), 'changed', true);
  end if;
  update public.whatsapp_sessions set
    status = p_status,
    status_reason = case when p_status = 'starting' then p_reason end,
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

comment on function public.gateway_repair_session is
  'What the host says now, applied as the truth (status refresh, disconnect): unlike events, '
  'this may move a session back, because it is not a late report but a fresh look.';


revoke execute on function
  public.gateway_user_at_limit(regclass, uuid, integer),
  public.gateway_session_rank(text, text),
  public.gateway_host_of(uuid),
  public.gateway_host_access(public.whatsapp_sessions),
  public.gateway_start_action(public.whatsapp_sessions, text, timestamptz),
  public.gateway_begin_start(jsonb, timestamptz),
  public.gateway_mark_disconnected(uuid[], text, timestamptz),
  public.gateway_store_host_token(uuid, text, timestamptz),
  public.gateway_apply_host_state(jsonb, integer, integer, timestamptz),
  public.gateway_session_for_host(uuid, text),
  public.gateway_repair_session(text, text, text, timestamptz)
  from public, anon, authenticated;
-- service_role, which the functions call as, runs every function of the gateway.
grant execute on all functions in schema public to service_role;

-- Read as the caller: RLS decides, so a user only ever sees their own session.
revoke execute on function public.gateway_get_session(text) from public, anon;
grant execute on function public.gateway_get_session(text) to authenticated, service_role;
