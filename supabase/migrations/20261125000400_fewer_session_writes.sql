-- Fewer writes per host event. An incoming message or an ack used to rewrite the session row
-- just to move last_activity, one more row version (and one more Realtime update of the
-- session for every subscriber) per event; last_activity now moves in steps of a minute,
-- which is all the purge and the page need of it. Everything else is as before.

create or replace function public.gateway_record_inbound(
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
  c_activity_step constant interval := interval '1 minute';
  s public.whatsapp_sessions;
  v_id uuid;
  v_origin text;
  v_phone_before text;
begin
  select * into s from public.whatsapp_sessions where session_id = p_session_name for update;
  if not found then
    return null;
  end if;
  v_phone_before := s.phone_number;

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

  if s.phone_number is distinct from v_phone_before
      or s.last_activity < p_now - c_activity_step then
    update public.whatsapp_sessions set
      phone_number = s.phone_number, last_activity = p_now
    where id = s.id;
  end if;

  return jsonb_build_object('stored', v_id is not null, 'id', v_id, 'origin', v_origin);
end
$$;

comment on function public.gateway_record_inbound is
  'Stores a message the host reports (incoming, or written on the owner''s phone) once per '
  'host message id, as owner or client by who wrote it.';



create or replace function public.gateway_apply_ack(
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
  c_activity_step constant interval := interval '1 minute';
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
  if s.last_activity < p_now - c_activity_step then
    update public.whatsapp_sessions set last_activity = p_now where id = s.id;
  end if;

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
