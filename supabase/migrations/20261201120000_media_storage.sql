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

-- Received media stays until the functions remove it; a user deletes only their own uploads.
create policy "users delete their outgoing media" on storage.objects
  for delete to authenticated
  using (
    bucket_id = 'whatsapp-media'
    and (storage.foldername(name))[1] = (select auth.uid())::text
    and (storage.foldername(name))[2] = 'outgoing'
  );
