-- Session state transitions. Each is one SQL function, so a function call is one database round
-- trip and one transaction, and every rule about how a session's state may change lives here.
--
-- Within one start (an "epoch", opened by gateway_begin_start) a session only moves forward:
--   starting -> pairing -> connected -> disconnected
-- Host events arrive late, out of order and twice; an event that would move a session backwards
-- (a late QR after connecting, anything after a disconnect) changes nothing, and so does a
-- duplicate. Only a new start leaves 'disconnected'.

create function public.gateway_begin_start(
  p_user_id uuid,
  p_session_name text,
  p_method text,
  p_server_url text,
  p_now timestamptz default now()
) returns jsonb
language plpgsql
set search_path = ''
as $$
declare
  s public.whatsapp_sessions;
  v_action text;
  v_token text;
  v_opened boolean := false;
begin
  if p_method not in ('qr', 'code') then
    raise exception 'unknown pairing method %', p_method using errcode = '22023';
  end if;

  insert into public.whatsapp_sessions (user_id, session_id, pairing_method, server_url)
  values (p_user_id, p_session_name, p_method, p_server_url)
  on conflict (session_id) do nothing;

  select * into strict s from public.whatsapp_sessions
  where session_id = p_session_name
  for update;

  if s.user_id <> p_user_id then
    raise exception 'session belongs to another user' using errcode = '42501';
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

  if v_action = 'restart' or (v_action = 'start' and s.status = 'disconnected') then
    v_opened := s.status = 'disconnected';
    update public.whatsapp_sessions set
      status = 'starting',
      pairing_method = p_method,
      qr_code = null, qr_image = null, qr_expires_at = null, qr_updated_at = null, qr_count = 0,
      pairing_code = null,
      status_reason = null,
      server_url = coalesce(p_server_url, server_url),
      last_activity = p_now,
      updated_at = p_now
    where id = s.id
    returning * into s;
  end if;

  select host_token into v_token from public.whatsapp_session_secrets where session_id = s.id;

  return jsonb_build_object(
    'session', to_jsonb(s), 'action', v_action, 'opened', v_opened, 'host_token', v_token
  );
end
$$;

comment on function public.gateway_begin_start is
  'Creates or locks a user''s session and decides what start-session must ask the host: '
  'none (connected, or a valid QR/code exists), start, or restart (pairing method changed). '
  'Opens a new epoch (status starting) when the session was disconnected.';


create function public.gateway_apply_host_state(
  p_session_name text,
  p_status text,
  p_qr_code text default null,
  p_qr_image text default null,
  p_pairing_code text default null,
  p_phone_number text default null,
  p_reason text default null,
  p_host_token text default null,
  p_qr_first_ttl_s integer default 60,
  p_qr_next_ttl_s integer default 20,
  p_now timestamptz default now()
) returns jsonb
language plpgsql
set search_path = ''
as $$
declare
  s public.whatsapp_sessions;
  n public.whatsapp_sessions;
  v_order constant text[] := array['starting', 'pairing', 'connected', 'disconnected'];
  v_old integer;
  v_new integer;
begin
  v_new := array_position(v_order, p_status);
  if v_new is null then
    raise exception 'unknown session status %', p_status using errcode = '22023';
  end if;

  select * into s from public.whatsapp_sessions where session_id = p_session_name for update;
  if not found then
    return null;
  end if;

  if p_host_token is not null then
    insert into public.whatsapp_session_secrets (session_id, host_token, updated_at)
    values (s.id, p_host_token, p_now)
    on conflict (session_id) do update
      set host_token = excluded.host_token, updated_at = excluded.updated_at;
  end if;

  v_old := array_position(v_order, s.status);
  if s.status = 'disconnected' or v_new < v_old then
    return jsonb_build_object('session', to_jsonb(s), 'changed', false);
  end if;

  n := s;
  if v_new > v_old then
    n.status := p_status;
    n.last_activity := p_now;
    if p_status <> 'pairing' then
      n.qr_code := null;
      n.qr_image := null;
      n.qr_expires_at := null;
      n.pairing_code := null;
    end if;
    if p_status = 'connected' then
      n.connected_at := p_now;
      n.status_reason := null;
    elsif p_status = 'disconnected' then
      n.disconnected_at := p_now;
      n.status_reason := p_reason;
    end if;
  end if;

  if n.status = 'pairing' and p_status = 'pairing' then
    if p_qr_code is not null and p_qr_code is distinct from s.qr_code then
      n.qr_code := p_qr_code;
      n.qr_image := p_qr_image;
      n.qr_updated_at := p_now;
      n.qr_expires_at := p_now + make_interval(secs => case when s.qr_count = 0
        then p_qr_first_ttl_s else p_qr_next_ttl_s end);
      n.qr_count := s.qr_count + 1;
      n.last_activity := p_now;
    end if;
    if p_pairing_code is not null and p_pairing_code is distinct from s.pairing_code then
      n.pairing_code := p_pairing_code;
      n.last_activity := p_now;
    end if;
  end if;

  if p_phone_number is not null and n.status <> 'disconnected' then
    n.phone_number := p_phone_number;
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
  'moving it only forward within its epoch; duplicates and late events change nothing.';


-- Read as the caller: RLS decides, so a user only ever sees their own session.
create function public.gateway_get_session(p_session_name text)
returns jsonb
language sql
stable
as $$
  select to_jsonb(s)
  from public.whatsapp_sessions s
  where s.session_id = p_session_name
    and s.user_id = (select auth.uid())
$$;

comment on function public.gateway_get_session is
  'The caller''s session of this name, or null. Runs as the caller, under RLS.';


revoke execute on function
  public.gateway_begin_start(uuid, text, text, text, timestamptz),
  public.gateway_apply_host_state(text, text, text, text, text, text, text, text, integer, integer,
    timestamptz)
  from public, anon, authenticated;
grant execute on function
  public.gateway_begin_start(uuid, text, text, text, timestamptz),
  public.gateway_apply_host_state(text, text, text, text, text, text, text, text, integer, integer,
    timestamptz)
  to service_role;

revoke execute on function public.gateway_get_session(text) from public, anon;
grant execute on function public.gateway_get_session(text) to authenticated, service_role;
