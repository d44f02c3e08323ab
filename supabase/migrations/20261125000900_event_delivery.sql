-- Event delivery: what happens to a user's messages and sessions, posted to the HTTPS
-- endpoints of their own backend, signed, in order per endpoint, retried, replayable.
--
-- Triggers on the messages and sessions write a notification (its type and body) and one
-- delivery per endpoint that wants that type, in the same transaction as the change it
-- reports: a notification is exactly as durable as the change, and one is written for every
-- way a change happens (the host's webhook, a send's answer, the scheduler, reconcile, a
-- disconnect). Per endpoint, deliveries are numbered (seq) under the endpoint's row lock, so
-- their numbers are in commit order, and the worker delivers them by seq, one endpoint at a
-- time per worker (a lease on the endpoint row, as the outbox has on its rows).

create table public.whatsapp_endpoints (
  id uuid primary key,
  user_id uuid not null references auth.users (id) on delete cascade,
  url text not null check (char_length(url) <= 2048 and url ~ '^https?://[^\s]+$'),
  events text[] not null check (
    cardinality(events) between 1 and 4
    and events <@ array['message.received', 'message.sent', 'message.status', 'session.status']
  ),
  description text check (char_length(description) <= 200),
  secret text not null check (secret like 'v1.%'),
  created_at timestamptz not null default now(),
  -- The delivery queue's bookkeeping.
  last_seq bigint not null default 0,
  next_due_at timestamptz,
  lease_until timestamptz,
  lease_token uuid
);

comment on table public.whatsapp_endpoints is
  'Users'' HTTPS endpoints and the events each wants. secret is the Standard Webhooks signing '
  'secret (whsec_...), AES-256-GCM encrypted by the functions (context: the endpoint id).';
comment on column public.whatsapp_endpoints.next_due_at is
  'When the endpoint''s first pending delivery is due (null: nothing pending).';
comment on column public.whatsapp_endpoints.lease_until is
  'Held by the worker delivering to the endpoint (lease_token names it) until then.';

create index whatsapp_endpoints_user_id_idx on public.whatsapp_endpoints (user_id);
create index whatsapp_endpoints_due_idx on public.whatsapp_endpoints (next_due_at)
  where next_due_at is not null;

create table public.whatsapp_notifications (
  id bigint generated always as identity primary key,
  user_id uuid not null references auth.users (id) on delete cascade,
  type text not null,
  body jsonb not null,
  created_at timestamptz not null default now()
);

comment on table public.whatsapp_notifications is
  'What a user''s endpoints are told, once per change: body is the JSON posted '
  '({"type", "timestamp", "data"}); its id is the webhook-id.';

create index whatsapp_notifications_user_id_idx on public.whatsapp_notifications (user_id);
create index whatsapp_notifications_created_at_idx on public.whatsapp_notifications (created_at);

create table public.whatsapp_deliveries (
  id bigint generated always as identity primary key,
  endpoint_id uuid not null references public.whatsapp_endpoints (id) on delete cascade,
  user_id uuid not null references auth.users (id) on delete cascade,
  notification_id bigint not null references public.whatsapp_notifications (id)
    on delete cascade,
  seq bigint not null,
  status text not null default 'pending' check (status in ('pending', 'delivered', 'failed')),
  attempts integer not null default 0,
  queued_at timestamptz not null default now(),
  next_attempt_at timestamptz,
  last_attempt_at timestamptz,
  last_status integer,
  last_error text check (last_error ~ '^[a-z_]{1,32}$'),
  delivered_at timestamptz,
  created_at timestamptz not null default now(),
  unique (endpoint_id, seq)
);

comment on column public.whatsapp_deliveries.queued_at is
  'When its retries began (made, or replayed): it fails once they have gone on longer than '
  'DELIVERY_RETRY_FOR.';
comment on column public.whatsapp_deliveries.last_status is
  'The HTTP status the endpoint last answered (null: no answer).';
comment on column public.whatsapp_deliveries.last_error is
  'Why the last attempt failed: http_status, timeout, connection, tls, blocked_address, '
  'unresolved, secret.';

create index whatsapp_deliveries_pending_idx on public.whatsapp_deliveries (endpoint_id, seq)
  where status = 'pending';
create index whatsapp_deliveries_user_id_idx on public.whatsapp_deliveries (user_id);
create index whatsapp_deliveries_notification_idx on public.whatsapp_deliveries (notification_id);

revoke all on table public.whatsapp_endpoints, public.whatsapp_notifications,
  public.whatsapp_deliveries
  from anon, authenticated;
revoke all on sequence public.whatsapp_notifications_id_seq, public.whatsapp_deliveries_id_seq
  from anon, authenticated;
-- whatsapp_endpoints: what the page lists. Private: secret (even encrypted), and the queue's
-- bookkeeping (last_seq, next_due_at, lease_until, lease_token).
grant select (
  id,          -- the primary key
  user_id,     -- the owner: RLS
  url,         -- where events are posted
  events,      -- which
  description, -- the user's note
  created_at
) on public.whatsapp_endpoints to authenticated;
-- whatsapp_notifications: every column (the events are about the user's own rows).
grant select (id, user_id, type, body, created_at) on public.whatsapp_notifications
  to authenticated;
-- whatsapp_deliveries: every column, for the page's list of deliveries.
grant select (
  id, endpoint_id, user_id, notification_id, seq, status, attempts, queued_at,
  next_attempt_at, last_attempt_at, last_status, last_error, delivered_at, created_at
) on public.whatsapp_deliveries to authenticated;
grant all on table public.whatsapp_endpoints, public.whatsapp_notifications,
  public.whatsapp_deliveries
  to service_role;

alter table public.whatsapp_endpoints enable row level security;
alter table public.whatsapp_notifications enable row level security;
alter table public.whatsapp_deliveries enable row level security;

create policy "users read their own endpoints" on public.whatsapp_endpoints
  for select to authenticated using ((select auth.uid()) = user_id);
create policy "users read their own notifications" on public.whatsapp_notifications
  for select to authenticated using ((select auth.uid()) = user_id);
create policy "users read their own deliveries" on public.whatsapp_deliveries
  for select to authenticated using ((select auth.uid()) = user_id);


-- Writing notifications -------------------------------------------------------------------------

create function public.gateway_utc(p_at timestamptz)
returns text
language plpgsql
immutable
set search_path = ''
as $$
begin
  return to_char(p_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"');
end
$$;


create function public.gateway_notify(p_user_id uuid, p_type text, p_data jsonb)
returns void
language plpgsql
set search_path = ''
as $$
declare
  e record;
  v_notification bigint;
begin
  -- Endpoints locked in id order: two transactions notifying one user never deadlock, and
  -- the seq each delivery gets is its place in commit order.
  for e in
    select id from public.whatsapp_endpoints
    where user_id = p_user_id and p_type = any (events)
    order by id
    for update
  loop
    if v_notification is null then
      insert into public.whatsapp_notifications (user_id, type, body)
      values (p_user_id, p_type, jsonb_build_object('type', p_type,
        'timestamp', public.gateway_utc(clock_timestamp()), 'data', p_data))
      returning id into v_notification;
    end if;
    with numbered as (
      update public.whatsapp_endpoints
      set last_seq = last_seq + 1, next_due_at = coalesce(next_due_at, now())
      where id = e.id
      returning last_seq
    )
    insert into public.whatsapp_deliveries (
      endpoint_id, user_id, notification_id, seq, next_attempt_at)
    select e.id, p_user_id, v_notification, numbered.last_seq, now() from numbered;
  end loop;
  if v_notification is not null then
    -- Tells the function that made this change to start the delivery worker now. Through
    -- the REST API this is PostgREST's response header; the psycopg transport reads it.
    perform set_config('response.headers', '[{"x-gateway-deliveries": "queued"}]', true);
  end if;
end
$$;

comment on function public.gateway_notify is
  'Writes one notification of p_type for the user and a delivery to each of their endpoints '
  'that wants it; nothing when none does.';


create function public.gateway_message_event_data(m public.whatsapp_messages)
returns jsonb
language sql
stable
set search_path = ''
as $$
  select jsonb_build_object(
    'id', m.id, 'account', s.account, 'session', s.session_id, 'direction', m.direction,
    'phone', m.phone, 'contact_lid', m.contact_lid, 'contact_name', m.contact_name,
    'body', m.body, 'type', m.message_type, 'status', m.status, 'origin', m.origin,
    'wpp_message_id', m.wpp_message_id, 'error_code', m.error_code,
    'failure_code', m.failure_code, 'template', m.template_name,
    'created_at', public.gateway_utc(m.created_at), 'updated_at', public.gateway_utc(m.updated_at),
    'media', case when m.media_state is null then null else jsonb_build_object(
      'mime_type', m.mime_type, 'filename', m.filename, 'size', m.size, 'sha256', m.sha256,
      'path', m.media_path, 'state', m.media_state) end)
  from (select 1) one
  left join public.whatsapp_sessions s on s.id = m.whatsapp_session_id
$$;


create function public.gateway_notify_message()
returns trigger
language plpgsql
set search_path = ''
as $$
declare
  v_type text;
begin
  if not exists (select 1 from public.whatsapp_endpoints where user_id = new.user_id) then
    return null;  -- the common case: a user with no endpoint pays one index probe
  end if;
  v_type := case
    when new.direction = 'inbound' then 'message.received'
    when new.status = 'sent' then 'message.sent'
    else 'message.status'
  end;
  perform public.gateway_notify(new.user_id, v_type, public.gateway_message_event_data(new));
  return null;
end
$$;

-- The host reports a new message first undecrypted (type ciphertext, no text), then again with
-- its text (gateway_record_inbound keeps the fuller report): it is announced once, when its
-- text is stored, not as the placeholder the first report leaves.
create trigger whatsapp_messages_notify_insert
  after insert on public.whatsapp_messages
  for each row when (
    (new.direction = 'inbound' or new.status = 'sent') and new.message_type <> 'ciphertext')
  execute function public.gateway_notify_message();

create trigger whatsapp_messages_notify_decrypted
  after update of message_type on public.whatsapp_messages
  for each row when (
    old.message_type = 'ciphertext' and new.message_type <> 'ciphertext'
    and (new.direction = 'inbound' or new.status = 'sent'))
  execute function public.gateway_notify_message();

create trigger whatsapp_messages_notify_status
  after update of status on public.whatsapp_messages
  for each row when (
    old.status is distinct from new.status
    and new.direction = 'outbound'
    and new.status in ('sent', 'delivered', 'read', 'failed')
  )
  execute function public.gateway_notify_message();


create function public.gateway_notify_session()
returns trigger
language plpgsql
set search_path = ''
as $$
begin
  if not exists (select 1 from public.whatsapp_endpoints where user_id = new.user_id) then
    return null;
  end if;
  perform public.gateway_notify(new.user_id, 'session.status', jsonb_build_object(
    'id', new.id, 'account', new.account, 'name', new.session_id, 'status', new.status,
    'status_reason', new.status_reason, 'phone_number', new.phone_number,
    'updated_at', public.gateway_utc(new.updated_at)));
  return null;
end
$$;

create trigger whatsapp_sessions_notify_insert
  after insert on public.whatsapp_sessions
  for each row when (new.status <> 'disconnected')
  execute function public.gateway_notify_session();

create trigger whatsapp_sessions_notify_status
  after update of status on public.whatsapp_sessions
  for each row when (old.status is distinct from new.status)
  execute function public.gateway_notify_session();


-- Endpoints ---------------------------------------------------------------------------------

create function public.gateway_endpoint_json(e public.whatsapp_endpoints)
returns jsonb
language sql
stable
set search_path = ''
as $$
  select jsonb_build_object('id', e.id, 'url', e.url, 'events', e.events,
    'description', e.description, 'created_at', e.created_at,
    'pending', (select count(*) from public.whatsapp_deliveries d
                where d.endpoint_id = e.id and d.status = 'pending'),
    'failed', (select count(*) from public.whatsapp_deliveries d
               where d.endpoint_id = e.id and d.status = 'failed'))
$$;

comment on function public.gateway_endpoint_json is
  'An endpoint as the api-keys function answers it: never its secret.';


-- A new endpoint as the api-keys function sends it (records.EndpointToCreate); its secret
-- encrypted.
create type public.gateway_endpoint_to_create as (
  id uuid,
  user_id uuid,
  url text,
  events text[],
  description text,
  secret text,
  max_endpoints integer
);

create function public.gateway_create_endpoint(p_endpoint jsonb)
returns jsonb
language plpgsql
set search_path = ''
as $$
declare
  r constant public.gateway_endpoint_to_create :=
    jsonb_populate_record(null::public.gateway_endpoint_to_create, p_endpoint);
  e public.whatsapp_endpoints;
begin
  if public.gateway_user_at_limit('public.whatsapp_endpoints', r.user_id, r.max_endpoints) then
    return jsonb_build_object('outcome', 'limit');
  end if;
  insert into public.whatsapp_endpoints (id, user_id, url, events, description, secret)
  values (r.id, r.user_id, r.url, r.events, r.description, r.secret)
  returning * into e;
  return jsonb_build_object('outcome', 'ok', 'endpoint', public.gateway_endpoint_json(e));
end
$$;

comment on function public.gateway_create_endpoint is
  'Adds an endpoint for a user; outcome ok with the endpoint, or limit (max_endpoints).';


create function public.gateway_endpoints(p_record jsonb)
returns jsonb
language sql
stable
set search_path = ''
as $$
  select coalesce(jsonb_agg(public.gateway_endpoint_json(e) order by e.created_at, e.id),
    '[]'::jsonb)
  from public.whatsapp_endpoints e
  where e.user_id = (p_record ->> 'user_id')::uuid
$$;

comment on function public.gateway_endpoints is 'A user''s endpoints, oldest first (p: user_id).';


create function public.gateway_delete_endpoint(p_record jsonb)
returns jsonb
language sql
set search_path = ''
as $$
  delete from public.whatsapp_endpoints
  where id = (p_record ->> 'id')::uuid and user_id = (p_record ->> 'user_id')::uuid
  returning jsonb_build_object('id', id, 'url', url, 'events', events,
    'description', description, 'created_at', created_at)
$$;

comment on function public.gateway_delete_endpoint is
  'Deletes one of a user''s endpoints and its deliveries (p: user_id, id); null if none.';


create function public.gateway_endpoint_deliveries(p_record jsonb)
returns jsonb
language plpgsql
stable
set search_path = ''
as $$
begin
  if not exists (select 1 from public.whatsapp_endpoints
                 where id = (p_record ->> 'id')::uuid and user_id = (p_record ->> 'user_id')::uuid) then
    return null;
  end if;
  return (
    select coalesce(jsonb_agg(jsonb_build_object(
      'id', d.id, 'seq', d.seq, 'event_id', d.notification_id, 'type', n.type,
      'status', d.status, 'attempts', d.attempts,
      'next_attempt_at', case when d.status = 'pending' then d.next_attempt_at end,
      'last_attempt_at', d.last_attempt_at, 'last_status', d.last_status,
      'last_error', d.last_error, 'delivered_at', d.delivered_at, 'created_at', d.created_at)
      order by d.seq desc), '[]'::jsonb)
    from (
      select * from public.whatsapp_deliveries
      where endpoint_id = (p_record ->> 'id')::uuid
        and (p_record ->> 'status' is null or status = p_record ->> 'status')
        and (p_record ->> 'before' is null or seq < (p_record ->> 'before')::bigint)
      order by seq desc
      limit (p_record ->> 'limit')::integer
    ) d
    join public.whatsapp_notifications n on n.id = d.notification_id
  );
end
$$;

comment on function public.gateway_endpoint_deliveries is
  'A user''s endpoint''s deliveries, newest first (p: user_id, id, status, before (a seq), '
  'limit); null when the user has no such endpoint.';


create function public.gateway_endpoint_due(p_endpoint_id uuid)
returns timestamptz
language sql
stable
set search_path = ''
as $$
  select d.next_attempt_at from public.whatsapp_deliveries d
  where d.endpoint_id = p_endpoint_id and d.status = 'pending'
  order by d.seq limit 1
$$;

comment on function public.gateway_endpoint_due is
  'When the endpoint''s first pending delivery is due: the one it waits for.';


create function public.gateway_replay_deliveries(p_record jsonb)
returns jsonb
language plpgsql
set search_path = ''
as $$
declare
  v_endpoint uuid := (p_record ->> 'id')::uuid;
  v_count integer;
begin
  perform 1 from public.whatsapp_endpoints
  where id = v_endpoint and user_id = (p_record ->> 'user_id')::uuid
  for update;
  if not found then
    return null;
  end if;
  update public.whatsapp_deliveries
  set status = 'pending', queued_at = now(), next_attempt_at = now()
  where endpoint_id = v_endpoint and status = 'failed'
    and created_at >= (p_record ->> 'since')::timestamptz;
  get diagnostics v_count = row_count;
  if v_count > 0 then
    update public.whatsapp_endpoints
    set next_due_at = public.gateway_endpoint_due(v_endpoint)
    where id = v_endpoint;
    perform set_config('response.headers', '[{"x-gateway-deliveries": "queued"}]', true);
  end if;
  return jsonb_build_object('replayed', v_count);
end
$$;

comment on function public.gateway_replay_deliveries is
  'Queues again the endpoint''s failed deliveries made since p.since, in their order (p: '
  'user_id, id, since); null when the user has no such endpoint.';


-- The worker ------------------------------------------------------------------------------

create function public.gateway_pending_batch(p_endpoint_id uuid, p_batch integer)
returns jsonb
language sql
stable
set search_path = ''
as $$
  select coalesce(jsonb_agg(jsonb_build_object('id', d.id, 'seq', d.seq,
    'notification_id', d.notification_id, 'attempts', d.attempts, 'body', n.body)
    order by d.seq), '[]'::jsonb)
  from (
    select * from public.whatsapp_deliveries
    where endpoint_id = p_endpoint_id and status = 'pending'
    order by seq limit p_batch
  ) d
  join public.whatsapp_notifications n on n.id = d.notification_id
$$;


create function public.gateway_claim_deliveries(p_record jsonb)
returns jsonb
language plpgsql
set search_path = ''
as $$
declare
  v_claimed jsonb;
begin
  with picked as (
    select e.id from public.whatsapp_endpoints e
    where e.next_due_at <= now() and (e.lease_until is null or e.lease_until <= now())
    order by e.next_due_at, e.id
    limit (p_record ->> 'limit')::integer
    for update skip locked
  ), leased as (
    update public.whatsapp_endpoints e
    set lease_until = now() + make_interval(secs => (p_record ->> 'lease_s')::double precision),
        lease_token = gen_random_uuid()
    from picked where e.id = picked.id
    returning e.*
  )
  select coalesce(jsonb_agg(jsonb_build_object(
    'endpoint', jsonb_build_object('id', l.id, 'user_id', l.user_id, 'url', l.url,
      'secret', l.secret),
    'lease_token', l.lease_token,
    'deliveries', public.gateway_pending_batch(l.id, (p_record ->> 'batch')::integer))), '[]'::jsonb)
  into v_claimed
  from leased l;
  return v_claimed;
end
$$;

comment on function public.gateway_claim_deliveries is
  'Leases up to p.limit endpoints whose first pending delivery is due, the most overdue first '
  '(skipping endpoints another worker holds), with their first p.batch pending deliveries in '
  'order (p: limit, batch, lease_s).';


create function public.gateway_record_deliveries(p_record jsonb)
returns jsonb
language plpgsql
set search_path = ''
as $$
declare
  v_endpoint uuid := (p_record ->> 'endpoint_id')::uuid;
  v_base double precision := (p_record ->> 'retry_base_s')::double precision;
  v_max double precision := (p_record ->> 'retry_max_s')::double precision;
  v_for interval := make_interval(secs => (p_record ->> 'retry_for_s')::double precision);
  v_failed boolean := false;
  v_due timestamptz;
  v_token uuid;
  r jsonb;
begin
  perform 1 from public.whatsapp_endpoints
  where id = v_endpoint and lease_token = (p_record ->> 'lease_token')::uuid
  for update;
  if not found then
    -- The lease ran out and another worker took the endpoint (or it was deleted): it delivers
    -- again what this one could not record. At least once, never lost.
    return jsonb_build_object('lost', true);
  end if;

  for r in select * from jsonb_array_elements(coalesce(p_record -> 'results', '[]'::jsonb)) loop
    if (r ->> 'ok')::boolean then
      update public.whatsapp_deliveries
      set status = 'delivered', attempts = attempts + 1, last_attempt_at = now(),
          delivered_at = now(), last_status = (r ->> 'status')::integer, last_error = null,
          next_attempt_at = null
      where id = (r ->> 'id')::bigint and endpoint_id = v_endpoint and status = 'pending';
    else
      v_failed := true;
      -- Backoff doubles from retry_base_s up to retry_max_s; past retry_for_s since it was
      -- queued, it is kept as failed.
      update public.whatsapp_deliveries
      set attempts = attempts + 1, last_attempt_at = now(),
          last_status = (r ->> 'status')::integer, last_error = r ->> 'error',
          status = case when queued_at + v_for <= now() then 'failed' else 'pending' end,
          next_attempt_at = case when queued_at + v_for <= now() then null
            else now() + make_interval(secs => least(v_max, v_base * 2 ^ least(attempts, 30)))
          end
      where id = (r ->> 'id')::bigint and endpoint_id = v_endpoint and status = 'pending';
    end if;
  end loop;

  if v_failed then
    -- The endpoint is failing: whatever waits behind the failed one and is past its own
    -- retries is kept as failed too, in one go, rather than one attempt at a time.
    update public.whatsapp_deliveries
    set status = 'failed', next_attempt_at = null, last_error = coalesce(last_error, 'expired')
    where endpoint_id = v_endpoint and status = 'pending' and queued_at + v_for <= now();
  end if;

  v_due := public.gateway_endpoint_due(v_endpoint);
  if coalesce((p_record ->> 'more')::boolean, false) and not v_failed and v_due <= now() then
    -- Keep the lease (renewed) and take the next batch: one round trip for both.
    update public.whatsapp_endpoints
    set next_due_at = v_due,
        lease_until = now() + make_interval(secs => (p_record ->> 'lease_s')::double precision)
    where id = v_endpoint
    returning lease_token into v_token;
    return jsonb_build_object('lost', false, 'lease_token', v_token,
      'deliveries', public.gateway_pending_batch(v_endpoint, (p_record ->> 'batch')::integer));
  end if;
  update public.whatsapp_endpoints
  set next_due_at = v_due, lease_until = null, lease_token = null
  where id = v_endpoint;
  return jsonb_build_object('lost', false, 'deliveries', '[]'::jsonb);
end
$$;

comment on function public.gateway_record_deliveries is
  'Records the attempts a worker made under its lease on an endpoint (p: endpoint_id, '
  'lease_token, results [{id, ok, status, error}], retry_base_s, retry_max_s, retry_for_s); '
  'with p.more, and nothing failed, keeps the lease and answers the next due batch '
  '(p: batch, lease_s), else gives the endpoint back. {"lost": true} when the lease is gone.';


create function public.gateway_forget_notifications(p_record jsonb)
returns integer
language plpgsql
set search_path = ''
as $$
declare
  v_count integer;
begin
  delete from public.whatsapp_notifications
  where id in (
    select n.id from public.whatsapp_notifications n
    where n.created_at < now() - make_interval(secs => (p_record ->> 'older_than_s')::double precision)
      and not exists (select 1 from public.whatsapp_deliveries d
                      where d.notification_id = n.id and d.status = 'pending')
    order by n.created_at
    limit (p_record ->> 'limit')::integer
  );
  get diagnostics v_count = row_count;
  return v_count;
end
$$;

comment on function public.gateway_forget_notifications is
  'Deletes up to p.limit notifications older than p.older_than_s with nothing pending, and '
  'their deliveries; returns how many.';


revoke execute on function
  public.gateway_utc(timestamptz),
  public.gateway_notify(uuid, text, jsonb),
  public.gateway_message_event_data(public.whatsapp_messages),
  public.gateway_notify_message(),
  public.gateway_notify_session(),
  public.gateway_endpoint_json(public.whatsapp_endpoints),
  public.gateway_create_endpoint(jsonb),
  public.gateway_endpoints(jsonb),
  public.gateway_delete_endpoint(jsonb),
  public.gateway_endpoint_deliveries(jsonb),
  public.gateway_endpoint_due(uuid),
  public.gateway_replay_deliveries(jsonb),
  public.gateway_pending_batch(uuid, integer),
  public.gateway_claim_deliveries(jsonb),
  public.gateway_record_deliveries(jsonb),
  public.gateway_forget_notifications(jsonb)
  from public, anon, authenticated;
-- service_role, which the functions call as, runs every function of the gateway.
grant execute on all functions in schema public to service_role;
