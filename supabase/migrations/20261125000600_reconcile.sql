-- Reconcile: every live session put right from its host, for what no webhook reported (the
-- host posts each event once and never retries). A pass claims sessions under a lease
-- (gateway_claim_reconcile), asks their hosts, and applies what it found in one transaction
-- per session (gateway_reconcile_session), through the same functions as the webhook: inbound
-- messages stored once by host message id, acks that only move forward, and the session's
-- state as a fresh look (gateway_repair_session). What it changed goes into the event log as
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
  reconciled_at timestamptz
);

comment on table public.whatsapp_reconcile_marks is
  'Reconcile''s bookkeeping per session (service only): its lease, when it was last put right, '
  'and the host time up to which the chats of its attempt have been looked at.';

create index whatsapp_reconcile_marks_order_idx
  on public.whatsapp_reconcile_marks (reconciled_at nulls first);

revoke all on table public.whatsapp_reconcile_marks from anon, authenticated;
grant all on table public.whatsapp_reconcile_marks to service_role;
alter table public.whatsapp_reconcile_marks enable row level security;


create function public.gateway_claim_reconcile(
  p_limit integer,
  p_lease_s integer,
  p_ack_window_s integer,
  p_ack_limit integer,
  p_session_name text default null,
  p_pass_started timestamptz default null,
  p_now timestamptz default now()
) returns jsonb
language plpgsql
set search_path = ''
as $$
declare
  v_ids uuid[];
  v_busy boolean := false;
begin
  if p_session_name is not null then
    -- One session, whatever its status (status?refresh=true): waits for a webhook holding it.
    select array_agg(s.id) into v_ids from public.whatsapp_sessions s
    where s.session_id = p_session_name;
    perform 1 from public.whatsapp_sessions where id = any(v_ids) for update;
  else
    -- The live sessions put right longest ago, and not yet by this pass (it started at
    -- p_pass_started); one a webhook holds now waits for the next pass.
    select array_agg(t.id) into v_ids from (
      select s.id from public.whatsapp_sessions s
      left join public.whatsapp_reconcile_marks m on m.whatsapp_session_id = s.id
      where s.status in ('starting', 'pairing', 'connected')
        and (m.lease_until is null or m.lease_until <= p_now)
        and (m.reconciled_at is null or m.reconciled_at < coalesce(p_pass_started, p_now))
      order by m.reconciled_at nulls first, s.id
      limit p_limit
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
  v_busy := p_session_name is not null and cardinality(v_ids) = 0;

  insert into public.whatsapp_reconcile_marks (whatsapp_session_id, lease_until)
  select id, p_now + make_interval(secs => p_lease_s) from unnest(v_ids) id
  on conflict (whatsapp_session_id) do update set lease_until = excluded.lease_until;

  return jsonb_build_object('busy', v_busy, 'now', p_now, 'sessions', coalesce((
    select jsonb_agg(jsonb_build_object(
      'session', to_jsonb(s),
      'host_token', k.host_token,
      'host', public.gateway_host_of(s.host_id),
      'mark', case when m.attempt = s.attempt then m.host_t end,
      'linked_at', floor(extract(epoch from s.connected_at))::bigint,
      -- Outbound messages whose ack may still change: sent and not yet read or failed, and
      -- sends whose answer never came (a message of the chat may prove they went out).
      'pending', coalesce((
        select jsonb_agg(jsonb_build_object('wpp_message_id', o.wpp_message_id,
          'phone', o.phone, 'contact_lid', o.contact_lid, 'status', o.status))
        from (
          select o.wpp_message_id, o.phone, o.contact_lid, o.status
          from public.whatsapp_messages o
          where o.whatsapp_session_id = s.id and o.direction = 'outbound'
            and o.created_at > p_now - make_interval(secs => p_ack_window_s)
            and ((o.wpp_message_id is not null and o.status in ('queued', 'sent', 'delivered'))
                 or (o.wpp_message_id is null and o.send_state = 'unknown'))
          order by o.created_at
          limit p_ack_limit
        ) o), '[]'::jsonb)
    ) order by m.reconciled_at nulls first, s.id)
    from public.whatsapp_sessions s
    join public.whatsapp_reconcile_marks m on m.whatsapp_session_id = s.id
    left join public.whatsapp_session_secrets k on k.session_id = s.id
    where s.id = any(v_ids)), '[]'::jsonb));
end
$$;

comment on function public.gateway_claim_reconcile is
  'Leases live sessions put right longest ago (or the one named) to one reconcile pass, with '
  'what it takes to ask their host: token, host, the host time looked at so far, the time of '
  'the current link, and the outbound messages whose ack may still change.';


create function public.gateway_reconcile_session(
  p_session_name text,
  p_seen_updated_at timestamptz,
  p_status text,
  p_reason text,
  p_qr_code text,
  p_qr_image text,
  p_pairing_code text,
  p_host_status text,
  p_inbound jsonb,
  p_acks jsonb,
  p_mark bigint,
  p_host_token text,
  p_qr_first_ttl_s integer default 60,
  p_qr_next_ttl_s integer default 20,
  p_now timestamptz default now()
) returns jsonb
language plpgsql
set search_path = ''
as $$
declare
  s public.whatsapp_sessions;
  v_result jsonb;
  v_item jsonb;
  v_i bigint;
  v_status_changed boolean := false;
  v_stored integer := 0;
  v_acks integer := 0;
  v_lids jsonb := '[]'::jsonb;
begin
  select * into s from public.whatsapp_sessions where session_id = p_session_name for update;
  if not found then
    return null;
  end if;

  if p_host_token is not null then
    perform public.gateway_store_host_token(s.id, p_host_token, p_now);
  end if;

  -- The host's answer is a fresh look, applied as the truth, unless the session changed since
  -- the pass read it: then a webhook came after the look, and the next pass looks again.
  if p_status is not null and s.updated_at <= p_seen_updated_at then
    if p_status <> s.status then
      v_result := public.gateway_repair_session(p_session_name, p_status, p_reason, p_now);
      v_status_changed := coalesce((v_result ->> 'changed')::boolean, false);
    end if;
    if p_status = 'pairing' and (p_qr_code is not null or p_pairing_code is not null) then
      v_result := public.gateway_apply_host_state(p_session_name, 'pairing', p_qr_code,
        p_qr_image, p_pairing_code, null, null, null, p_qr_first_ttl_s, p_qr_next_ttl_s, p_now);
      v_status_changed := v_status_changed or coalesce((v_result ->> 'changed')::boolean, false);
    end if;
    if v_status_changed then
      perform public.gateway_log_event(s, 'reconcile.status',
        s.attempt || ':reconcile.status:' || extract(epoch from p_now)::text,
        jsonb_build_object('status', p_status, 'reason', p_reason, 'host_status', p_host_status),
        p_now);
    end if;
  end if;

  -- Missed messages, oldest first: each stored once by its host message id, as the webhook
  -- stores it (a webhook racing this pass inserts nothing twice).
  for v_item, v_i in select value, ordinality from jsonb_array_elements(p_inbound)
      with ordinality loop
    v_result := public.gateway_record_inbound(
      p_session_name, v_item ->> 'wpp_message_id', v_item ->> 'phone', v_item ->> 'body',
      v_item ->> 'contact_name', v_item ->> 'message_type', (v_item ->> 'from_me')::boolean,
      v_item ->> 'account_phone', p_now + v_i * interval '1 microsecond',
      v_item ->> 'contact_lid');
    if coalesce((v_result ->> 'stored')::boolean, false) then
      v_stored := v_stored + 1;
      perform public.gateway_log_event(s, 'reconcile.message',
        s.attempt || ':reconcile.message:' || (v_item ->> 'wpp_message_id'), v_item -> 'payload', p_now);
    end if;
    if coalesce((v_result ->> 'lid_lookup')::boolean, false) then
      v_lids := v_lids || to_jsonb(v_item ->> 'contact_lid');
    end if;
  end loop;

  for v_item in select value from jsonb_array_elements(p_acks) loop
    v_result := public.gateway_apply_ack(
      p_session_name, v_item ->> 'wpp_message_id', v_item ->> 'status', v_item ->> 'phone',
      v_item ->> 'body', p_now, v_item ->> 'lid', v_item ->> 'failure_code');
    if coalesce((v_result ->> 'changed')::boolean, false) then
      v_acks := v_acks + 1;
      perform public.gateway_log_event(s, 'reconcile.ack',
        s.attempt || ':reconcile.ack:' || (v_item ->> 'wpp_message_id') || ':' || (v_item ->> 'status'),
        v_item -> 'payload', p_now);
    end if;
  end loop;

  update public.whatsapp_reconcile_marks m set
    attempt = s.attempt,
    host_t = case when p_mark is not null then p_mark
                  when m.attempt = s.attempt then m.host_t end,
    reconciled_at = p_now,
    lease_until = null
  where m.whatsapp_session_id = s.id;

  select * into s from public.whatsapp_sessions where id = s.id;
  return jsonb_build_object('session', to_jsonb(s), 'status_changed', v_status_changed,
    'stored', v_stored, 'acks', v_acks, 'lid_lookups', v_lids,
    'host_token', (select k.host_token from public.whatsapp_session_secrets k
                   where k.session_id = s.id),
    'host', public.gateway_host_of(s.host_id));
end
$$;

comment on function public.gateway_reconcile_session is
  'Applies one reconcile pass''s findings for a session in one transaction: the host''s state '
  '(unless a webhook changed the session since the pass read it), missed inbound messages and '
  'acks through the webhook''s own functions, each change logged as a reconcile.* event; '
  'then moves the session''s mark and releases its lease.';


create function public.gateway_release_reconcile(p_session_names jsonb)
returns void
language sql
set search_path = ''
as $$
  update public.whatsapp_reconcile_marks m set lease_until = null
  from public.whatsapp_sessions s
  where s.session_id in (select jsonb_array_elements_text(p_session_names))
    and m.whatsapp_session_id = s.id
$$;

comment on function public.gateway_release_reconcile is
  'Gives back the leases of sessions a pass claimed and did not get to (its time ran out).';


revoke execute on function
  public.gateway_claim_reconcile(integer, integer, integer, integer, text, timestamptz, timestamptz),
  public.gateway_reconcile_session(text, timestamptz, text, text, text, text, text, text, jsonb,
    jsonb, bigint, text, integer, integer, timestamptz),
  public.gateway_release_reconcile(jsonb)
  from public, anon, authenticated;
grant execute on function
  public.gateway_claim_reconcile(integer, integer, integer, integer, text, timestamptz, timestamptz),
  public.gateway_reconcile_session(text, timestamptz, text, text, text, text, text, text, jsonb,
    jsonb, bigint, text, integer, integer, timestamptz),
  public.gateway_release_reconcile(jsonb)
  to service_role;
