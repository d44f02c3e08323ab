// The report: the last 30 days (UTC, as the report views count them) read from the views
// whatsapp_report_daily, _delivery, _failures and _templates through supabase-js (they run as
// their reader, so RLS gives the user their own messages only), shown as a chart of messages
// per day, outbound against inbound (plain SVG built here), and figures.

import { ApiError, describe } from "./api.js";
import { $, showAlert } from "./render.js";
import { app } from "./state.js";
import { failureReason } from "./thread.js";

const DAYS = 30;
const SVG = "http://www.w3.org/2000/svg";
const CHART = { width: 640, height: 200, top: 16, bottom: 24, left: 32, right: 8 };
const NOT_COUNTED = new Set(["scheduled", "cancelled"]); // not (yet) sent: not traffic

const REFRESH_MS = 60_000; // while the report is on screen, it reads itself again this often
const report = { data: null, failed: null, loading: false, at: 0 };

export function resetReport() {
  Object.assign(report, { data: null, failed: null, loading: false, at: 0 });
  renderReport();
}

/** The first day of the window and today, as YYYY-MM-DD in UTC. */
export function reportWindow(now = new Date()) {
  const today = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate()));
  const first = new Date(today.getTime() - (DAYS - 1) * 86_400_000);
  return { first: isoDay(first), today: isoDay(today) };
}

export async function loadReport() {
  if (report.loading) return;
  report.loading = true;
  report.at = Date.now();
  renderReport();
  const { first, today } = reportWindow();
  const read = (build) => app.client.table((db) => build(db).limit(1000));
  try {
    const [daily, delivery, failures, templates] = await Promise.all([
      read((db) =>
        db
          .from("whatsapp_report_daily")
          .select("day,direction,status,messages")
          .gte("day", first)
          .lte("day", today),
      ),
      read((db) =>
        db
          .from("whatsapp_report_delivery")
          .select(
            "account,sent,received,delivered,read,delivery_rate,read_rate,delivered_p50_s,delivered_p90_s,read_p50_s,read_p90_s",
          ),
      ),
      read((db) =>
        db.from("whatsapp_report_failures").select("error_code,messages").gte("day", first),
      ),
      read((db) =>
        db
          .from("whatsapp_report_templates")
          .select("template_name,messages,sent,scheduled,last_used_at")
          .order("messages", { ascending: false }),
      ),
    ]);
    report.data = { first, daily, delivery, failures, templates };
    report.failed = null;
  } catch (err) {
    report.failed =
      err instanceof ApiError && err.authLost ? null : `Couldn't load the report. ${describe(err)}`;
  } finally {
    report.loading = false;
    renderReport();
  }
}

export function renderReport() {
  $("report-refresh").disabled = report.loading;
  $("report-refresh").textContent = report.loading ? "Loading…" : "Refresh";
  showAlert($("report-error"), report.failed || "");
  const data = report.data;
  $("report-body").hidden = !data;
  if (!data) return;
  $("report-chart").replaceChildren(chart(perDay(data.first, data.daily)));
  $("report-figures").replaceChildren(...figures(data.delivery));
  list(
    $("report-failures"),
    totals(data.failures, "error_code"),
    ([code, n]) => {
      const why = failureReason(code);
      return `${why ? why[0].toUpperCase() + why.slice(1) : "Another reason"}: ${n}`;
    },
    "No failed messages.",
  );
  list(
    $("report-templates"),
    data.templates.map((t) => [t.template_name, t]),
    ([name, t]) => `${name}: ${t.messages} (${t.sent} sent, ${t.scheduled} scheduled)`,
    "No messages from templates yet.",
  );
}

/** [{day, outbound, inbound}] for each of the window's days, oldest first. */
function perDay(first, rows) {
  const days = new Map();
  const start = Date.parse(`${first}T00:00:00Z`);
  for (let i = 0; i < DAYS; i += 1) {
    const day = isoDay(new Date(start + i * 86_400_000));
    days.set(day, { day, outbound: 0, inbound: 0 });
  }
  for (const row of rows) {
    const slot = days.get(row.day);
    if (!slot || NOT_COUNTED.has(row.status)) continue;
    if (row.direction === "outbound" || row.direction === "inbound") {
      slot[row.direction] += row.messages;
    }
  }
  return [...days.values()];
}

function chart(days) {
  const { width, height, top, bottom, left, right } = CHART;
  const most = Math.max(1, ...days.flatMap((d) => [d.outbound, d.inbound]));
  const plotHeight = height - top - bottom;
  const slot = (width - left - right) / days.length;
  const bar = Math.max(1, (slot - 2) / 2);
  const outbound = days.reduce((n, d) => n + d.outbound, 0);
  const inbound = days.reduce((n, d) => n + d.inbound, 0);

  const svg = el("svg", {
    viewBox: `0 0 ${width} ${height}`,
    role: "img",
    class: "chart-svg",
    "aria-label": `Messages per day over the last ${DAYS} days: ${outbound} sent, ${inbound} received.`,
  });
  svg.append(
    el("line", { x1: left, y1: top + plotHeight, x2: width - right, y2: top + plotHeight, class: "axis" }),
    text(left - 4, top + 4, String(most), "end"),
    text(left - 4, top + plotHeight, "0", "end"),
  );
  days.forEach((d, i) => {
    const x = left + i * slot + 1;
    for (const [k, direction] of ["outbound", "inbound"].entries()) {
      if (!d[direction]) continue;
      const h = Math.max(1, (d[direction] / most) * plotHeight);
      const rect = el("rect", {
        x: x + k * bar,
        y: top + plotHeight - h,
        width: bar,
        height: h,
        class: `bar ${direction}`,
        "data-day": d.day,
        "data-count": d[direction],
      });
      const title = el("title");
      title.textContent = `${d.day}: ${d[direction]} ${direction === "outbound" ? "sent" : "received"}`;
      rect.append(title);
      svg.append(rect);
    }
    if ((days.length - 1 - i) % 7 === 0) {
      svg.append(text(x + bar, height - 6, d.day.slice(5), "middle"));
    }
  });
  return svg;
}

function figures(delivery) {
  if (!delivery.length || delivery.every((row) => !row.sent && !row.received)) {
    const none = document.createElement("p");
    none.className = "muted";
    none.textContent = "Nothing sent or received in the last 30 days.";
    return [none];
  }
  return delivery.map((row) => {
    const box = document.createElement("dl");
    box.className = "figures";
    if (delivery.length > 1) box.dataset.account = row.account || "";
    const items = [
      ["sent", "Sent", String(row.sent)],
      ["received", "Received", String(row.received ?? 0)],
      ["delivery_rate", "Delivered", percent(row.delivery_rate)],
      ["read_rate", "Read", percent(row.read_rate)],
      ["delivered_time", "Time to delivered (median, p90)", times(row.delivered_p50_s, row.delivered_p90_s)],
      ["read_time", "Time to read (median, p90)", times(row.read_p50_s, row.read_p90_s)],
    ];
    for (const [key, label, value] of items) {
      const wrap = document.createElement("div");
      wrap.dataset.figure = key;
      const dt = document.createElement("dt");
      dt.textContent = delivery.length > 1 ? `${row.account || "Removed account"}: ${label}` : label;
      const dd = document.createElement("dd");
      dd.textContent = value;
      wrap.append(dt, dd);
      box.append(wrap);
    }
    return box;
  });
}

function totals(rows, key) {
  const sums = new Map();
  for (const row of rows) sums.set(row[key], (sums.get(row[key]) || 0) + row.messages);
  return [...sums.entries()].sort((a, b) => b[1] - a[1]);
}

function list(element, entries, line, empty) {
  const items = entries.map((entry) => {
    const li = document.createElement("li");
    li.textContent = line(entry);
    return li;
  });
  if (!items.length) {
    const li = document.createElement("li");
    li.className = "muted";
    li.textContent = empty;
    items.push(li);
  }
  element.replaceChildren(...items);
}

function percent(rate) {
  return rate === null || rate === undefined ? "–" : `${Math.round(Number(rate) * 100)} %`;
}

function times(p50, p90) {
  if (p50 === null || p50 === undefined) return "–";
  return `${duration(p50)}, ${duration(p90)}`;
}

function duration(seconds) {
  const s = Math.round(Number(seconds));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
}

function isoDay(date) {
  return date.toISOString().slice(0, 10);
}

function el(name, attributes = {}) {
  const node = document.createElementNS(SVG, name);
  for (const [key, value] of Object.entries(attributes)) node.setAttribute(key, String(value));
  return node;
}

function text(x, y, content, anchor) {
  const node = el("text", { x, y, "text-anchor": anchor, class: "label" });
  node.textContent = content;
  return node;
}

/** The report came on screen: read it again. */
export function reportShown() {
  if (app.client && app.client.user) loadReport();
}

export function wireReport() {
  $("report-refresh").addEventListener("click", () => loadReport());
  setInterval(() => {
    const onScreen = !document.hidden && !$("report-card").closest("[hidden]");
    if (onScreen && Date.now() - report.at >= REFRESH_MS) reportShown();
  }, 5_000);
}
