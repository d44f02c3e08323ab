-- The gateway's tables, with Row Level Security.
--
-- Who may do what:
--   * a signed-in user (role authenticated) reads their own sessions, messages, error logs and
--     events, and writes none directly: every write goes through the functions, which call the
--     gateway_* SQL functions of the next migrations as service_role;
--   * anon reads nothing;
--   * host tokens (whatsapp_session_secrets) and the host pool (wpp_hosts) are for
--     service_role only, and their secrets are stored encrypted by the functions.

-- Hosts ---------------------------------------------------------------------------------------

create table public.wpp_hosts (
  id uuid primary key default gen_random_uuid(),
  name text not null unique check (name ~ '^[a-z0-9][a-z0-9-]{0,62}$'),
  url text not null unique check (url ~ '^https?://[^\s]+$'),
  secret_key text not null check (secret_key like 'v1.%'),
  capacity integer not null check (capacity > 0),
  state text not null default 'active' check (state in ('active', 'draining', 'down')),
  last_health_at timestamptz,
  last_health_ok boolean,
  last_error text,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);

comment on table public.wpp_hosts is
  'WPPConnect hosts sessions are placed on. secret_key is the host''s SECRET_KEY, AES-256-GCM '
  'encrypted by the functions. Operators manage it; no client role can read it.';

-- Sessions -------------------------------------------------------------------------------------

create table public.whatsapp_sessions (
  id uuid primary key default gen_random_uuid(),
  user_id uuid not null references auth.users (id) on delete cascade,
  account text not null default 'default' check (account ~ '^[a-z0-9][a-z0-9-]{0,31}$'),
  session_id text not null unique check (session_id ~ '^[A-Za-z0-9_-]{1,100}$'),
  status text not null default 'disconnected'
    check (status in ('disconnected', 'starting', 'pairing', 'connected')),
  pairing_method text not null default 'qr' check (pairing_method in ('qr', 'code')),
  attempt integer not null default 0,
  host_attempt integer,
  held_updates jsonb,
  qr_code text,
  qr_image text,
  qr_expires_at timestamptz,
  qr_updated_at timestamptz,
  qr_count integer not null default 0,
  pairing_code text,
  phone_number text,
  host_id uuid references public.wpp_hosts (id) on delete set null,
  server_url text,
  status_reason text,
  connected_at timestamptz,
  disconnected_at timestamptz,
  send_tokens double precision,
  send_tokens_at timestamptz,
  last_activity timestamptz not null default now(),
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  -- A QR or pairing code only serves to link the attempt being started; once the session is
  -- disconnected nothing may show or use it. qr_updated_at and qr_count say when the attempt's
  -- last QR came and how many came, not a code: they stay until the next start resets them.
  -- gateway_mark_disconnected is the one way the functions disconnect a session.
  constraint whatsapp_sessions_disconnected_holds_no_code check (
    status <> 'disconnected'
    or (qr_code is null and qr_image is null and qr_expires_at is null and pairing_code is null)
  )
);

comment on column public.whatsapp_sessions.session_id is 'The session name on the host.';
comment on column public.whatsapp_sessions.account is
  'The user''s label for this WhatsApp account; the host session name is derived from the '
  'user id and this label (sessions.session_name_for).';
comment on column public.whatsapp_sessions.qr_code is
  'The host''s raw QR string (urlcode), while pairing by QR.';
comment on column public.whatsapp_sessions.qr_image is
  'The QR as a PNG data URL, while pairing by QR.';
comment on column public.whatsapp_sessions.attempt is
  'Counts starts that opened a new attempt; the event log deduplicates within one attempt.';
comment on column public.whatsapp_sessions.host_attempt is
  'The attempt whose webhook URL the host holds: set when a start really launched a browser '
  'with our body; a start the host answered early leaves it (the host keeps its first body); '
  'a start after a logout opens its attempt without it (the host holds nothing of the session).';
comment on column public.whatsapp_sessions.held_updates is
  'While a start that opened this attempt waits for the host''s answer: the session events '
  'posted meanwhile to host_attempt''s URL, in order. Whether they speak for the session '
  'depends on that answer (a fresh browser: no; an early answer: yes), so they wait for it '
  '(the start''s answer settles them: gateway_apply_host_state). Null otherwise.';
comment on column public.whatsapp_sessions.send_tokens is
  'The sending governor''s token bucket (with send_tokens_at).';

create index whatsapp_sessions_user_id_idx on public.whatsapp_sessions (user_id);
create unique index whatsapp_sessions_user_account_idx
  on public.whatsapp_sessions (user_id, account);
-- The purge finds stale sessions by this expression; disconnected_at is set by every path
-- into 'disconnected' (gateway_mark_disconnected), updated_at covers a row that never got one.
create index whatsapp_sessions_stale_idx
  on public.whatsapp_sessions ((coalesce(disconnected_at, updated_at)))
  where status = 'disconnected';
create index whatsapp_sessions_qr_idx on public.whatsapp_sessions (qr_updated_at)
  where qr_code is not null;
-- Sessions holding a browser on a host: what placement counts against capacity.
create index whatsapp_sessions_host_idx
  on public.whatsapp_sessions (host_id) where status <> 'disconnected';
-- Every session of a host, disconnected ones included, for the foreign key's "on delete set
-- null" when a host is removed.
create index whatsapp_sessions_host_id_idx on public.whatsapp_sessions (host_id);

-- Host secrets: one row per session, no client access at all ----------------------------------

create table public.whatsapp_session_secrets (
  session_id uuid primary key references public.whatsapp_sessions (id) on delete cascade,
  host_token text not null check (host_token like 'v1.%'),
  updated_at timestamptz not null default now()
);

comment on table public.whatsapp_session_secrets is
  'Host bearer tokens, AES-256-GCM encrypted by the functions (v1.<key id>.<ciphertext>).';

-- Messages -------------------------------------------------------------------------------------

-- The rules of a message's values are domains, not checks of the table. PostgreSQL reads a
-- table's checks back from their stored text at the start of every statement that writes it;
-- a domain's check is read once per connection. Every incoming message and every delivery ack
-- writes a message: an insert through a plpgsql function into a table with ten such checks
-- took 25 us, 9 us with the same rules as domains, 3.6 us with none. Only the gateway's
-- functions write messages (as the service role), so no caller meets these rules' names.
create domain public.gateway_digits as text check (value ~ '^[0-9]{5,20}$');
comment on domain public.gateway_digits is
  'A phone number or a LID: its digits, 5 to 20 of them.';
create domain public.gateway_code as text check (value ~ '^[a-z_]{1,32}$');
comment on domain public.gateway_code is 'A reason code: lower-case letters and _.';
create domain public.gateway_name255 as text check (char_length(value) <= 255);
comment on domain public.gateway_name255 is 'A name or type of at most 255 characters.';
create domain public.gateway_message_direction as text
  check (value in ('inbound', 'outbound'));
create domain public.gateway_message_status as text
  check (value in (
    'queued', 'sent', 'delivered', 'read', 'failed', 'received', 'scheduled', 'cancelled'
  ));
create domain public.gateway_message_origin as text check (value in ('client', 'owner'));
create domain public.gateway_idempotency_key as text
  check (char_length(value) between 1 and 255);
create domain public.gateway_send_state as text
  check (value in ('pending', 'unknown', 'retryable', 'done'));
create domain public.gateway_sha256 as text check (value ~ '^[0-9a-f]{64}$');
create domain public.gateway_byte_count as bigint check (value >= 0);
create domain public.gateway_storage_path as text check (char_length(value) <= 1024);
create domain public.gateway_media_state as text
  check (value in ('pending', 'stored', 'too_large', 'unavailable'));

-- A user's message history outlives the session row it came through: purging a stale session
-- keeps its messages (still the user's, by user_id) and forgets which session carried them.
create table public.whatsapp_messages (
  id uuid primary key default gen_random_uuid(),
  user_id uuid not null references auth.users (id) on delete cascade,
  whatsapp_session_id uuid references public.whatsapp_sessions (id) on delete set null,
  direction public.gateway_message_direction not null,
  phone public.gateway_digits,
  contact_name text,
  body text not null default '',
  message_type text not null default 'chat',
  status public.gateway_message_status not null,
  origin public.gateway_message_origin,
  wpp_message_id text unique,
  idempotency_key public.gateway_idempotency_key,
  request_hash text,
  send_state public.gateway_send_state,
  lease_until timestamptz,
  attempts integer not null default 0,
  error_code text,
  -- Scheduled messages, templates and reports (the *_schedules, *_templates, *_reports
  -- migrations).
  send_at timestamptz,
  template_name text,
  sent_at timestamptz,
  delivered_at timestamptz,
  read_at timestamptz,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  contact_lid public.gateway_digits,
  failure_code public.gateway_code,
  -- Media (the *_media_storage migration): the file a message carries, kept in Storage's
  -- bucket whatsapp-media at media_path; body is then its caption.
  mime_type public.gateway_name255,
  filename public.gateway_name255,
  size public.gateway_byte_count,
  sha256 public.gateway_sha256,
  media_path public.gateway_storage_path,
  media_state public.gateway_media_state,
  -- A contact known only by their privacy id (LID) has no phone until the host maps it.
  constraint whatsapp_messages_names_a_contact check (phone is not null or contact_lid is not null)
)
-- Room on each page for a message's next version: its acks (sent, delivered, read) then stay
-- HOT updates, on the same page with no new index entries (nothing they change is indexed).
with (fillfactor = 90);

comment on column public.whatsapp_messages.origin is
  'Who wrote a message that did not come through send-message: owner (the account''s own '
  'number or device) or client.';
comment on column public.whatsapp_messages.phone is
  'The other party''s number as WhatsApp names it (its canonical id); null while the contact '
  'is known only by contact_lid.';
comment on column public.whatsapp_messages.contact_lid is
  'The other party''s privacy id (the digits of NNN@lid) when WhatsApp named them by it.';
comment on column public.whatsapp_messages.failure_code is
  'Why WhatsApp failed an outbound message (its negative ack): expired, content_too_big, ...';
comment on column public.whatsapp_messages.media_state is
  'Media only: stored (the file is at media_path), pending (not fetched from the host yet), '
  'too_large (over the bucket''s 16 MiB: metadata only) or unavailable (the host could not '
  'give the file).';
comment on column public.whatsapp_messages.send_state is
  'Outbound only: pending (an attempt holds the lease), unknown (the host took the request '
  'and did not answer), retryable (the host refused before sending), done.';

create index whatsapp_messages_user_id_idx on public.whatsapp_messages (user_id);
create index whatsapp_messages_session_idx
  on public.whatsapp_messages (whatsapp_session_id, created_at);
-- The purge's retention (MESSAGE_RETENTION) deletes the oldest messages first.
create index whatsapp_messages_created_at_idx on public.whatsapp_messages (created_at);
create unique index whatsapp_messages_idempotency_idx
  on public.whatsapp_messages (user_id, idempotency_key)
  where idempotency_key is not null;
-- Outbound rows still waiting for the host's message id, matched when a late ack arrives.
create index whatsapp_messages_unmatched_idx
  on public.whatsapp_messages (whatsapp_session_id, phone)
  where wpp_message_id is null and direction = 'outbound';

-- Rows whose phone is filled in once the host maps their contact's LID.
create index whatsapp_messages_lid_idx
  on public.whatsapp_messages (whatsapp_session_id, contact_lid)
  where contact_lid is not null;

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
create index whatsapp_error_logs_session_idx
  on public.whatsapp_error_logs (whatsapp_session_id);
create index whatsapp_error_logs_created_at_idx on public.whatsapp_error_logs (created_at);

-- The event log --------------------------------------------------------------------------------

create table public.whatsapp_events (
  id bigint generated always as identity primary key,
  user_id uuid not null references auth.users (id) on delete cascade,
  whatsapp_session_id uuid not null references public.whatsapp_sessions (id) on delete cascade,
  seq bigint not null,
  event text not null,
  dedup_key text not null,
  payload jsonb not null,
  received_at timestamptz not null default now(),
  unique (whatsapp_session_id, seq),
  unique (whatsapp_session_id, dedup_key)
);

comment on table public.whatsapp_events is
  'Every event a host sent, once, numbered per session (seq) in the order it was applied.';

create index whatsapp_events_user_id_idx on public.whatsapp_events (user_id);
create index whatsapp_events_received_at_idx on public.whatsapp_events (received_at);

-- The last sequence number per session, apart from the session row so that numbering events
-- does not publish a session change to every Realtime subscriber.
create table public.whatsapp_event_seqs (
  whatsapp_session_id uuid primary key
    references public.whatsapp_sessions (id) on delete cascade,
  last_seq bigint not null
);

-- Privileges: grants first, then policies ------------------------------------------------------

revoke all on table public.wpp_hosts, public.whatsapp_sessions, public.whatsapp_session_secrets,
  public.whatsapp_messages, public.whatsapp_error_logs, public.whatsapp_events,
  public.whatsapp_event_seqs
  from anon, authenticated;
-- Users read column by column: a column not granted here is invisible to them through the
-- REST API, Realtime (which sends a subscriber only the columns its role may select) and any
-- function that runs as them, and a query naming it (or select *) fails with 42501. A new
-- column stays private until it is added here.
--
-- whatsapp_sessions: what the status answer and the page show, and what RLS and Realtime need.
-- Private: host_id and server_url (where the host is), attempt, qr_updated_at and qr_count
-- (the event log's and the purge's bookkeeping), send_tokens and send_tokens_at (the sending
-- governor), status_reason, connected_at and disconnected_at (not shown to users).
grant select (
  id,             -- the primary key: Realtime sends nothing for a table whose key is hidden
  user_id,        -- the owner: RLS and the page's Realtime filter (user_id=eq.<uid>)
  account,        -- the user's label for the account
  session_id,     -- the session's name, answered as "name"
  status,         -- disconnected, starting, pairing or connected
  status_reason,  -- why it is in that status, in a word the page turns into a sentence
  pairing_method, -- whether the QR or the pairing code is the one to show
  qr_code,        -- the QR, raw, while pairing
  qr_image,       -- the QR as a PNG data URL, while pairing
  qr_expires_at,  -- when the QR stops working
  pairing_code,   -- the code to type on the phone, while pairing by code
  phone_number,   -- the linked account's own number
  last_activity,  -- answered by the status function
  created_at,     -- when the account was added
  updated_at      -- answered by the status function; orders changes
) on public.whatsapp_sessions to authenticated;

-- whatsapp_messages: what the page lists and the send answer carries. Private: the outbox's
-- bookkeeping (idempotency_key, request_hash, send_state, lease_until, attempts).
grant select (
  id,                  -- the primary key, and the id send-message answers
  user_id,             -- the owner: RLS and the page's Realtime filter
  whatsapp_session_id, -- which of the user's accounts carried the message
  direction,           -- inbound or outbound
  phone,               -- the other party
  contact_name,        -- the other party's name, when known
  body,                -- the text
  message_type,        -- chat, image, ...
  status,              -- scheduled, queued, sent, delivered, read, failed, cancelled, received
  origin,              -- client or owner, for messages that did not come through send-message
  wpp_message_id,      -- WhatsApp's id for the message
  error_code,          -- why a send failed
  failure_code,        -- why WhatsApp failed a sent message (expired, content_too_big, ...)
  contact_lid,         -- the other party's privacy id, when WhatsApp named them by it
  send_at,             -- when a scheduled message is (or was) due
  template_name,       -- the template it was written from, if any
  mime_type,           -- media: the file's type, name, size and digest
  filename,
  size,
  sha256,
  media_path,          -- media: the object in the bucket whatsapp-media, read by signed URL
  media_state,         -- media: stored, pending, too_large or unavailable
  sent_at,             -- when it reached sent, delivered and read: the reports' times
  delivered_at,
  read_at,
  created_at,          -- when it was written; the page orders by it
  updated_at           -- when its status last changed; the page merges by it
) on public.whatsapp_messages to authenticated;

-- whatsapp_error_logs: written for the user to read, with no secrets in them: every column.
grant select (
  id, user_id, whatsapp_session_id, function_name, code, message, context, created_at
) on public.whatsapp_error_logs to authenticated;

-- whatsapp_events: what a browser replays (seq > last seen, in order). Private: dedup_key
-- (the attempt and a hash of the event's body, used only to drop duplicates).
grant select (
  id,                  -- the primary key
  user_id,             -- the owner: RLS
  whatsapp_session_id, -- the session the event is about
  seq,                 -- its place in the session's log
  event,               -- the host's event name
  payload,             -- the event as the host sent it (without the QR image or media bytes)
  received_at          -- when it arrived
) on public.whatsapp_events to authenticated;

grant all on table public.wpp_hosts, public.whatsapp_sessions, public.whatsapp_session_secrets,
  public.whatsapp_messages, public.whatsapp_error_logs, public.whatsapp_events,
  public.whatsapp_event_seqs
  to service_role;
-- Default privileges give the API roles every sequence too: no client needs an id drawn.
revoke all on sequence public.whatsapp_error_logs_id_seq, public.whatsapp_events_id_seq
  from anon, authenticated;

alter table public.wpp_hosts enable row level security;
alter table public.whatsapp_sessions enable row level security;
alter table public.whatsapp_session_secrets enable row level security;
alter table public.whatsapp_messages enable row level security;
alter table public.whatsapp_error_logs enable row level security;
alter table public.whatsapp_events enable row level security;
alter table public.whatsapp_event_seqs enable row level security;

-- One policy per command. Users only read: with no insert, update or delete policy (and no
-- grant), those commands are refused for every client role. The service-only tables have no
-- policy at all.
create policy "users read their own sessions" on public.whatsapp_sessions
  for select to authenticated using ((select auth.uid()) = user_id);

create policy "users read their own messages" on public.whatsapp_messages
  for select to authenticated using ((select auth.uid()) = user_id);

create policy "users read their own error logs" on public.whatsapp_error_logs
  for select to authenticated using ((select auth.uid()) = user_id);

create policy "users read their own events" on public.whatsapp_events
  for select to authenticated using ((select auth.uid()) = user_id);

-- Realtime: browsers subscribe to their own session and message rows (RLS applies per
-- subscriber).
alter publication supabase_realtime add table public.whatsapp_sessions, public.whatsapp_messages;

-- Contacts' privacy ids ------------------------------------------------------------------------

-- WhatsApp may name a contact by a privacy id (``NNN@lid``) instead of their number; the host
-- maps one to the other (its contact/pn-lid route). Each LID is asked once per session and its
-- answer kept here; phone stays null while the host could not tell it (asked again later).
create table public.whatsapp_contacts (
  whatsapp_session_id uuid not null
    references public.whatsapp_sessions (id) on delete cascade,
  lid text not null check (lid ~ '^[0-9]{5,20}$'),
  phone text check (phone ~ '^[0-9]{5,20}$'),
  updated_at timestamptz not null default now(),
  primary key (whatsapp_session_id, lid)
);

comment on table public.whatsapp_contacts is
  'Per session, the phone number behind each contact LID the host has mapped (service only).';

revoke all on table public.whatsapp_contacts from anon, authenticated;
grant all on table public.whatsapp_contacts to service_role;
alter table public.whatsapp_contacts enable row level security;
