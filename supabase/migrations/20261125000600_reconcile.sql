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


-- Records (read through their types: see the session functions' migration) ---------------------

-- What a pass claims: a batch of the live sessions put right longest ago, or the one named.
create type public.gateway_reconcile_claim as (
  batch_size integer,       -- sessions at most
  lease_s integer,          -- how long the pass holds them
  ack_window_s integer,     -- outbound messages younger than this may still change
  ack_limit integer,        -- at most this many of them a session
  session_name text,        -- this session only, whatever its status (a status refresh)
  pass_started timestamptz  -- sessions put right since the pass started are not taken again
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

-- What a pass found on the host for one session, applied in one transaction.
create type public.gateway_reconcile_findings as (
  session_name text,
  seen_updated_at timestamptz,             -- the session row's updated_at the claim read
  update public.gateway_session_update,    -- the host's state now (null: nothing to say)
  host_status text,                        -- the host's own word for it, for the event log
  inbound public.gateway_found_message[],  -- oldest first
  acks public.gateway_found_ack[],
  mark bigint,                             -- the host time the session's chats are read to
  host_token text                          -- a new encrypted host token, if the host gave one
);


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

  insert into public.whatsapp_reconcile_marks (whatsapp_session_id, lease_until)
  select id, p_now + make_interval(secs => c.lease_s) from unnest(v_ids) id
  on conflict (whatsapp_session_id) do update set lease_until = excluded.lease_until;

  return jsonb_build_object('busy', v_busy, 'now', p_now, 'sessions', coalesce((
    select jsonb_agg(public.gateway_host_access(s) || jsonb_build_object(
      'session', to_jsonb(s),
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
            and o.created_at > p_now - make_interval(secs => c.ack_window_s)
            and ((o.wpp_message_id is not null and o.status in ('queued', 'sent', 'delivered'))
                 or (o.wpp_message_id is null and o.send_state = 'unknown'))
          order by o.created_at
          limit c.ack_limit
        ) o), '[]'::jsonb)
    ) order by m.reconciled_at nulls first, s.id)
    from public.whatsapp_sessions s
    join public.whatsapp_reconcile_marks m on m.whatsapp_session_id = s.id
    where s.id = any(v_ids)), '[]'::jsonb));
end
$$;

comment on function public.gateway_claim_reconcile is
  'Leases live sessions put right longest ago (or the one named) to one reconcile pass, with '
  'what it takes to ask their host: token, host, the host time looked at so far, the time of '
  'the current link, and the outbound messages whose ack may still change.';


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
  s public.whatsapp_sessions;
  v_result jsonb;
  v_found public.gateway_found_message;
  v_ack public.gateway_found_ack;
  v_i integer := 0;
  v_status_changed boolean := false;
  v_stored integer := 0;
  v_acks integer := 0;
  v_lids jsonb := '[]'::jsonb;
  v_media jsonb := '[]'::jsonb;
begin
  select * into s from public.whatsapp_sessions where session_id = f.session_name for update;
  if not found then
    return null;
  end if;

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

  -- Missed messages, oldest first: each stored once by its host message id, as the webhook
  -- stores it (a webhook racing this pass inserts nothing twice), its file fetched as the
  -- webhook's is (media), its sender's LID asked about as the webhook's is (lid_lookups).
  foreach v_found in array coalesce(f.inbound, '{}') loop
    v_i := v_i + 1;
    v_result := public.gateway_record_inbound(to_jsonb(v_found.message),
      p_now + v_i * interval '1 microsecond');
    if coalesce((v_result ->> 'stored')::boolean, false) then
      v_stored := v_stored + 1;
      perform public.gateway_log_event(s, 'reconcile.message',
        s.attempt || ':reconcile.message:' || (v_found.message).wpp_message_id, v_found.payload,
        p_now);
    end if;
    if v_result ->> 'lid_lookup' is not null then
      v_lids := v_lids || (v_result -> 'lid_lookup');
    end if;
    if jsonb_typeof(v_result -> 'media') = 'object' then
      v_media := v_media || jsonb_build_array(v_result -> 'media');
    end if;
  end loop;

  foreach v_ack in array coalesce(f.acks, '{}') loop
    v_result := public.gateway_apply_ack(to_jsonb(v_ack.ack), p_now);
    if coalesce((v_result ->> 'changed')::boolean, false) then
      v_acks := v_acks + 1;
      perform public.gateway_log_event(s, 'reconcile.ack',
        s.attempt || ':reconcile.ack:' || (v_ack.ack).wpp_message_id || ':' || (v_ack.ack).status,
        v_ack.payload, p_now);
    end if;
  end loop;

  update public.whatsapp_reconcile_marks m set
    attempt = s.attempt,
    host_t = case when f.mark is not null then f.mark
                  when m.attempt = s.attempt then m.host_t end,
    reconciled_at = p_now,
    lease_until = null
  where m.whatsapp_session_id = s.id;

  select * into s from public.whatsapp_sessions where id = s.id;
  return jsonb_build_object('session', to_jsonb(s), 'status_changed', v_status_changed,
    'stored', v_stored, 'acks', v_acks, 'lid_lookups', v_lids, 'media', v_media)
    || public.gateway_host_access(s);
end
$$;

comment on function public.gateway_reconcile_session is
  'Applies one reconcile pass''s findings for a session in one transaction: the host''s state '
  '(unless a webhook changed the session since the pass read it), missed inbound messages and '
  'acks through the webhook''s own functions (with the files to fetch and the LIDs to ask '
  'about, as the webhook''s), each change logged as a reconcile.* event; then moves the '
  'session''s mark and releases its lease.';


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
  public.gateway_claim_reconcile(jsonb, timestamptz),
  public.gateway_reconcile_session(jsonb, integer, integer, timestamptz),
  public.gateway_release_reconcile(jsonb)
  from public, anon, authenticated;
grant execute on function
  public.gateway_claim_reconcile(jsonb, timestamptz),
  public.gateway_reconcile_session(jsonb, integer, integer, timestamptz),
  public.gateway_release_reconcile(jsonb)
  to service_role;
