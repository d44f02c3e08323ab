-- WhatsApp sessions, their host secrets, messages and error logs, with Row Level Security.
--
-- Who may do what:
--   * a signed-in user (role authenticated) reads their own rows and writes none directly;
--     every write goes through the functions, which run the gateway_* functions below as
--     service_role;
--   * anon reads nothing;
--   * host tokens live in whatsapp_session_secrets, encrypted by the functions, and no client
--     role has any privilege on that table.

-- Sessions -------------------------------------------------------------------------------------

create table public.whatsapp_sessions (
  id uuid primary key default gen_random_uuid(),
  user_id uuid not null references auth.users (id) on delete cascade,
  session_id text not null unique check (session_id ~ '^[A-Za-z0-9_-]{1,100}$'),
  status text not null default 'disconnected'
    check (status in ('disconnected', 'starting', 'pairing', 'connected')),
  pairing_method text not null default 'qr' check (pairing_method in ('qr', 'code')),
  qr_code text,
  qr_image text,
  qr_expires_at timestamptz,
  qr_updated_at timestamptz,
  qr_count integer not null default 0,
  pairing_code text,
  phone_number text,
  server_url text,
  status_reason text,
  connected_at timestamptz,
  disconnected_at timestamptz,
  last_activity timestamptz not null default now(),
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);

comment on column public.whatsapp_sessions.session_id is 'The session name on the host.';
comment on column public.whatsapp_sessions.qr_code is 'The host''s raw QR string (urlcode), while pairing by QR.';
comment on column public.whatsapp_sessions.qr_image is 'The QR as a PNG data URL, while pairing by QR.';

create index whatsapp_sessions_user_id_idx on public.whatsapp_sessions (user_id);
create index whatsapp_sessions_stale_idx on public.whatsapp_sessions (disconnected_at)
  where status = 'disconnected';
create index whatsapp_sessions_qr_idx on public.whatsapp_sessions (qr_updated_at)
  where qr_code is not null;

-- Host secrets: one row per session, no client access at all ----------------------------------

create table public.whatsapp_session_secrets (
  session_id uuid primary key references public.whatsapp_sessions (id) on delete cascade,
  host_token text not null check (host_token like 'v1.%'),
  updated_at timestamptz not null default now()
);

comment on table public.whatsapp_session_secrets is
  'Host bearer tokens, AES-256-GCM encrypted by the functions (v1.<key id>.<ciphertext>).';

-- Messages -------------------------------------------------------------------------------------

create table public.whatsapp_messages (
  id uuid primary key default gen_random_uuid(),
  user_id uuid not null references auth.users (id) on delete cascade,
  whatsapp_session_id uuid not null references public.whatsapp_sessions (id) on delete cascade,
  direction text not null check (direction in ('inbound', 'outbound')),
  phone text not null check (phone ~ '^[0-9]{5,20}$'),
  contact_name text,
  body text not null default '',
  status text not null
    check (status in ('queued', 'sent', 'delivered', 'read', 'failed', 'received')),
  wpp_message_id text unique,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);

create index whatsapp_messages_user_id_idx on public.whatsapp_messages (user_id);
create index whatsapp_messages_session_idx
  on public.whatsapp_messages (whatsapp_session_id, created_at);

-- Error logs -----------------------------------------------------------------------------------

create table public.whatsapp_error_logs (
  id bigint generated always as identity primary key,
  user_id uuid references auth.users (id) on delete cascade,
  whatsapp_session_id uuid references public.whatsapp_sessions (id) on delete set null,
  function_name text not null,
  code text not null,
  message text not null,
  context jsonb not null default '{}',
  created_at timestamptz not null default now()
);

create index whatsapp_error_logs_user_id_idx on public.whatsapp_error_logs (user_id);
create index whatsapp_error_logs_created_at_idx on public.whatsapp_error_logs (created_at);

-- Privileges: grants first, then policies ------------------------------------------------------

revoke all on table public.whatsapp_sessions, public.whatsapp_session_secrets,
  public.whatsapp_messages, public.whatsapp_error_logs from anon, authenticated;
grant select on table public.whatsapp_sessions, public.whatsapp_messages,
  public.whatsapp_error_logs to authenticated;
grant all on table public.whatsapp_sessions, public.whatsapp_session_secrets,
  public.whatsapp_messages, public.whatsapp_error_logs to service_role;

alter table public.whatsapp_sessions enable row level security;
alter table public.whatsapp_session_secrets enable row level security;
alter table public.whatsapp_messages enable row level security;
alter table public.whatsapp_error_logs enable row level security;

-- One policy per command. Users only read: with no insert, update or delete policy (and no
-- grant), those commands are refused for every client role. The secrets table has no policy.
create policy "users read their own sessions" on public.whatsapp_sessions
  for select to authenticated using ((select auth.uid()) = user_id);

create policy "users read their own messages" on public.whatsapp_messages
  for select to authenticated using ((select auth.uid()) = user_id);

create policy "users read their own error logs" on public.whatsapp_error_logs
  for select to authenticated using ((select auth.uid()) = user_id);

-- Realtime: browsers subscribe to their own session and message rows (RLS applies per
-- subscriber).
alter publication supabase_realtime add table public.whatsapp_sessions, public.whatsapp_messages;
