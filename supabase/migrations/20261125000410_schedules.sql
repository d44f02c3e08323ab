-- Scheduled messages, and sends with a template or a time: send-message renders a template
-- for its caller alone and may schedule a message (gateway_prepare_send); the scheduler claims
-- what is due (gateway_claim_scheduled) and sends it through the same outbox, governor and
-- host client as a direct send.

-- The rule of what the scheduler has yet to send, written here alone: a message waiting for
-- its time, or a scheduled message whose send did not finish (the pass died, the host refused
-- or did not answer: no host message id, the send not settled) and may be tried again. It is
-- kept on each row as awaits_scheduler, which the indexes below and gateway_due_messages read:
-- an index whose predicate named status itself would make every change of status a new entry
-- in each of the table's indexes, so an ack (sent, delivered, read) could never be a HOT
-- update; this column stays false through an ack, so the ack's update changes no indexed
-- column. The rule is the column's own expression, not a function it calls: every insert and
-- update of a message computes it, and a SQL function (which sets its search_path, so it is
-- never inlined) would be parsed and planned again by each of those statements.
alter table public.whatsapp_messages
  add column awaits_scheduler boolean generated always as (
    status = 'scheduled'
    or (wpp_message_id is null and send_state in ('pending', 'unknown', 'retryable')
        and status in ('queued', 'failed'))
  ) stored;

comment on column public.whatsapp_messages.awaits_scheduler is
  'Whether the scheduler has yet to send this message: scheduled, or a scheduled send that did '
  'not finish (no host message id, the send not settled).';

-- What the scheduler looks at; the claims' conditions name the same column, so the planner
-- knows they fall within this index.
create index whatsapp_messages_scheduled_idx
  on public.whatsapp_messages (whatsapp_session_id, send_at)
  where send_at is not null and awaits_scheduler;

-- A user's messages waiting for their time (status scheduled, all of which await the
-- scheduler), counted against MAX_SCHEDULED_PER_USER.
create index whatsapp_messages_scheduled_user_idx
  on public.whatsapp_messages (user_id) where awaits_scheduler;

-- The messages due by p_due_by, of one session (or of all, p_session_id null): awaiting the
-- scheduler and held by no pass's lease at p_now. A scheduled message holds no lease.
create function public.gateway_due_messages(
  p_session_id uuid,
  p_due_by timestamptz,
  p_now timestamptz
) returns setof public.whatsapp_messages
language plpgsql
stable
set search_path = ''
as $$
begin
  return query
    select * from public.whatsapp_messages m
    where (p_session_id is null or m.whatsapp_session_id = p_session_id)
      and m.send_at <= p_due_by
      and m.awaits_scheduler
      and coalesce(m.lease_until, '-infinity') <= p_now;
end
$$;

comment on function public.gateway_due_messages is
  'The scheduler''s messages due by p_due_by (of one session, or all) that no pass holds.';


-- A template and a time to send at, the options of a send beyond gateway_begin_send's (read
-- through its type: see the session functions' migration).
create type public.gateway_send_options as (
  template text,        -- the caller's template to render, by name
  variables jsonb,      -- its placeholders' values
  send_at timestamptz,  -- when to send; null: now
  max_chars integer,    -- the longest text a rendered template may give
  max_scheduled integer -- how many messages a user may have waiting for their time
);

create function public.gateway_prepare_send(
  p_send jsonb,
  p_options jsonb,
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
  o constant public.gateway_send_options :=
    jsonb_populate_record(null::public.gateway_send_options, p_options);
  s public.whatsapp_sessions;
  m public.whatsapp_messages;
  k record;
  v_rendered jsonb;
  v_body text := r.body;
  v_result jsonb;
begin
  -- A retry with a key already used answers from the stored row, as gateway_begin_send's
  -- does; one still to send keeps the text rendered the first time, even if the template has
  -- changed (or gone) since.
  select * into k from public.gateway_open_send(r, p_now);
  if k.answer is not null then
    return k.answer;
  end if;
  s := k.session;
  m := k.message;
  if m.id is not null then
    v_body := m.body;
  end if;

  if o.template is not null and m.id is null then
    v_rendered := public.gateway_render_template(r.user_id, o.template, o.variables);
    if v_rendered ->> 'outcome' <> 'ok' then
      return v_rendered;
    end if;
    v_body := v_rendered ->> 'body';
    if char_length(v_body) > o.max_chars then
      return jsonb_build_object('outcome', 'message_too_long', 'length', char_length(v_body));
    end if;
  end if;

  if o.send_at is null then
    v_result := public.gateway_begin_send(p_send || jsonb_build_object('body', v_body),
      p_burst, p_rate_per_s, p_lease_s, p_now);
    if o.template is not null and m.id is null and v_result ->> 'outcome' = 'send' then
      update public.whatsapp_messages set template_name = o.template
      where id = (v_result -> 'message' ->> 'id')::uuid
      returning * into m;
      v_result := v_result || jsonb_build_object('message', to_jsonb(m));
    end if;
    return v_result;
  end if;

  -- Scheduled: the outbox row waits for its time; nothing is sent and the governor is not
  -- consumed until the scheduler claims it. The account must exist (linked at least once);
  -- whether it is connected is decided at the message's time.
  if s.id is null then
    return jsonb_build_object('outcome', 'not_connected');
  end if;
  -- At most o.max_scheduled waiting per user, whichever account: counted under the user's
  -- own lock, so two accounts scheduling at once cannot both take the last place.
  perform pg_advisory_xact_lock(hashtextextended('gateway_scheduled:' || r.user_id::text, 0));
  if (select count(*) from (
        select 1 from public.whatsapp_messages
        where user_id = r.user_id and awaits_scheduler and status = 'scheduled'
        limit o.max_scheduled) waiting) >= o.max_scheduled then
    return jsonb_build_object('outcome', 'scheduled_limit', 'limit', o.max_scheduled);
  end if;
  insert into public.whatsapp_messages (
    user_id, whatsapp_session_id, direction, phone, contact_lid, contact_name, body, status,
    send_at, template_name, idempotency_key, request_hash, created_at, updated_at, group_id
  ) values (
    r.user_id, s.id, 'outbound', r.phone, r.contact_lid, r.contact_name, v_body, 'scheduled',
    o.send_at, o.template, r.idempotency_key, r.request_hash, p_now, p_now, r.group_id
  )
  returning * into m;
  return jsonb_build_object('outcome', 'scheduled', 'message', to_jsonb(m));
end
$$;

comment on function public.gateway_prepare_send is
  'send-message with a template or a send_at: renders the caller''s template, then either '
  'goes on as gateway_begin_send or writes the outbox row as scheduled; an idempotent retry '
  'answers from the stored row.';


create function public.gateway_cancel_scheduled(
  p_user_id uuid,
  p_message_id uuid,
  p_now timestamptz default now()
) returns jsonb
language plpgsql
set search_path = ''
as $$
declare
  m public.whatsapp_messages;
begin
  -- The scheduler claims a row under this same lock: a cancel and a claim never both win.
  select * into m from public.whatsapp_messages
  where id = p_message_id and user_id = p_user_id and direction = 'outbound'
  for update;
  if not found then
    return jsonb_build_object('outcome', 'not_found');
  end if;
  if m.status = 'scheduled' then
    update public.whatsapp_messages set status = 'cancelled', updated_at = p_now
    where id = m.id
    returning * into m;
  elsif m.status <> 'cancelled' then
    return jsonb_build_object('outcome', 'gone', 'message', to_jsonb(m));
  end if;
  return jsonb_build_object('outcome', 'cancelled', 'message', to_jsonb(m));
end
$$;

comment on function public.gateway_cancel_scheduled is
  'Cancels the user''s scheduled message while it waits; a second cancel answers the same; '
  'once the scheduler has taken it, it is gone.';


create function public.gateway_claim_scheduled(
  p_limit integer,
  p_burst double precision,
  p_rate_per_s double precision,
  p_lease_s integer,
  p_grace_s integer,
  p_now timestamptz default now()
) returns jsonb
language plpgsql
set search_path = ''
as $$
declare
  s public.whatsapp_sessions;
  m public.whatsapp_messages;
  v_claimed jsonb := '[]';
  v_count integer := 0;
  v_taken integer;
  v_failed integer := 0;
  v_expired integer;
  v_waiting integer := 0;
  v_tokens double precision;
  v_host jsonb;
begin
  -- Sessions with something due, each locked by one pass at a time: a session another pass
  -- (or a direct send) holds is skipped, and its messages wait for the next claim. Every
  -- message of a locked session is then this pass's to decide.
  for s in
    select * from public.whatsapp_sessions
    where id in (select d.whatsapp_session_id from public.gateway_due_messages(null, p_now, p_now) d)
    order by id
    for update skip locked
  loop
    exit when v_count >= p_limit;

    -- A "does not exist" no ack contradicted by the end of its lease is final, not resent.
    v_failed := v_failed + public.gateway_settle_unconfirmed(s.id, p_now);

    -- Past its time by more than the grace: failed, with the reason the user reads.
    update public.whatsapp_messages set
      status = 'failed', send_state = 'done', lease_until = null,
      error_code = case when s.status <> 'connected' then 'session_not_connected'
                        else coalesce(error_code, 'schedule_expired') end,
      updated_at = p_now
    where id in (select d.id from public.gateway_due_messages(
      s.id, p_now - make_interval(secs => p_grace_s), p_now) d);
    get diagnostics v_expired = row_count;
    v_failed := v_failed + v_expired;

    if s.status <> 'connected' then
      v_waiting := v_waiting + 1;
      continue;
    end if;

    -- The governor: as many as the session's bucket holds now, the rest on a later claim.
    v_tokens := public.gateway_send_tokens(s, p_burst, p_rate_per_s, p_now);
    if v_tokens < 1 then
      v_waiting := v_waiting + 1;
      continue;
    end if;

    v_host := public.gateway_host_access(s);
    v_taken := 0;
    for m in
      select * from public.whatsapp_messages
      where id in (select d.id from public.gateway_due_messages(s.id, p_now, p_now) d)
      order by send_at, created_at
      limit least(floor(v_tokens)::integer, p_limit - v_count)
      for update
    loop
      m := public.gateway_take_send(m.id, p_lease_s, p_now);
      v_claimed := v_claimed || jsonb_build_array(jsonb_build_object(
        'message', to_jsonb(m), 'session_name', s.session_id) || v_host);
      v_taken := v_taken + 1;
    end loop;
    v_count := v_count + v_taken;
    if v_taken > 0 then
      update public.whatsapp_sessions set
        send_tokens = v_tokens - v_taken, send_tokens_at = p_now, last_activity = p_now
      where id = s.id;
    end if;
  end loop;

  return jsonb_build_object('claimed', v_claimed, 'failed', v_failed, 'waiting', v_waiting);
end
$$;

comment on function public.gateway_claim_scheduled is
  'The scheduler''s claim: due messages of sessions no one else holds, as many per session as '
  'its token bucket allows, each moved to queued under a lease (as a direct send''s outbox '
  'row); those past their time by more than the grace fail with a reason.';


revoke execute on function
  public.gateway_due_messages(uuid, timestamptz, timestamptz),
  public.gateway_prepare_send(jsonb, jsonb, double precision, double precision, integer,
    timestamptz),
  public.gateway_cancel_scheduled(uuid, uuid, timestamptz),
  public.gateway_claim_scheduled(integer, double precision, double precision, integer, integer,
    timestamptz)
  from public, anon, authenticated;
-- service_role, which the functions call as, runs every function of the gateway.
grant execute on all functions in schema public to service_role;
