// Monitoring dashboard panel of the admin page: the last health report (score parts, prompt cache,
// parallelism, 7-day trends), open alerts, usage chart; optimisations.js lists the hints in force.
//
// Loaded before app.js and uses its helpers ($, el, api, state, ApiError) only when called.
// app.js calls refreshDashboard() at sign-in and every 30 s; the panel's Refresh button calls it on
// demand. The data is what the scheduled MonitoringWorkflow recorded (GET /monitoring/report,
// /monitoring/alerts, /monitoring/trends), so the panel is as fresh as the last run and says how old.
// A score part without data is shown "n/a" with the reason the report gives (it is left out of the score).
// The chart is an SVG drawn here (no library, nothing fetched from elsewhere); the strict CSP
// allows no inline style, so colours come from style.css classes and sizes from SVG attributes.
"use strict";

const DASHBOARD_REFRESH_MS = 30000;
const SVG_NS = "http://www.w3.org/2000/svg";
const BREAKDOWN = [
  ["dependencies", "dependencies", 30],
  ["llm", "model latency & errors", 20],
  ["tools", "tool success", 15],
  ["approvals", "approval backlog & wait", 10],
  ["cache", "cache size", 5],
  ["prompt_cache", "model prompt cache", 10],
  ["parallelism", "plan parallelism", 10],
];
const TREND_LABELS = { latency: "latency", prompt_cache: "prompt cache", parallelism: "parallelism", error_rate: "error rate" };
let dashboardBusy = false;

async function refreshDashboard() {
  if (!state.key || dashboardBusy) return;
  dashboardBusy = true;
  $("dash-refresh").disabled = true;
  try {
    const [report, alerts, trends] = await Promise.allSettled([
      api("GET", "/monitoring/report"),
      api("GET", "/monitoring/alerts?limit=50"),
      api("GET", "/monitoring/trends?bucket_minutes=10"),
    ]);
    showReport(report);
    showAlerts(alerts);
    showTrends(trends);
    await refreshHints();
    $("dash-updated").textContent = `updated ${new Date().toLocaleTimeString()}`;
  } finally {
    dashboardBusy = false;
    $("dash-refresh").disabled = false;
  }
}

function failure(result) {
  const err = result.reason;
  return err instanceof ApiError ? `${err.problem.title || "Error"}: ${err.message}` : `cannot reach the API: ${err}`;
}

function ago(iso) {
  const seconds = Math.max(0, (Date.now() - Date.parse(iso)) / 1000);
  if (seconds < 90) return `${Math.round(seconds)} s ago`;
  if (seconds < 5400) return `${Math.round(seconds / 60)} min ago`;
  if (seconds < 172800) return `${Math.round(seconds / 3600)} h ago`;
  return `${Math.round(seconds / 86400)} days ago`;
}

function showReport(result) {
  const badge = $("dash-status");
  if (result.status === "rejected") {
    const missing = result.reason instanceof ApiError && result.reason.status === 404;
    $("dash-report").hidden = true;
    $("dash-empty").hidden = false;
    // 404 is normal on a fresh install: say so, with the server's advice on getting a first run.
    $("dash-empty").textContent = missing ? result.reason.message : failure(result);
    badge.textContent = missing ? "no report yet" : "unavailable";
    badge.className = "badge";
    return;
  }
  const r = result.value;
  $("dash-empty").hidden = true;
  $("dash-report").hidden = false;
  badge.textContent = r.status;
  badge.className = `badge ${r.status}`;
  $("dash-score").textContent = String(r.score);
  $("dash-score").className = `score ${r.status}`;
  const at = $("dash-at");
  at.textContent = `as of ${ago(r.at)}`;
  at.title = new Date(r.at).toLocaleString();

  const rows = [];
  for (const [field, label, weight] of BREAKDOWN) {
    const value = r.breakdown[field];
    const why = (r.breakdown.not_applicable || {})[field];
    rows.push(el("dt", { title: `weight ${weight} %`, "data-part": field }, label),
      value === null || value === undefined
        ? el("dd", { class: "muted na", title: why || "no data" }, `n/a: ${why || "no data"}`)
        : el("dd", {}, el("meter", { min: "0", max: "1", low: "0.5", high: "0.8", optimum: "1", value: String(value) }),
          ` ${Math.round(value * 100)} %`));
  }
  $("dash-breakdown").replaceChildren(...rows);
  showPerformance(r.metrics);

  const bad = r.checks.filter((c) => c.status === "down" || c.status === "degraded");
  $("dash-checks").replaceChildren(...(bad.length
    ? bad.map((c) => el("li", {}, el("span", { class: `badge ${c.status}` }, c.status), ` ${c.name}: ${c.detail}`))
    : [el("li", { class: "muted" }, `all ${r.checks.filter((c) => c.status !== "skipped").length} dependency checks ok`)]));
}

function pct(value) {
  return value === null || value === undefined ? "n/a" : `${Math.round(value * 100)} %`;
}

// The report's figures beside the score: prompt cache, parallelism, and the 7-day trends.
function showPerformance(metrics) {
  const cache = metrics.prompt_cache, plans = metrics.parallelism;
  $("dash-performance").textContent =
    `prompt cache hit ${pct(cache.hit_rate)} (${cache.reporting_calls} of ${cache.calls} calls reported it) · ` +
    `parallelism ${pct(plans.rate)} (${plans.task_runs} task runs)`;
  const lines = metrics.weekly ? metrics.weekly.lines : [];
  $("dash-weekly").replaceChildren(...(lines.length
    ? lines.map((line) => {
        const change = line.change === null ? "" : line.metric === "latency"
          ? ` (${line.change > 0 ? "+" : ""}${Math.round(line.change * 100)} %)`
          : ` (${line.change > 0 ? "+" : ""}${Math.round(line.change * 100)} pts)`;
        return el("li", { class: `trend ${line.trend.replace(/ /g, "-")}`, "data-metric": line.metric, title: line.rule },
          `${TREND_LABELS[line.metric] || line.metric}: ${line.trend}${change}`);
      })
    : [el("li", { class: "muted" }, "no 7-day figures in this report")]));
}

function showAlerts(result) {
  const list = $("dash-alerts");
  if (result.status === "rejected") {
    $("dash-alerts-count").textContent = "?";
    list.replaceChildren(el("li", { class: "muted" }, failure(result)));
    return;
  }
  const alerts = result.value;
  $("dash-alerts-count").textContent = String(alerts.length);
  list.replaceChildren(...(alerts.length
    ? alerts.map((a) => el("li", { class: `alert ${a.severity}`, "data-key": a.key },
        el("span", { class: `badge ${a.severity}` }, a.severity), " ", a.message,
        el("span", { class: "muted", title: new Date(a.first_seen).toLocaleString() },
          ` · since ${ago(a.first_seen)}${a.occurrences > 1 ? ` · seen in ${a.occurrences} runs` : ""}`)))
    : [el("li", { class: "muted" }, "no open alerts")]));
}

function svg(tag, attrs, ...children) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, String(value));
  for (const child of children) node.append(child);
  return node;
}

function compact(n) {
  return n >= 1e6 ? `${(n / 1e6).toFixed(1)}M` : n >= 1e3 ? `${(n / 1e3).toFixed(1)}k` : String(n);
}

function clock(iso) {
  return new Date(iso).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
}

function showTrends(result) {
  const chart = $("dash-chart");
  if (result.status === "rejected") {
    chart.replaceChildren();
    $("dash-trend").textContent = failure(result);
    return;
  }
  const t = result.value;
  const W = 340, H = 120, top = 14, bottom = 16, left = 2;
  const buckets = t.buckets;
  const peak = Math.max(0, ...buckets.map((b) => b.tokens));
  const max = Math.max(1, peak);
  const slot = (W - left) / Math.max(1, buckets.length);
  const bars = buckets.map((b, i) => {
    const h = b.tokens ? Math.max(1, (b.tokens / max) * (H - top - bottom)) : 0;
    const models = Object.entries(b.tokens_by_model).map(([m, n]) => `${m}: ${n}`).join(", ");
    return svg("rect", { class: "bar", x: (left + i * slot + 1).toFixed(1), y: (H - bottom - h).toFixed(1),
      width: Math.max(1, slot - 2).toFixed(1), height: h.toFixed(1), "data-tokens": b.tokens },
      svg("title", {}, `${clock(b.start)}: ${b.tokens} tokens in ${b.model_calls} model calls` +
        `${models ? ` (${models})` : ""}; ${b.actions} tool calls, ${b.action_failures} failed` +
        `${b.avg_score !== null ? `; score ${b.avg_score}` : ""}`));
  });
  chart.setAttribute("viewBox", `0 0 ${W} ${H}`);
  chart.replaceChildren(
    svg("line", { class: "axis", x1: 0, y1: H - bottom, x2: W, y2: H - bottom }),
    svg("text", { class: "label", x: 2, y: 10 },
      peak ? `max ${compact(peak)} tokens / ${t.bucket_minutes} min` : `no model tokens in these ${t.bucket_minutes}-min buckets`),
    ...bars,
    svg("text", { class: "label", x: 2, y: H - 3 }, clock(t.since)),
    svg("text", { class: "label", x: W - 2, y: H - 3, "text-anchor": "end" }, clock(t.until)),
  );
  const total = buckets.reduce((sum, b) => sum + b.tokens, 0);
  const calls = buckets.reduce((sum, b) => sum + b.model_calls, 0);
  $("dash-trend").textContent = `${compact(total)} tokens in ${calls} model calls; score ${t.score_trend}`;
}

document.addEventListener("DOMContentLoaded", () => {
  $("dash-refresh").addEventListener("click", () => refreshDashboard());
});
