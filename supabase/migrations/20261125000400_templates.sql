-- Templates: the first table users write themselves (REST API, supabase-js), under RLS with
-- one policy per command, and checked here, whoever writes it; and their rendering, for a
-- send-message that names one (gateway_render_template, called by gateway_prepare_send in the
-- schedules' migration).

create table public.whatsapp_templates (
  id uuid primary key default gen_random_uuid(),
  user_id uuid not null default auth.uid() references auth.users (id) on delete cascade,
  name text not null check (name ~ '^[a-z0-9_-]{1,64}$'),
  body text not null check (char_length(body) between 1 and 4096 and body ~ '\S'),
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  -- Placeholders are {{name}}, name being a lowercase letter then up to 31 of a-z, 0-9 and _;
  -- once they are taken out, no "{{" or "}}" may be left (a typo such as {{ name }} or
  -- {{name} would otherwise reach the recipient as it is). Single braces are plain text.
  constraint whatsapp_templates_placeholders check (
    regexp_replace(body, '\{\{[a-z][a-z0-9_]{0,31}\}\}', '', 'g') !~ '\{\{|\}\}'
  ),
  -- Also the index for user_id's foreign key and for the policies.
  constraint whatsapp_templates_user_name_key unique (user_id, name)
);

comment on table public.whatsapp_templates is
  'Message templates, written by their owners through the REST API under RLS; send-message '
  'renders one by name for its caller only.';

-- The one trigger function of its kind: every table with an updated_at users write.
create function public.gateway_touch_updated_at() returns trigger
language plpgsql
set search_path = ''
as $$
begin
  new.updated_at := now();
  return new;
end
$$;

comment on function public.gateway_touch_updated_at is
  'Sets updated_at on every update of a row users write directly.';

create trigger whatsapp_templates_touch_updated_at
  before update on public.whatsapp_templates
  for each row execute function public.gateway_touch_updated_at();

revoke all on table public.whatsapp_templates from anon, authenticated;
-- Users read every column of their templates and write only the name and the body: the id and
-- the times are the database's, and user_id is always auth.uid() (its default).
grant select (id, user_id, name, body, created_at, updated_at),
  insert (name, body),
  update (name, body),
  delete
  on public.whatsapp_templates to authenticated;
grant all on table public.whatsapp_templates to service_role;

alter table public.whatsapp_templates enable row level security;

create policy "users read their own templates" on public.whatsapp_templates
  for select to authenticated using ((select auth.uid()) = user_id);

create policy "users add templates of their own" on public.whatsapp_templates
  for insert to authenticated with check ((select auth.uid()) = user_id);

create policy "users change their own templates" on public.whatsapp_templates
  for update to authenticated
  using ((select auth.uid()) = user_id) with check ((select auth.uid()) = user_id);

create policy "users delete their own templates" on public.whatsapp_templates
  for delete to authenticated using ((select auth.uid()) = user_id);

create function public.gateway_render_template(
  p_user_id uuid,
  p_name text,
  p_variables jsonb
) returns jsonb
language plpgsql
stable
set search_path = ''
as $$
declare
  c_placeholder constant text := '\{\{([a-z][a-z0-9_]{0,31})\}\}';
  v_body text;
  v_parts text[];
  v_names text[];
  v_name text;
  v_text text;
begin
  -- The caller's own template only: another user's of the same name is never used.
  select body into v_body from public.whatsapp_templates
  where user_id = p_user_id and name = p_name;
  if not found then
    return jsonb_build_object('outcome', 'unknown_template');
  end if;

  v_names := array(select (regexp_matches(v_body, c_placeholder, 'g'))[1]);
  foreach v_name in array v_names loop
    if not coalesce(p_variables, '{}') ? v_name then
      return jsonb_build_object('outcome', 'template_variable_missing', 'variable', v_name);
    end if;
  end loop;
  select k into v_name from jsonb_object_keys(coalesce(p_variables, '{}')) k
  where k <> all (v_names) order by k limit 1;
  if v_name is not null then
    return jsonb_build_object('outcome', 'template_variable_unknown', 'variable', v_name);
  end if;

  -- One pass: the text around the placeholders, each placeholder's value in between, so a
  -- value that itself looks like a placeholder stays as it is.
  v_parts := regexp_split_to_array(v_body, c_placeholder);
  v_text := v_parts[1];
  for i in 1 .. coalesce(array_length(v_names, 1), 0) loop
    v_text := v_text || (p_variables ->> v_names[i]) || v_parts[i + 1];
  end loop;
  return jsonb_build_object('outcome', 'ok', 'body', v_text);
end
$$;

comment on function public.gateway_render_template is
  'Renders the user''s own template of this name with these variables (each placeholder '
  'needs one, and no other is accepted); the outcome names what is wrong.';


-- Functions: service_role only (the trigger function runs whoever writes the row). ----------

revoke execute on function
  public.gateway_touch_updated_at(),
  public.gateway_render_template(uuid, text, jsonb)
  from public, anon, authenticated;
-- service_role, which the functions call as, runs every function of the gateway.
grant execute on all functions in schema public to service_role;
