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

-- Replacing an upload (x-upsert) is an update; it may not move an object out of the folder.
create policy "users replace their outgoing media" on storage.objects
  for update to authenticated
  using (
    bucket_id = 'whatsapp-media'
    and (storage.foldername(name))[1] = (select auth.uid())::text
    and (storage.foldername(name))[2] = 'outgoing'
  )
  with check (
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
language sql
immutable
set search_path = ''
as $$
  select case when p_ext ~ '^[a-z0-9]{1,8}$'
    then p_user_id::text || '/' || p_session_id::text || '/' || p_message_id::text || '.' || p_ext
  end
$$;

comment on function public.gateway_media_path is
  'The object name of a message''s file in the bucket whatsapp-media; null without a valid '
  'extension.';

-- What became of a received file: stored (with its path, size and digest), too_large or
-- unavailable; only a message whose file is still pending changes.
create function public.gateway_record_media(
  p_message_id uuid,
  p_state text,
  p_path text default null,
  p_size bigint default null,
  p_sha256 text default null,
  p_mime_type text default null
) returns boolean
language plpgsql
set search_path = ''
as $$
begin
  if p_state not in ('stored', 'too_large', 'unavailable', 'pending') then
    raise exception 'unknown media state %', p_state using errcode = '22023';
  end if;
  update public.whatsapp_messages set
    media_state = p_state,
    media_path = case when p_state = 'stored' then p_path else media_path end,
    size = coalesce(p_size, size),
    sha256 = coalesce(p_sha256, sha256),
    mime_type = coalesce(p_mime_type, mime_type),
    updated_at = now()
  where id = p_message_id and media_state = 'pending';
  return found;
end
$$;

comment on function public.gateway_record_media is
  'Records what became of a message''s pending file: stored at p_path (with its size, sha256 '
  'and type), too_large or unavailable.';

revoke execute on function
  public.gateway_media_path(uuid, uuid, uuid, text),
  public.gateway_record_media(uuid, text, text, bigint, text, text)
  from public, anon, authenticated;
-- service_role, which the functions call as, runs every function of the gateway.
grant execute on all functions in schema public to service_role;
