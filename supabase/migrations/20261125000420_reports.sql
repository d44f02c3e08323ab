-- Reports: when a message reached sent, delivered and read is stamped on its row, whichever
-- function moved it (gateway_stamp_message_times), and per-user views count them; the views
-- run as their reader (security_invoker), so RLS and the column grants decide what they count.

-- Delivery times ------------------------------------------------------------------------------

create function public.gateway_stamp_message_times() returns trigger
language plpgsql
set search_path = ''
as $$
begin
  -- The functions set updated_at to the moment they act (their p_now), so tests with a clock
  -- of their own get their own times. A read implies delivery: an ack 3 may come alone.
  if new.sent_at is null then
    new.sent_at := new.updated_at;
  end if;
  if new.status in ('delivered', 'read') and new.delivered_at is null then
    new.delivered_at := new.updated_at;
  end if;
  if new.status = 'read' and new.read_at is null then
    new.read_at := new.updated_at;
  end if;
  return new;
end
$$;

comment on function public.gateway_stamp_message_times is
  'Stamps when an outbound message first reached sent, delivered and read.';

create trigger whatsapp_messages_stamp_times
  before insert or update of status on public.whatsapp_messages
  for each row
  when (new.direction = 'outbound' and new.status in ('sent', 'delivered', 'read'))
  execute function public.gateway_stamp_message_times();

-- Reports -------------------------------------------------------------------------------------
-- Each view runs as its reader: RLS gives a user their own rows only, and the views read only
-- columns users may select. A message counts on the day it was (or is to be) sent, in UTC.

create view public.whatsapp_report_daily with (security_invoker = true) as
select
  m.user_id,
  (coalesce(m.send_at, m.created_at) at time zone 'UTC')::date as day,
  s.account,
  m.direction,
  m.status,
  count(*)::integer as messages,
  (count(*) filter (where m.send_at is not null))::integer as scheduled,
  (count(*) filter (where m.template_name is not null))::integer as from_template
from public.whatsapp_messages m
left join public.whatsapp_sessions s on s.id = m.whatsapp_session_id
group by m.user_id, 2, s.account, m.direction, m.status;

comment on view public.whatsapp_report_daily is
  'Messages per day (UTC) and account by direction and status, with how many were scheduled '
  'and how many came from a template. account is null once the session has been purged.';

create view public.whatsapp_report_delivery with (security_invoker = true) as
select
  m.user_id,
  s.account,
  count(m.sent_at)::integer as sent,
  (count(*) filter (where m.direction = 'inbound'))::integer as received,
  count(m.delivered_at)::integer as delivered,
  -- Only what was sent: an incoming message marked read (send-message/read) has a read_at too.
  (count(m.read_at) filter (where m.direction = 'outbound'))::integer as read,
  round(count(m.delivered_at)::numeric / nullif(count(m.sent_at), 0), 4) as delivery_rate,
  round((count(m.read_at) filter (where m.direction = 'outbound'))::numeric
    / nullif(count(m.sent_at), 0), 4) as read_rate,
  percentile_cont(0.5) within group (order by extract(epoch from m.delivered_at - m.sent_at))
    as delivered_p50_s,
  percentile_cont(0.9) within group (order by extract(epoch from m.delivered_at - m.sent_at))
    as delivered_p90_s,
  percentile_cont(0.5) within group (order by extract(epoch from m.read_at - m.sent_at))
    as read_p50_s,
  percentile_cont(0.9) within group (order by extract(epoch from m.read_at - m.sent_at))
    as read_p90_s
from public.whatsapp_messages m
left join public.whatsapp_sessions s on s.id = m.whatsapp_session_id
where (m.direction = 'outbound' and m.sent_at >= now() - interval '30 days')
   or (m.direction = 'inbound' and m.created_at >= now() - interval '30 days')
group by m.user_id, s.account;

comment on view public.whatsapp_report_delivery is
  'Over the last 30 days, per account: messages sent and received, delivered and read, the '
  'delivery and read rates, and the median and 90th percentile seconds from sent to delivered '
  'and to read.';

create view public.whatsapp_report_failures with (security_invoker = true) as
select
  m.user_id,
  (m.updated_at at time zone 'UTC')::date as day,
  s.account,
  coalesce(m.error_code, 'unknown') as error_code,
  count(*)::integer as messages
from public.whatsapp_messages m
left join public.whatsapp_sessions s on s.id = m.whatsapp_session_id
where m.status = 'failed'
group by m.user_id, 2, s.account, 4;

comment on view public.whatsapp_report_failures is
  'Failed messages per day (UTC, when they failed) and account, by error code.';

create view public.whatsapp_report_templates with (security_invoker = true) as
select
  m.user_id,
  m.template_name,
  count(*)::integer as messages,
  count(m.sent_at)::integer as sent,
  (count(*) filter (where m.status = 'scheduled'))::integer as scheduled,
  max(m.created_at) as last_used_at
from public.whatsapp_messages m
where m.template_name is not null
group by m.user_id, m.template_name;

comment on view public.whatsapp_report_templates is
  'Per template name: messages written from it, how many were sent, how many still wait.';

revoke all on table public.whatsapp_report_daily, public.whatsapp_report_delivery,
  public.whatsapp_report_failures, public.whatsapp_report_templates
  from anon, authenticated;
grant select on table public.whatsapp_report_daily, public.whatsapp_report_delivery,
  public.whatsapp_report_failures, public.whatsapp_report_templates
  to authenticated, service_role;

-- The trigger function runs whoever writes the row; no role calls it.
revoke execute on function public.gateway_stamp_message_times() from public, anon, authenticated;
-- service_role, which the functions call as, runs every function of the gateway.
grant execute on all functions in schema public to service_role;
