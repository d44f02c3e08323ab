-- Housekeeping, run by the purge job and by operators: old QR codes and stale sessions in
-- bounded batches, the event log's retention, key rotation for stored host tokens, and the
-- host pool.
--
-- The reads the purge and every placement run are PL/pgSQL, so their plans are kept (see the
-- session functions' migration).

create function public.gateway_purge_batch(
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
  v_stale uuid[];
  v_deleted jsonb;
  v_scheduled_failed integer;
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

  select coalesce(array_agg(stale.id), '{}') into v_stale
  from (
    select s.id from public.whatsapp_sessions s
    where s.status = 'disconnected'
      and coalesce(s.disconnected_at, s.updated_at) < p_now - make_interval(secs => p_stale_after_s)
    order by coalesce(s.disconnected_at, s.updated_at)
    limit p_batch_size
    for update of s skip locked
  ) stale;

  -- The sessions' scheduled messages go with them: nothing could send them once they are
  -- gone (the scheduler finds them through their session), so they fail with a reason the
  -- user reads, instead of waiting forever and counting as scheduled in the reports. Before
  -- the delete, so what keeps a conversation's row up to date still finds its account.
  update public.whatsapp_messages m set
    status = 'failed', send_state = 'done', lease_until = null,
    error_code = 'account_removed', updated_at = p_now
  where m.whatsapp_session_id = any(v_stale) and m.send_at is not null
    and m.status in ('scheduled', 'queued') and m.wpp_message_id is null;
  get diagnostics v_scheduled_failed = row_count;

  with gone as (
    delete from public.whatsapp_sessions s
    where s.id = any(v_stale)
    returning s.session_id, s.host_id,
      (select k.host_token from public.whatsapp_session_secrets k where k.session_id = s.id)
        as host_token
  )
  select coalesce(jsonb_agg(jsonb_build_object(
    'session_id', session_id, 'host_id', host_id, 'host_token', host_token)), '[]')
  into v_deleted
  from gone;

  return jsonb_build_object('qr_cleared', v_qr_cleared, 'deleted', v_deleted,
    'scheduled_failed', v_scheduled_failed);
end
$$;

comment on function public.gateway_purge_batch is
  'One bounded batch of the purge: clears up to p_batch_size QR codes older than p_qr_ttl_s and '
  'deletes up to p_batch_size sessions disconnected for longer than p_stale_after_s, failing '
  'their scheduled messages (account_removed) and returning the deleted sessions (with their '
  'encrypted host tokens) so their host sessions can be closed.';



-- One bounded batch of a retention: the oldest rows before it, rows another purge holds
-- skipped. The event log forgets events after EVENT_RETENTION; messages go after
-- MESSAGE_RETENTION (none when it is unset), their files to whatsapp_media_trash on the way
-- (its trigger), for the purge to delete from the bucket.
create function public.gateway_purge_older(
  p_rows text,
  p_retention_s integer,
  p_batch_size integer,
  p_now timestamptz default now()
) returns integer
language plpgsql
set search_path = ''
as $$
declare
  v_table regclass;
  v_time text;
  v_deleted integer;
begin
  case p_rows
    when 'events' then v_table := 'public.whatsapp_events'; v_time := 'received_at';
    when 'messages' then v_table := 'public.whatsapp_messages'; v_time := 'created_at';
    else raise exception 'unknown rows to purge %', p_rows using errcode = '22023';
  end case;
  if coalesce(p_retention_s, 0) <= 0 then
    return 0;
  end if;
  execute format(
    'delete from %1$s t using (select id from %1$s where %2$I < $1 order by %2$I limit $2'
    ' for update skip locked) old where t.id = old.id',
    v_table, v_time)
  using p_now - make_interval(secs => p_retention_s), p_batch_size;
  get diagnostics v_deleted = row_count;
  return v_deleted;
end
$$;

comment on function public.gateway_purge_older is
  'One bounded batch of a retention: up to p_batch_size of the events (p_rows ''events'') or '
  'messages (''messages'') older than p_retention_s go, oldest first, and how many went is '
  'answered (p_retention_s 0: kept); a message''s files are left to delete from the bucket.';



create function public.gateway_tokens_to_reencrypt(
  p_active_key_id text,
  p_after uuid,
  p_limit integer
) returns jsonb
language plpgsql
stable
set search_path = ''
as $$
begin
  return (
    select coalesce(jsonb_agg(jsonb_build_object(
      'session_id', t.session_id, 'name', t.name, 'host_token', t.host_token)
      order by t.session_id), '[]')
    from (
      select k.session_id, s.session_id as name, k.host_token
      from public.whatsapp_session_secrets k
      join public.whatsapp_sessions s on s.id = k.session_id
      where left(k.host_token, length('v1.' || p_active_key_id || '.'))
          <> 'v1.' || p_active_key_id || '.'
        and (p_after is null or k.session_id > p_after)
      order by k.session_id
      limit p_limit
    ) t
  );
end
$$;

comment on function public.gateway_tokens_to_reencrypt is
  'Key rotation: stored host tokens not yet under the active key, a page at a time (keyset by '
  'session id).';



create function public.gateway_replace_tokens(p_tokens jsonb) returns integer
language plpgsql
set search_path = ''
as $$
declare
  v_count integer;
begin
  update public.whatsapp_session_secrets k set
    host_token = t.host_token, updated_at = now()
  from jsonb_to_recordset(p_tokens) as t(session_id uuid, old_token text, host_token text)
  where k.session_id = t.session_id and k.host_token = t.old_token;
  get diagnostics v_count = row_count;
  return v_count;
end
$$;

comment on function public.gateway_replace_tokens is
  'Stores re-encrypted host tokens, each only if it is still the one that was read.';



create function public.gateway_hosts() returns jsonb
language plpgsql
stable
set search_path = ''
as $$
begin
  return (
    select coalesce(jsonb_agg(jsonb_build_object(
      'id', h.id, 'name', h.name, 'url', h.url, 'secret_key', h.secret_key,
      'capacity', h.capacity, 'state', h.state,
      'sessions', (select count(*) from public.whatsapp_sessions o
                   where o.host_id = h.id and o.status <> 'disconnected'),
      'last_health_at', h.last_health_at, 'last_health_ok', h.last_health_ok,
      'last_error', h.last_error) order by h.name), '[]')
    from public.wpp_hosts h
  );
end
$$;

comment on function public.gateway_hosts is
  'The host pool with each host''s load, for operators and the purge.';



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

comment on function public.gateway_put_host is
  'Adds a host (url given) or changes one (only what is given).';



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

comment on function public.gateway_remove_host is
  'Removes a host that holds no session.';



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

comment on function public.gateway_host_sessions is
  'The sessions holding a browser on a host (idle since p_idle_before, if given).';



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
    -- Locked here, so a session that leaves this host meanwhile is not disconnected with it.
    select count(*) into v_disconnected
    from public.gateway_mark_disconnected(
      array(select id from public.whatsapp_sessions
            where host_id = p_host_id and status <> 'disconnected'
            for update),
      'host_down', p_now);
  end if;
  return jsonb_build_object('sessions_disconnected', v_disconnected);
end
$$;

comment on function public.gateway_mark_host is
  'Records a health check; marking a host down disconnects its sessions, so their next start '
  'places them anew.';



-- What a purge clears and how much at a time (read through its type: see the session
-- functions' migration).
create type public.gateway_purge_limits as (
  qr_ttl_s integer,           -- QR codes older than this are cleared
  stale_after_s integer,      -- sessions disconnected for longer than this are deleted
  batch_size integer,         -- sessions (and tokens to re-encrypt) per batch
  retention_s integer,        -- events older than this are forgotten
  events_batch_size integer,  -- events per batch
  active_key_id text,         -- tokens under another key are re-encrypted (null: none)
  message_retention_s integer, -- messages older than this are deleted (0: kept)
  files_batch_size integer     -- files of deleted messages per Storage call
);

-- The purge's first pass, which on most runs is all there is to do, is one round trip instead
-- of six: the host pool, the first batch of stale sessions, of old events, of old messages, of
-- files of deleted messages, and of host tokens to re-encrypt, each as its own function does
-- it.
create function public.gateway_purge_first_pass(
  p_limits jsonb,
  p_now timestamptz default now()
) returns jsonb
language plpgsql
volatile
set search_path = ''
as $$
declare
  l constant public.gateway_purge_limits :=
    jsonb_populate_record(null::public.gateway_purge_limits, p_limits);
begin
  return jsonb_build_object(
    'hosts', public.gateway_hosts(),
    'batch', public.gateway_purge_batch(l.qr_ttl_s, l.stale_after_s, l.batch_size, p_now),
    'events_deleted',
      public.gateway_purge_older('events', l.retention_s, l.events_batch_size, p_now),
    'messages_deleted',
      public.gateway_purge_older('messages', l.message_retention_s, l.batch_size, p_now),
    -- After the messages: their files are in it.
    'trash', public.gateway_media_trash(l.files_batch_size),
    'tokens', case when l.active_key_id is null then '[]'::jsonb
                   else public.gateway_tokens_to_reencrypt(l.active_key_id, null, l.batch_size)
              end);
end
$$;

comment on function public.gateway_purge_first_pass is
  'The purge''s first round trip: the host pool and the first batch of each housekeeping task '
  '(active_key_id null: no token re-encryption; message_retention_s 0: messages are kept).';


revoke execute on function
  public.gateway_purge_batch(integer, integer, integer, timestamptz),
  public.gateway_purge_older(text, integer, integer, timestamptz),
  public.gateway_tokens_to_reencrypt(text, uuid, integer),
  public.gateway_replace_tokens(jsonb),
  public.gateway_hosts(),
  public.gateway_put_host(text, text, text, integer, text),
  public.gateway_remove_host(text),
  public.gateway_host_sessions(uuid, timestamptz),
  public.gateway_mark_host(uuid, boolean, text, boolean, timestamptz),
  public.gateway_purge_first_pass(jsonb, timestamptz)
  from public, anon, authenticated;
-- service_role, which the functions call as, runs every function of the gateway.
grant execute on all functions in schema public to service_role;
