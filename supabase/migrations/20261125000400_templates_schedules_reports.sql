-- Templates, scheduled messages and reports.
--
-- * whatsapp_templates: the first table users write themselves (REST API, supabase-js), under
--   RLS with one policy per command, and checked here, whoever writes it;
-- * send-message renders a template for its caller alone and may schedule a message
--   (gateway_prepare_send); the scheduler claims what is due (gateway_claim_scheduled) and
--   sends it through the same outbox, governor and host client as a direct send;
-- * when a message reached sent, delivered and read is stamped on its row, whichever function
--   moved it (gateway_stamp_message_times), for the reports: per-user views that run as their
--   reader (security_invoker), so RLS and the column grants decide what they count.

-- Templates -----------------------------------------------------------------------------------

create table public.whatsapp_templates (
  id uuid primary key default gen_random_uuid(),
  user_id uuid not null default auth.uid() references auth.users (id) on delete cascade,
  name text not null check (name ~ '^[a-z0-9_-]{1,64}$'),
  body text not null check (char_length(body) between 1 and 4096 and body ~ '\S'),
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  -- Placeholders are {{name}}, name being a lowercase letter then up to 31 of a-z, 0-9 and _;
  -- once they are taken out, no "{{" or "}}" may be left (a typo such as {{ name }} or
  -- {{name} would otherwise reach the recipient as it is). Single braces are plain text.
  constraint whatsapp_templates_placeholders check (
    regexp_replace(body, '\{\{[a-z][a-z0-9_]{0,31}\}\}', '', 'g') !~ '\{\{|\}\}'
  ),
  -- Also the index for user_id's foreign key and for the policies.
  constraint whatsapp_templates_user_name_key unique (user_id, name)
);

comment on table public.whatsapp_templates is
  'Message templates, written by their owners through the REST API under RLS; send-message '
  'renders one by name for its caller only.';

-- The one trigger function of its kind: every table with an updated_at users write.
create function public.gateway_touch_updated_at() returns trigger
language plpgsql
set search_path = ''
as $$
begin
  new.updated_at := now();
  return new;
end
$$;

comment on function public.gateway_touch_updated_at is
  'Sets updated_at on every update of a row users write directly.';

create trigger whatsapp_templates_touch_updated_at
  before update on public.whatsapp_templates
  for each row execute function public.gateway_touch_updated_at();

revoke all on table public.whatsapp_templates from anon, authenticated;
-- Users read every column of their templates and write only the name and the body: the id and
-- the times are the database's, and user_id is always auth.uid() (its default).
grant select (id, user_id, name, body, created_at, updated_at),
  insert (name, body),
  update (name, body),
  delete
  on public.whatsapp_templates to authenticated;
grant all on table public.whatsapp_templates to service_role;

alter table public.whatsapp_templates enable row level security;

create policy "users read their own templates" on public.whatsapp_templates
  for select to authenticated using ((select auth.uid()) = user_id);

create policy "users add templates of their own" on public.whatsapp_templates
  for insert to authenticated with check ((select auth.uid()) = user_id);

create policy "users change their own templates" on public.whatsapp_templates
  for update to authenticated
  using ((select auth.uid()) = user_id) with check ((select auth.uid()) = user_id);

create policy "users delete their own templates" on public.whatsapp_templates
  for delete to authenticated using ((select auth.uid()) = user_id);

-- Delivery times ------------------------------------------------------------------------------

create function public.gateway_stamp_message_times() returns trigger
language plpgsql
set search_path = ''
as $$
begin
  -- The functions set updated_at to the moment they act (their p_now), so tests with a clock
  -- of their own get their own times. A read implies delivery: an ack 3 may come alone.
  if new.sent_at is null then
    new.sent_at := new.updated_at;
  end if;
  if new.status in ('delivered', 'read') and new.delivered_at is null then
    new.delivered_at := new.updated_at;
  end if;
  if new.status = 'read' and new.read_at is null then
    new.read_at := new.updated_at;
  end if;
  return new;
end
$$;

comment on function public.gateway_stamp_message_times is
  'Stamps when an outbound message first reached sent, delivered and read.';

create trigger whatsapp_messages_stamp_times
  before insert or update of status on public.whatsapp_messages
  for each row
  when (new.direction = 'outbound' and new.status in ('sent', 'delivered', 'read'))
  execute function public.gateway_stamp_message_times();

-- Scheduled messages --------------------------------------------------------------------------

-- What the scheduler looks at: messages waiting for their time, and scheduled messages whose
-- send did not finish (the pass died, the host refused or did not answer) and may be retried.
create index whatsapp_messages_scheduled_idx
  on public.whatsapp_messages (whatsapp_session_id, send_at)
  where send_at is not null
    and (status = 'scheduled'
         or (wpp_message_id is null and send_state in ('pending', 'unknown', 'retryable')));

-- A user's messages waiting for their time, counted against MAX_SCHEDULED_PER_USER.
create index whatsapp_messages_scheduled_user_idx
  on public.whatsapp_messages (user_id) where status = 'scheduled';

create function public.gateway_render_template(
  p_user_id uuid,
  p_name text,
  p_variables jsonb
) returns jsonb
language plpgsql
stable
set search_path = ''
as $$
declare
  c_placeholder constant text := '\{\{([a-z][a-z0-9_]{0,31})\}\}';
  v_body text;
  v_parts text[];
  v_names text[];
  v_name text;
  v_text text;
begin
  -- The caller's own template only: another user's of the same name is never used.
  select body into v_body from public.whatsapp_templates
  where user_id = p_user_id and name = p_name;
  if not found then
    return jsonb_build_object('outcome', 'unknown_template');
  end if;

  v_names := array(select (regexp_matches(v_body, c_placeholder, 'g'))[1]);
  foreach v_name in array v_names loop
    if not coalesce(p_variables, '{}') ? v_name then
      return jsonb_build_object('outcome', 'template_variable_missing', 'variable', v_name);
    end if;
  end loop;
  select k into v_name from jsonb_object_keys(coalesce(p_variables, '{}')) k
  where k <> all (v_names) order by k limit 1;
  if v_name is not null then
    return jsonb_build_object('outcome', 'template_variable_unknown', 'variable', v_name);
  end if;

  -- One pass: the text around the placeholders, each placeholder's value in between, so a
  -- value that itself looks like a placeholder stays as it is.
  v_parts := regexp_split_to_array(v_body, c_placeholder);
  v_text := v_parts[1];
  for i in 1 .. coalesce(array_length(v_names, 1), 0) loop
    v_text := v_text || (p_variables ->> v_names[i]) || v_parts[i + 1];
  end loop;
  return jsonb_build_object('outcome', 'ok', 'body', v_text);
end
$$;

comment on function public.gateway_render_template is
  'Renders the user''s own template of this name with these variables (each placeholder '
  'needs one, and no other is accepted); the outcome names what is wrong.';


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
  v_rendered jsonb;
  v_body text := r.body;
  v_result jsonb;
begin
  -- The session's row lock first, as in gateway_begin_send: requests with one key are decided
  -- one at a time.
  select * into s from public.whatsapp_sessions
  where session_id = r.session_name and user_id = r.user_id
  for update;

  -- A retry with a key already used answers from the stored row: the text rendered the first
  -- time stands, even if the template has changed (or gone) since.
  if r.idempotency_key is not null then
    perform public.gateway_lock_idempotency_key(r.user_id, r.idempotency_key);
    select * into m from public.whatsapp_messages
    where user_id = r.user_id and idempotency_key = r.idempotency_key;
    if found then
      if m.request_hash is distinct from r.request_hash then
        return jsonb_build_object('outcome', 'conflict');
      end if;
      if m.send_at is not null then
        return jsonb_build_object('outcome', 'replay', 'message', to_jsonb(m));
      end if;
      v_body := m.body;
    end if;
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
        where user_id = r.user_id and status = 'scheduled'
        limit o.max_scheduled) waiting) >= o.max_scheduled then
    return jsonb_build_object('outcome', 'scheduled_limit', 'limit', o.max_scheduled);
  end if;
  insert into public.whatsapp_messages (
    user_id, whatsapp_session_id, direction, phone, contact_lid, contact_name, body, status,
    send_at, template_name, idempotency_key, request_hash, created_at, updated_at
  ) values (
    r.user_id, s.id, 'outbound', r.phone, r.contact_lid, r.contact_name, v_body, 'scheduled',
    o.send_at, o.template, r.idempotency_key, r.request_hash, p_now, p_now
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
    where id in (
      select whatsapp_session_id from public.whatsapp_messages
      where send_at is not null and send_at <= p_now
        and coalesce(lease_until, '-infinity') <= p_now
        and (status = 'scheduled'
             or (wpp_message_id is null and send_state in ('pending', 'unknown', 'retryable')
                 and status in ('queued', 'failed'))))
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
    where whatsapp_session_id = s.id and send_at is not null
      and send_at <= p_now - make_interval(secs => p_grace_s)
      and (status = 'scheduled'
           or (wpp_message_id is null and send_state in ('pending', 'unknown', 'retryable')
               and status in ('queued', 'failed')
               and coalesce(lease_until, '-infinity') <= p_now));
    get diagnostics v_expired = row_count;
    v_failed := v_failed + v_expired;

    if s.status <> 'connected' then
      v_waiting := v_waiting + 1;
      continue;
    end if;

    -- The governor: as many as the session's bucket holds now, the rest on a later claim.
    v_tokens := least(
      p_burst,
      coalesce(s.send_tokens, p_burst)
        + greatest(0, extract(epoch from p_now - coalesce(s.send_tokens_at, p_now))) * p_rate_per_s
    );
    if v_tokens < 1 then
      v_waiting := v_waiting + 1;
      continue;
    end if;

    v_host := public.gateway_host_access(s);
    v_taken := 0;
    for m in
      select * from public.whatsapp_messages
      where whatsapp_session_id = s.id and send_at is not null and send_at <= p_now
        and coalesce(lease_until, '-infinity') <= p_now
        and (status = 'scheduled'
             or (wpp_message_id is null and send_state in ('pending', 'unknown', 'retryable')
                 and status in ('queued', 'failed')))
      order by send_at, created_at
      limit least(floor(v_tokens)::integer, p_limit - v_count)
      for update
    loop
      update public.whatsapp_messages set
        status = 'queued', send_state = 'pending', error_code = null,
        lease_until = p_now + make_interval(secs => p_lease_s),
        attempts = attempts + 1, updated_at = p_now
      where id = m.id
      returning * into m;
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

-- Reports -------------------------------------------------------------------------------------
-- Each view runs as its reader: RLS gives a user their own rows only, and the views read only
-- columns users may select. A message counts on the day it was (or is to be) sent, in UTC.

create view public.whatsapp_report_daily with (security_invoker = true) as
select
  m.user_id,
  (coalesce(m.send_at, m.created_at) at time zone 'UTC')::date as day,
  s.account,
  m.direction,
  m.status,
  count(*)::integer as messages,
  (count(*) filter (where m.send_at is not null))::integer as scheduled,
  (count(*) filter (where m.template_name is not null))::integer as from_template
from public.whatsapp_messages m
left join public.whatsapp_sessions s on s.id = m.whatsapp_session_id
group by m.user_id, 2, s.account, m.direction, m.status;

comment on view public.whatsapp_report_daily is
  'Messages per day (UTC) and account by direction and status, with how many were scheduled '
  'and how many came from a template. account is null once the session has been purged.';

create view public.whatsapp_report_delivery with (security_invoker = true) as
select
  m.user_id,
  s.account,
  count(m.sent_at)::integer as sent,
  count(m.delivered_at)::integer as delivered,
  count(m.read_at)::integer as read,
  round(count(m.delivered_at)::numeric / nullif(count(m.sent_at), 0), 4) as delivery_rate,
  round(count(m.read_at)::numeric / nullif(count(m.sent_at), 0), 4) as read_rate,
  percentile_cont(0.5) within group (order by extract(epoch from m.delivered_at - m.sent_at))
    as delivered_p50_s,
  percentile_cont(0.9) within group (order by extract(epoch from m.delivered_at - m.sent_at))
    as delivered_p90_s,
  percentile_cont(0.5) within group (order by extract(epoch from m.read_at - m.sent_at))
    as read_p50_s,
  percentile_cont(0.9) within group (order by extract(epoch from m.read_at - m.sent_at))
    as read_p90_s
from public.whatsapp_messages m
left join public.whatsapp_sessions s on s.id = m.whatsapp_session_id
where m.direction = 'outbound' and m.sent_at >= now() - interval '30 days'
group by m.user_id, s.account;

comment on view public.whatsapp_report_delivery is
  'Over the last 30 days, per account: messages sent, delivered and read, the delivery and '
  'read rates, and the median and 90th percentile seconds from sent to delivered and to read.';

create view public.whatsapp_report_failures with (security_invoker = true) as
select
  m.user_id,
  (m.updated_at at time zone 'UTC')::date as day,
  s.account,
  coalesce(m.error_code, 'unknown') as error_code,
  count(*)::integer as messages
from public.whatsapp_messages m
left join public.whatsapp_sessions s on s.id = m.whatsapp_session_id
where m.status = 'failed'
group by m.user_id, 2, s.account, 4;

comment on view public.whatsapp_report_failures is
  'Failed messages per day (UTC, when they failed) and account, by error code.';

create view public.whatsapp_report_templates with (security_invoker = true) as
select
  m.user_id,
  m.template_name,
  count(*)::integer as messages,
  count(m.sent_at)::integer as sent,
  (count(*) filter (where m.status = 'scheduled'))::integer as scheduled,
  max(m.created_at) as last_used_at
from public.whatsapp_messages m
where m.template_name is not null
group by m.user_id, m.template_name;

comment on view public.whatsapp_report_templates is
  'Per template name: messages written from it, how many were sent, how many still wait.';

revoke all on table public.whatsapp_report_daily, public.whatsapp_report_delivery,
  public.whatsapp_report_failures, public.whatsapp_report_templates
  from anon, authenticated;
grant select on table public.whatsapp_report_daily, public.whatsapp_report_delivery,
  public.whatsapp_report_failures, public.whatsapp_report_templates
  to authenticated, service_role;

-- Functions: service_role only (the trigger functions run whoever writes the row). ----------

revoke execute on function
  public.gateway_touch_updated_at(),
  public.gateway_stamp_message_times(),
  public.gateway_render_template(uuid, text, jsonb),
  public.gateway_prepare_send(jsonb, jsonb, double precision, double precision, integer,
    timestamptz),
  public.gateway_cancel_scheduled(uuid, uuid, timestamptz),
  public.gateway_claim_scheduled(integer, double precision, double precision, integer, integer,
    timestamptz)
  from public, anon, authenticated;
grant execute on function
  public.gateway_touch_updated_at(),
  public.gateway_stamp_message_times(),
  public.gateway_render_template(uuid, text, jsonb),
  public.gateway_prepare_send(jsonb, jsonb, double precision, double precision, integer,
    timestamptz),
  public.gateway_cancel_scheduled(uuid, uuid, timestamptz),
  public.gateway_claim_scheduled(integer, double precision, double precision, integer, integer,
    timestamptz)
  to service_role;
