-- Makes a plain PostgreSQL look like a Supabase project's database, for the local stack and the
-- tests only. A real Supabase project already has all of this; the migrations in
-- supabase/migrations/ assume it and apply unchanged to either. Idempotent.
--
-- Runs as supabase_admin, the superuser (as Supabase's own setup does). Afterwards, as on
-- Supabase, postgres is not a superuser: it owns the database and what the migrations create,
-- and the Supabase CLI applies the migrations as postgres.
-- Follows supabase/postgres's init scripts and migrations (initial schema, demote-postgres,
-- grant_auth_roles_to_postgres, grant_predefined_roles_to_postgres) and supabase/auth's helper
-- functions.

do $$
begin
  if not exists (select from pg_roles where rolname = 'postgres') then
    create role postgres login;
  end if;
  if not exists (select from pg_roles where rolname = 'anon') then
    create role anon nologin noinherit;
  end if;
  if not exists (select from pg_roles where rolname = 'authenticated') then
    create role authenticated nologin noinherit;
  end if;
  if not exists (select from pg_roles where rolname = 'service_role') then
    create role service_role nologin noinherit bypassrls;
  end if;
  if not exists (select from pg_roles where rolname = 'authenticator') then
    create role authenticator login noinherit;
  end if;
end
$$;

alter role supabase_admin superuser createdb createrole replication bypassrls;
alter role postgres nosuperuser createdb createrole login replication bypassrls;
grant anon, authenticated, service_role to postgres;
grant pg_read_all_data, pg_signal_backend to postgres;
alter role postgres set search_path to "$user", public, extensions;

alter role anon inherit;
alter role authenticated inherit;
alter role service_role inherit;
grant anon, authenticated, service_role to authenticator;

alter role anon set statement_timeout = '3s';
alter role authenticated set statement_timeout = '8s';
alter role authenticator set statement_timeout = '8s';
alter role authenticator set lock_timeout = '8s';

-- postgres owns the project's database, and so (PostgreSQL 15+) its public schema.
do $$
begin
  execute format('alter database %I owner to postgres', current_database());
end
$$;

-- The Realtime publication belongs to postgres, so its migrations can add tables to it.
do $$
begin
  if not exists (select from pg_publication where pubname = 'supabase_realtime') then
    create publication supabase_realtime;
  end if;
end
$$;
alter publication supabase_realtime owner to postgres;

create schema if not exists extensions authorization postgres;
create schema if not exists auth authorization supabase_admin;
create schema if not exists storage authorization supabase_admin;

grant usage on schema public, extensions to postgres, anon, authenticated, service_role;
grant usage on schema auth to anon, authenticated, service_role;
grant all on schema auth, extensions to postgres;

-- What a new object grants by default: everything, to every API role. In public, whoever of
-- the two creates it (each migration revokes what a role must not have); in storage, what
-- supabase_admin creates (the Storage schema below).
do $$
declare
  kind text;
begin
  foreach kind in array array['tables', 'functions', 'sequences'] loop
    execute format('alter default privileges for role postgres, supabase_admin in schema public'
      ' grant all on %s to postgres, anon, authenticated, service_role', kind);
    execute format('alter default privileges for role supabase_admin in schema storage'
      ' grant all on %s to postgres, anon, authenticated, service_role', kind);
  end loop;
end
$$;

-- The columns of auth.users that anything here reads; Supabase's table has more.
create table if not exists auth.users (
  id uuid primary key,
  aud varchar(255) default 'authenticated',
  role varchar(255) default 'authenticated',
  email varchar(255) unique,
  encrypted_password varchar(255),
  raw_app_meta_data jsonb default '{"provider": "email", "providers": ["email"]}',
  raw_user_meta_data jsonb default '{}',
  is_anonymous boolean not null default false,
  created_at timestamptz default now(),
  updated_at timestamptz default now()
);

-- One claim of the request's JWT, as Supabase's auth.uid(), auth.role() and auth.email() each
-- read theirs: its own setting (request.jwt.claim.<name>), else the key of all the claims.
create or replace function auth.claim(name text) returns text
language sql stable
as $$
  select coalesce(
    nullif(current_setting('request.jwt.claim.' || name, true), ''),
    (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> name)
  )
$$;

create or replace function auth.uid() returns uuid
language sql stable
as $$
  select auth.claim('sub')::uuid
$$;

create or replace function auth.role() returns text
language sql stable
as $$
  select auth.claim('role')
$$;

create or replace function auth.email() returns text
language sql stable
as $$
  select auth.claim('email')
$$;

create or replace function auth.jwt() returns jsonb
language sql stable
as $$
  select coalesce(
    nullif(current_setting('request.jwt.claim', true), ''),
    nullif(current_setting('request.jwt.claims', true), '')
  )::jsonb
$$;

grant execute on function
  auth.claim(text), auth.uid(), auth.role(), auth.email(), auth.jwt()
  to anon, authenticated, service_role;
grant all on all tables in schema auth to postgres;
grant all on all routines in schema auth to postgres;

-- Supabase Storage's schema, as a project's database has it (supabase/postgres's storage init
-- script, then supabase/storage's tenant migrations), as far as the product uses it: the
-- buckets and objects tables, their path helpers, RLS on both. The tables and helpers belong to
-- supabase_storage_admin, the Storage server's own role; postgres is a member of it (as on
-- Supabase, so that a migration run as postgres may create policies on storage.objects), and
-- holds every privilege on both tables, as do anon, authenticated and service_role: the
-- policies decide, and service_role bypasses them.
do $$
begin
  if not exists (select from pg_roles where rolname = 'supabase_storage_admin') then
    create role supabase_storage_admin noinherit createrole login noreplication;
  end if;
end
$$;
grant supabase_storage_admin to postgres;
alter role supabase_storage_admin set search_path = storage;

grant usage on schema storage to postgres, anon, authenticated, service_role;
grant all on schema storage to postgres, supabase_storage_admin;

create table if not exists storage.buckets (
  id text primary key,
  name text not null,
  owner uuid,
  owner_id text,
  public boolean default false,
  file_size_limit bigint,
  allowed_mime_types text[],
  created_at timestamptz default now(),
  updated_at timestamptz default now()
);
create unique index if not exists bname on storage.buckets using btree (name);
comment on column storage.buckets.owner is 'Field is deprecated, use owner_id instead';

create table if not exists storage.objects (
  id uuid primary key default gen_random_uuid(),
  bucket_id text constraint "objects_bucketId_fkey" references storage.buckets (id),
  name text,
  owner uuid,
  owner_id text,
  metadata jsonb,
  user_metadata jsonb,
  path_tokens text[] generated always as (string_to_array(name, '/')) stored,
  version text,
  created_at timestamptz default now(),
  updated_at timestamptz default now(),
  last_accessed_at timestamptz default now()
);
create unique index if not exists bucketid_objname on storage.objects using btree (bucket_id, name);
create index if not exists name_prefix_search on storage.objects (name text_pattern_ops);
comment on column storage.objects.owner is 'Field is deprecated, use owner_id instead';

alter table storage.buckets enable row level security;
alter table storage.objects enable row level security;

create or replace function storage.foldername(name text) returns text[]
language sql immutable
as $$
  select parts[1 : array_length(parts, 1) - 1] from string_to_array(name, '/') parts
$$;

create or replace function storage.filename(name text) returns text
language sql immutable
as $$
  select parts[array_length(parts, 1)] from string_to_array(name, '/') parts
$$;

create or replace function storage.extension(name text) returns text
language sql immutable
as $$
  select reverse(split_part(reverse(storage.filename(name)), '.', 1))
$$;

create or replace function storage.update_updated_at_column() returns trigger
language plpgsql
as $$
begin
  new.updated_at = now();
  return new;
end
$$;
create or replace trigger update_objects_updated_at before update on storage.objects
  for each row execute function storage.update_updated_at_column();

-- Rows of storage.objects and storage.buckets are deleted through the Storage API, which sets
-- storage.allow_delete_query for its own transaction; a direct delete is refused, so a migration
-- or a function that tried one would fail here as on Supabase.
create or replace function storage.protect_delete() returns trigger
language plpgsql
as $$
begin
  if coalesce(current_setting('storage.allow_delete_query', true), 'false') <> 'true' then
    raise exception 'Direct deletion from storage tables is not allowed. Use the Storage API instead.'
      using hint = 'This prevents accidental data loss from orphaned objects.', errcode = '42501';
  end if;
  return null;
end
$$;
create or replace trigger protect_buckets_delete before delete on storage.buckets
  for each statement execute function storage.protect_delete();
create or replace trigger protect_objects_delete before delete on storage.objects
  for each statement execute function storage.protect_delete();

grant all on storage.buckets, storage.objects to postgres with grant option;
grant all on storage.buckets, storage.objects to anon, authenticated, service_role;
grant all on storage.buckets, storage.objects to supabase_storage_admin;
alter table storage.buckets owner to supabase_storage_admin;
alter table storage.objects owner to supabase_storage_admin;
alter function storage.foldername(text) owner to supabase_storage_admin;
alter function storage.filename(text) owner to supabase_storage_admin;
alter function storage.extension(text) owner to supabase_storage_admin;
alter function storage.update_updated_at_column() owner to supabase_storage_admin;
alter function storage.protect_delete() owner to supabase_storage_admin;
