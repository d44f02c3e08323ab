-- API keys: a user's own backend calls the functions with a key in place of a browser's token.
--
-- A key is `wak_` and 32 random bytes in base64url, shown once when it is made; only its
-- SHA-256 is kept (a key carries 256 bits of chance, so a plain digest is as good as a slow
-- one). Every call the functions make to the database for a key's request goes through
-- gateway_keyed_call, which checks the key (it exists, it is the owner's, it has the scope,
-- its rate allows) and then runs the call in the same transaction, in the same round trip:
-- deleting the key refuses its next call.

create table public.whatsapp_api_keys (
  id uuid primary key default gen_random_uuid(),
  user_id uuid not null references auth.users (id) on delete cascade,
  name text not null check (char_length(name) between 1 and 64 and name !~ '[[:cntrl:]]'),
  prefix text not null check (prefix ~ '^wak_[A-Za-z0-9_-]{6}$'),
  key_hash text not null unique check (key_hash ~ '^[0-9a-f]{64}$'),
  scopes text[] not null check (
    cardinality(scopes) between 1 and 3 and scopes <@ array['send', 'read', 'sessions']
  ),
  created_at timestamptz not null default now(),
  last_used_at timestamptz
);

comment on table public.whatsapp_api_keys is
  'Users'' API keys: the SHA-256 of each key (key_hash, never readable by users), its first '
  'characters to recognise it (prefix), its scopes. Deleting the row revokes the key.';
comment on column public.whatsapp_api_keys.last_used_at is
  'When the key was last used, to the minute: written at most once a minute per key.';

create index whatsapp_api_keys_user_id_idx on public.whatsapp_api_keys (user_id);

-- Each key's rate: a token bucket, rewritten on every call. Unlogged: no write-ahead log and
-- no wait for the disk on a call that otherwise only reads; a crash of the database server
-- empties it, which gives every key a full bucket.
create unlogged table public.whatsapp_api_key_buckets (
  key_id uuid primary key references public.whatsapp_api_keys (id) on delete cascade,
  tokens double precision not null,
  at timestamptz not null
);

revoke all on table public.whatsapp_api_keys, public.whatsapp_api_key_buckets
  from anon, authenticated;
-- whatsapp_api_keys: what the page lists. Private: key_hash.
grant select (
  id,           -- the primary key, revoked by
  user_id,      -- the owner: RLS
  name,         -- the user's name for the key
  prefix,       -- wak_ and the key's next 6 characters, to recognise it
  scopes,       -- send, read, sessions
  created_at,
  last_used_at  -- to the minute
) on public.whatsapp_api_keys to authenticated;
grant all on table public.whatsapp_api_keys, public.whatsapp_api_key_buckets to service_role;

alter table public.whatsapp_api_keys enable row level security;
alter table public.whatsapp_api_key_buckets enable row level security;

create policy "users read their own api keys" on public.whatsapp_api_keys
  for select to authenticated using ((select auth.uid()) = user_id);


create function public.gateway_api_key_json(k public.whatsapp_api_keys)
returns jsonb
language sql
stable
set search_path = ''
as $$
  select jsonb_build_object('id', k.id, 'name', k.name, 'prefix', k.prefix, 'scopes', k.scopes,
    'created_at', k.created_at, 'last_used_at', k.last_used_at)
$$;

comment on function public.gateway_api_key_json is
  'A key as the api-keys function answers it: never its hash.';


-- A new key as the api-keys function sends it (records.KeyToCreate): its prefix and digest,
-- never the key.
create type public.gateway_key_to_create as (
  user_id uuid,
  name text,
  prefix text,
  key_hash text,
  scopes text[],
  max_keys integer
);

create function public.gateway_create_api_key(p_key jsonb)
returns jsonb
language plpgsql
set search_path = ''
as $$
declare
  r constant public.gateway_key_to_create :=
    jsonb_populate_record(null::public.gateway_key_to_create, p_key);
  k public.whatsapp_api_keys;
begin
  if public.gateway_user_at_limit('public.whatsapp_api_keys', r.user_id, r.max_keys) then
    return jsonb_build_object('outcome', 'limit');
  end if;
  insert into public.whatsapp_api_keys (user_id, name, prefix, key_hash, scopes)
  values (r.user_id, r.name, r.prefix, r.key_hash, r.scopes)
  returning * into k;
  return jsonb_build_object('outcome', 'ok', 'key', public.gateway_api_key_json(k));
end
$$;

comment on function public.gateway_create_api_key is
  'Stores a new key''s hash for a user; outcome ok with the key, or limit (max_keys).';


create function public.gateway_api_keys(p_record jsonb)
returns jsonb
language sql
stable
set search_path = ''
as $$
  select coalesce(jsonb_agg(public.gateway_api_key_json(k) order by k.created_at desc, k.id),
    '[]'::jsonb)
  from public.whatsapp_api_keys k
  where k.user_id = (p_record ->> 'user_id')::uuid
$$;

comment on function public.gateway_api_keys is 'A user''s keys, newest first (p: user_id).';


create function public.gateway_revoke_api_key(p_record jsonb)
returns jsonb
language sql
set search_path = ''
as $$
  delete from public.whatsapp_api_keys
  where id = (p_record ->> 'id')::uuid and user_id = (p_record ->> 'user_id')::uuid
  returning public.gateway_api_key_json(whatsapp_api_keys)
$$;

comment on function public.gateway_revoke_api_key is
  'Deletes one of a user''s keys (p: user_id, id): its next call is refused. Null when the '
  'user has no such key.';


create function public.gateway_keyed_call(p_call jsonb)
returns jsonb
language plpgsql
set search_path = ''
as $$
declare
  k public.whatsapp_api_keys;
  v_scope text := p_call ->> 'scope';
  v_function text := p_call ->> 'function';
  v_params jsonb := coalesce(p_call -> 'params', '{}'::jsonb);
  v_burst double precision := coalesce((p_call ->> 'burst')::double precision, 60);
  v_rate double precision := coalesce((p_call ->> 'rate_per_s')::double precision, 5);
  v_tokens double precision;
  v_proc oid;
  v_args text;
  v_named integer;
  v_result jsonb;
begin
  select * into k from public.whatsapp_api_keys where key_hash = p_call ->> 'key_hash';
  if not found
      or (p_call ->> 'user_id' is not null and k.user_id <> (p_call ->> 'user_id')::uuid) then
    return jsonb_build_object('refused', 'invalid_key');
  end if;
  if v_scope is not null and not v_scope = any (k.scopes) then
    return jsonb_build_object('refused', 'insufficient_scope');
  end if;

  if coalesce((p_call ->> 'count')::boolean, false) then
    -- The key's token bucket: burst calls at once, refilled at rate_per_s.
    insert into public.whatsapp_api_key_buckets as b (key_id, tokens, at)
    values (k.id, v_burst - 1, now())
    on conflict (key_id) do update
      set tokens = least(v_burst, b.tokens + extract(epoch from now() - b.at) * v_rate) - 1,
          at = now()
      where least(v_burst, b.tokens + extract(epoch from now() - b.at) * v_rate) >= 1
    returning tokens into v_tokens;
    if v_tokens is null then
      select least(v_burst, b.tokens + extract(epoch from now() - b.at) * v_rate)
      into v_tokens from public.whatsapp_api_key_buckets b where b.key_id = k.id;
      return jsonb_build_object('refused', 'rate_limited',
        'retry_after', greatest(1, ceil((1 - v_tokens) / v_rate)));
    end if;
    -- The last use, to the minute: one write a minute per key, not one per call.
    if k.last_used_at is null or k.last_used_at < now() - interval '1 minute' then
      update public.whatsapp_api_keys set last_used_at = now()
      where id = k.id and (last_used_at is null or last_used_at < now() - interval '1 minute');
    end if;
  end if;

  if v_function is null then
    return jsonb_build_object('user_id', k.user_id);
  end if;
  if v_function !~ '^gateway_[a-z0-9_]+$' or v_function = 'gateway_keyed_call' then
    raise exception 'not a call a key may make: %', v_function using errcode = '42883';
  end if;
  select p.oid into strict v_proc
  from pg_proc p where p.pronamespace = 'public'::regnamespace and p.proname = v_function;
  -- The call's named parameters, each read from the JSON as the function's own type.
  select string_agg(format('%I => %s', a.name, case
           when a.type = 'jsonb'::regtype then format('$1 -> %L', a.name)
           when t.typcategory = 'A' then
             format('array(select jsonb_array_elements_text($1 -> %L))::%s', a.name,
               a.type::regtype)
           else format('($1 ->> %L)::%s', a.name, a.type::regtype)
         end), ', '),
         count(*)
  into v_args, v_named
  from pg_proc p
  cross join lateral unnest(p.proargnames, p.proargtypes::oid[]) as a (name, type)
  join pg_type t on t.oid = a.type
  where p.oid = v_proc and v_params ? a.name;
  if v_named <> (select count(*) from jsonb_object_keys(v_params)) then
    raise exception 'unknown parameter for %', v_function using errcode = '42883';
  end if;
  if coalesce((p_call ->> 'as_user')::boolean, false) then
    -- A read made as the key's owner: their role and claims, exactly as PostgREST sets them
    -- for their own token, so RLS and the column grants decide what it sees.
    perform set_config('request.jwt.claims', jsonb_build_object('sub', k.user_id,
      'role', 'authenticated', 'aud', 'authenticated', 'api_key', k.id)::text, true);
    perform set_config('role', 'authenticated', true);
  end if;
  execute format('select to_jsonb(public.%I(%s))', v_function, coalesce(v_args, ''))
  into v_result using v_params;
  return jsonb_build_object('result', v_result);
end
$$;

comment on function public.gateway_keyed_call is
  'A call made for an API key''s request (p_call: key_hash, user_id, scope, count, burst, '
  'rate_per_s, function, params, as_user): checks the key and, when it passes, runs '
  'public.<function>(params) in the same transaction, as service_role or (as_user) as the '
  'key''s owner under RLS. Answers {"result"}, or {"refused": invalid_key | '
  'insufficient_scope | rate_limited, "retry_after"}; without a function, the key''s '
  '{"user_id"}.';


revoke execute on function
  public.gateway_api_key_json(public.whatsapp_api_keys),
  public.gateway_create_api_key(jsonb),
  public.gateway_api_keys(jsonb),
  public.gateway_revoke_api_key(jsonb),
  public.gateway_keyed_call(jsonb)
  from public, anon, authenticated;
-- service_role, which the functions call as, runs every function of the gateway.
grant execute on all functions in schema public to service_role;
