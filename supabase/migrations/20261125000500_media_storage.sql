-- Media: the private Storage bucket whatsapp-media and who may touch which of its objects.
--
-- Folders: <user id>/outgoing/<name> holds what a user uploads to send; <user id>/<session
-- id>/<name> holds what their WhatsApp received, written by the functions with the service key
-- (service_role bypasses these policies). A user reads everything under their own id and
-- writes only under their own outgoing folder.
--
-- storage.buckets and storage.objects belong to Supabase Storage (supabase_storage_admin);
-- postgres, which applies this migration, is a member of that role on every Supabase project,
-- so the policies below apply unchanged there and to the local database.

-- The bucket's limits are Storage's own checks on every upload, the service key's included:
-- 16 MiB, and the types WhatsApp sends as images, stickers, video, audio and documents.
insert into storage.buckets (id, name, public, file_size_limit, allowed_mime_types)
values (
  'whatsapp-media',
  'whatsapp-media',
  false,
  16777216,
  array[
    'image/jpeg',
    'image/png',
    'image/webp',
    'video/mp4',
    'video/3gpp',
    'audio/ogg',
    'audio/mpeg',
    'audio/mp4',
    'audio/aac',
    'audio/amr',
    'application/pdf',
    'text/plain',
    'application/msword',
    'application/vnd.openxmlformats-officedocument.wordprocessingml.document',
    'application/vnd.ms-excel',
    'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet',
    'application/vnd.ms-powerpoint',
    'application/vnd.openxmlformats-officedocument.presentationml.presentation'
  ]
)
-- A bucket made by hand beforehand (say from the dashboard, public) is put right, not kept.
on conflict (id) do update
  set public = excluded.public,
      file_size_limit = excluded.file_size_limit,
      allowed_mime_types = excluded.allowed_mime_types;

-- One policy per command, for signed-in users only; (select auth.uid()) is evaluated once per
-- statement. No policy reaches another bucket.
create policy "users read their own media" on storage.objects
  for select to authenticated
  using (
    bucket_id = 'whatsapp-media'
    and (storage.foldername(name))[1] = (select auth.uid())::text
  );

create policy "users upload media to their outgoing folder" on storage.objects
  for insert to authenticated
  with check (
    bucket_id = 'whatsapp-media'
    and (storage.foldername(name))[1] = (select auth.uid())::text
    and (storage.foldername(name))[2] = 'outgoing'
  );

-- Replacing an upload (x-upsert) is an update; it may not move an object out of the folder:
-- an update policy with no check of its own checks the new row with its using rule too.
create policy "users replace their outgoing media" on storage.objects
  for update to authenticated
  using (
    bucket_id = 'whatsapp-media'
    and (storage.foldername(name))[1] = (select auth.uid())::text
    and (storage.foldername(name))[2] = 'outgoing'
  );

-- A user deletes only their own uploads; what their WhatsApp received is not theirs to delete.
create policy "users delete their outgoing media" on storage.objects
  for delete to authenticated
  using (
    bucket_id = 'whatsapp-media'
    and (storage.foldername(name))[1] = (select auth.uid())::text
    and (storage.foldername(name))[2] = 'outgoing'
  );

-- Where the functions keep a message's file: <user id>/<session id>/<message id>.<ext>, in
-- the folder of the session that sent or received it. Messages carry their file's path
-- (whatsapp_messages.media_path); a file the user uploaded to send stays where they put it.
create function public.gateway_media_path(
  p_user_id uuid, p_session_id uuid, p_message_id uuid, p_ext text
) returns text
language plpgsql
immutable
set search_path = ''
as $$
begin
  return case when p_ext ~ '^[a-z0-9]{1,8}$'
    then p_user_id::text || '/' || p_session_id::text || '/' || p_message_id::text || '.' || p_ext
  end;
end
$$;

comment on function public.gateway_media_path is
  'The object name of a message''s file in the bucket whatsapp-media; null without a valid '
  'extension.';

-- Received files to fetch from the host, one row per message with a file (service only, apart
-- from the message row so that a pass publishes no Realtime change for its bookkeeping). The
-- webhook and reconcile store the message with its file pending and its row here due at once;
-- the media function (started at once for it, and every minute on a schedule) claims due rows
-- under a lease, so two passes never fetch one file together, and tries again after a wait
-- that doubles, until a bounded number of tries.
create table public.whatsapp_media_fetches (
  message_id uuid primary key references public.whatsapp_messages (id) on delete cascade,
  path text not null,       -- where the file goes in the bucket (gateway_media_path)
  attempts integer not null default 0,
  next_at timestamptz,      -- when it is due; null once the file's fate is known
  lease_until timestamptz,  -- a pass is fetching it until then
  last_error text           -- why the last try did not keep the file, in a word
);

comment on table public.whatsapp_media_fetches is
  'Received files to fetch from the host (service only): where each goes, the tries so far, '
  'when the next is due and the lease of the pass at it.';

create index whatsapp_media_fetches_due_idx
  on public.whatsapp_media_fetches (next_at) where next_at is not null;

revoke all on table public.whatsapp_media_fetches from anon, authenticated;
grant all on table public.whatsapp_media_fetches to service_role;
alter table public.whatsapp_media_fetches enable row level security;

-- What a media pass claims: a batch of the due files of connected sessions (or the ones
-- named: the webhook and reconcile start a pass for the files they just stored).
create type public.gateway_media_claim as (
  batch_size integer,
  lease_s integer,        -- how long the pass holds them
  retry_s integer,        -- the wait after a first failed try; it doubles with each one
  max_attempts integer,   -- a file tried this often and still not given is unavailable
  message_ids uuid[]      -- these only (null: any due file)
);

create function public.gateway_claim_media(
  p_claim jsonb,
  p_now timestamptz default now()
) returns jsonb
language plpgsql
set search_path = ''
as $$
declare
  c constant public.gateway_media_claim :=
    jsonb_populate_record(null::public.gateway_media_claim, p_claim);
  v_claimed jsonb;
begin
  -- Files tried as often as allowed: given up, without asking the host again.
  with spent as (
    update public.whatsapp_media_fetches f set next_at = null, lease_until = null
    where f.next_at <= p_now and f.attempts >= c.max_attempts
      and (f.lease_until is null or f.lease_until <= p_now)
    returning f.message_id
  )
  update public.whatsapp_messages m set media_state = 'unavailable', updated_at = p_now
  from spent where m.id = spent.message_id and m.media_state = 'pending';

  with due as (
    select f.message_id from public.whatsapp_media_fetches f
    join public.whatsapp_messages m on m.id = f.message_id
    join public.whatsapp_sessions s on s.id = m.whatsapp_session_id
    where f.next_at <= p_now
      and (f.lease_until is null or f.lease_until <= p_now)
      and m.media_state = 'pending'
      and s.status = 'connected'
      and (c.message_ids is null or f.message_id = any(c.message_ids))
    order by f.next_at
    limit c.batch_size
    for update of f skip locked
  ), claimed as (
    -- The next try is due after the wait, whatever this one does: a pass that dies leaves
    -- its files to a later one.
    update public.whatsapp_media_fetches f set
      attempts = f.attempts + 1,
      lease_until = p_now + make_interval(secs => c.lease_s),
      next_at = p_now + make_interval(secs => c.retry_s * power(2, least(f.attempts, 16)))
    from due where f.message_id = due.message_id
    returning f.message_id, f.path, f.attempts
  )
  select coalesce(jsonb_agg(jsonb_build_object(
      'session_name', s.session_id, 'message_id', m.id, 'wpp_message_id', m.wpp_message_id,
      'path', claimed.path, 'attempts', claimed.attempts) || public.gateway_host_access(s)
    order by m.created_at), '[]'::jsonb)
  into v_claimed
  from claimed
  join public.whatsapp_messages m on m.id = claimed.message_id
  join public.whatsapp_sessions s on s.id = m.whatsapp_session_id;
  return v_claimed;
end
$$;

comment on function public.gateway_claim_media is
  'Leases due received files of connected sessions (or the ones named) to one media pass, '
  'counting the try and setting when the next is due; files tried max_attempts times are '
  'given up as unavailable.';

-- What became of a message's file: stored (at its path, with its size and digest), too_large
-- or unavailable, each final; retry (the host or Storage failed: the next try is due when the
-- claim said) or wait (the session is not connected on its host: this try does not count).
-- Only a message whose file is still pending changes.
create type public.gateway_media_outcome as (
  message_id uuid,
  state text,
  path text,
  size bigint,
  sha256 text,
  mime_type text,
  error text      -- why it was not kept, in a word (logged with the fetch)
);

create function public.gateway_record_media(
  p_outcome jsonb,
  p_now timestamptz default now()
) returns text
language plpgsql
set search_path = ''
as $$
declare
  o constant public.gateway_media_outcome :=
    jsonb_populate_record(null::public.gateway_media_outcome, p_outcome);
begin
  if o.state not in ('stored', 'too_large', 'unavailable', 'retry', 'wait') then
    raise exception 'unknown media outcome %', o.state using errcode = '22023';
  end if;
  update public.whatsapp_media_fetches set
    lease_until = null,
    attempts = case when o.state = 'wait' then greatest(attempts - 1, 0) else attempts end,
    next_at = case when o.state in ('retry', 'wait') then next_at end,
    last_error = coalesce(o.error, last_error)
  where message_id = o.message_id;
  if o.state in ('retry', 'wait') then
    return 'later';
  end if;
  update public.whatsapp_messages set
    media_state = o.state,
    media_path = case when o.state = 'stored' then o.path else media_path end,
    size = coalesce(o.size, size),
    sha256 = coalesce(o.sha256, sha256),
    mime_type = coalesce(o.mime_type, mime_type),
    updated_at = p_now
  where id = o.message_id and media_state = 'pending';
  if found then
    return 'recorded';
  end if;
  -- A message deleted while its file was fetched: the caller deletes what it uploaded.
  return case when exists (select 1 from public.whatsapp_messages where id = o.message_id)
    then 'not_pending' else 'gone' end;
end
$$;

comment on function public.gateway_record_media is
  'Records what became of a message''s pending file: stored at its path (with its size, '
  'sha256 and type), too_large or unavailable, for good; or a try to repeat (retry, or wait '
  'while its session is not connected, which does not count as a try). Answers recorded, '
  'later, not_pending (its fate was known already) or gone (the message was deleted).';

-- Files whose message is gone, to delete from the bucket (service only). Storage deletes an
-- object only through its API (a direct delete of storage.objects is refused), so deleting a
-- message, whatever deletes it (the purge's retention, a user's account deleted), leaves the
-- names of its files here, and the purge deletes them through Storage, then the names. Only
-- the functions' own files: what a user uploaded to send stays theirs to delete.
create table public.whatsapp_media_trash (
  path text primary key,
  trashed_at timestamptz not null default now()
);

comment on table public.whatsapp_media_trash is
  'Objects of the bucket whatsapp-media whose message is deleted, for the purge to delete '
  'through Storage (service only).';

revoke all on table public.whatsapp_media_trash from anon, authenticated;
grant all on table public.whatsapp_media_trash to service_role;
alter table public.whatsapp_media_trash enable row level security;

-- Before the row goes (its file-to-fetch row goes with it, by cascade): the stored file, and
-- where a fetch still under way would put one.
create function public.gateway_trash_media() returns trigger
language plpgsql
set search_path = ''
as $$
begin
  insert into public.whatsapp_media_trash (path)
  select p from (
    select old.media_path as p
    union all
    select f.path from public.whatsapp_media_fetches f where f.message_id = old.id
  ) files
  where p is not null and (storage.foldername(p))[2] is distinct from 'outgoing'
  on conflict (path) do nothing;
  return old;
end
$$;

create trigger whatsapp_messages_trash_media
  before delete on public.whatsapp_messages
  for each row
  when (old.media_path is not null or old.media_state is not null)
  execute function public.gateway_trash_media();

-- Volatile (the default), not stable: the purge's first pass deletes old messages and reads
-- this in one statement, and a stable function would see the trash as it was before.
create function public.gateway_media_trash(p_limit integer)
returns jsonb
language sql
set search_path = ''
as $$
  select coalesce(jsonb_agg(path order by trashed_at), '[]'::jsonb) from (
    select path, trashed_at from public.whatsapp_media_trash order by trashed_at limit p_limit
  ) t
$$;

comment on function public.gateway_media_trash is
  'The next files of deleted messages to delete from the bucket, oldest first.';

create function public.gateway_forget_media_trash(p_paths jsonb)
returns integer
language sql
set search_path = ''
as $$
  with gone as (
    delete from public.whatsapp_media_trash
    where path in (select jsonb_array_elements_text(p_paths))
    returning 1
  )
  select count(*)::integer from gone
$$;

comment on function public.gateway_forget_media_trash is
  'Forgets files of deleted messages once Storage has deleted them.';

revoke execute on function
  public.gateway_media_path(uuid, uuid, uuid, text),
  public.gateway_claim_media(jsonb, timestamptz),
  public.gateway_record_media(jsonb, timestamptz),
  public.gateway_trash_media(),
  public.gateway_media_trash(integer),
  public.gateway_forget_media_trash(jsonb)
  from public, anon, authenticated;
-- service_role, which the functions call as, runs every function of the gateway.
grant execute on all functions in schema public to service_role;
