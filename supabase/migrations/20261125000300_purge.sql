-- The purge job: old QR codes cleared, long-disconnected sessions deleted, in bounded batches.

-- A user's message history outlives the session row it came through: purging a stale session
-- keeps the messages (still the user's, by user_id) and forgets which session carried them.
alter table public.whatsapp_messages alter column whatsapp_session_id drop not null;
alter table public.whatsapp_messages
  drop constraint whatsapp_messages_whatsapp_session_id_fkey,
  add constraint whatsapp_messages_whatsapp_session_id_fkey
    foreign key (whatsapp_session_id) references public.whatsapp_sessions (id) on delete set null;

-- The purge finds stale sessions by this expression; disconnected_at is set by every path
-- into 'disconnected', updated_at covers a row that never got one.
drop index public.whatsapp_sessions_stale_idx;
create index whatsapp_sessions_stale_idx
  on public.whatsapp_sessions ((coalesce(disconnected_at, updated_at)))
  where status = 'disconnected';


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
  v_deleted jsonb;
begin
  -- Rows another transaction holds are skipped, not waited for: the purge never blocks a
  -- user's request, and the next run picks them up.
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
    select s.id, s.session_id, s.server_url, k.host_token
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
    returning stale.session_id, stale.server_url, stale.host_token
  )
  select coalesce(jsonb_agg(jsonb_build_object(
    'session_id', session_id, 'server_url', server_url, 'host_token', host_token)), '[]')
  into v_deleted
  from gone;

  return jsonb_build_object('qr_cleared', v_qr_cleared, 'deleted', v_deleted);
end
$$;

comment on function public.gateway_purge_batch is
  'One bounded batch of the purge: clears up to p_batch_size QR codes older than p_qr_ttl_s and '
  'deletes up to p_batch_size sessions disconnected for longer than p_stale_after_s, returning '
  'the deleted sessions (with their encrypted host tokens) so their host sessions can be closed.';

revoke execute on function public.gateway_purge_batch(integer, integer, integer, timestamptz)
  from public, anon, authenticated;
grant execute on function public.gateway_purge_batch(integer, integer, integer, timestamptz)
  to service_role;


-- Key rotation: stored host tokens not yet under the active encryption key, a page at a time
-- (keyset by session id), and a compare-and-swap to store them re-encrypted.
create function public.gateway_tokens_to_reencrypt(
  p_active_key_id text,
  p_after uuid,
  p_limit integer
) returns jsonb
language sql
stable
set search_path = ''
as $$
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
$$;

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

revoke execute on function
  public.gateway_tokens_to_reencrypt(text, uuid, integer),
  public.gateway_replace_tokens(jsonb)
  from public, anon, authenticated;
grant execute on function
  public.gateway_tokens_to_reencrypt(text, uuid, integer),
  public.gateway_replace_tokens(jsonb)
  to service_role;
