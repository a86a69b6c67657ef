// The dashboard page: receives one snapshot of the bus per second over server-sent events
// and draws it. Charts are plain SVG paths, drawn here; no library.
"use strict";

const MAX_WINDOW_SECONDS = 300; // the charts show up to the last five minutes
const MIN_WINDOW_SECONDS = 60;
const SVG = "http://www.w3.org/2000/svg";

const state = { points: [], latest: null, connected: false };
window.lightbusDashboard = state; // for tests and the curious

const $ = (id) => document.getElementById(id);

function compact(value) {
  if (value === null || value === undefined || Number.isNaN(value)) return "–";
  const abs = Math.abs(value);
  if (abs >= 1e6) return (value / 1e6).toFixed(abs >= 1e7 ? 0 : 1) + "M";
  if (abs >= 1e4) return (value / 1e3).toFixed(0) + "k";
  if (abs >= 1e3) return (value / 1e3).toFixed(1) + "k";
  if (abs >= 10 || Number.isInteger(value)) return value.toFixed(0);
  return value.toFixed(1);
}

function milliseconds(value) {
  if (value === null || value === undefined) return "–";
  return value < 1 ? value.toFixed(2) : value < 10 ? value.toFixed(1) : value.toFixed(0);
}

function ago(seconds) {
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return s + "s";
  if (s < 3600) return Math.floor(s / 60) + "m" + String(s % 60).padStart(2, "0") + "s";
  return Math.floor(s / 3600) + "h" + String(Math.floor((s % 3600) / 60)).padStart(2, "0") + "m";
}

function clock(t) {
  return new Date(t * 1000).toLocaleTimeString([], { hour12: false });
}

function el(name, attributes, text) {
  const node = document.createElementNS(SVG, name);
  for (const [key, value] of Object.entries(attributes)) node.setAttribute(key, value);
  if (text !== undefined) node.textContent = text;
  return node;
}

// A "nice" upper bound for an axis: 1, 2 or 5 times a power of ten, at least `value`.
function niceCeiling(value) {
  if (value <= 0) return 1;
  const power = Math.pow(10, Math.floor(Math.log10(value)));
  for (const step of [1, 2, 5, 10]) {
    if (step * power >= value) return step * power;
  }
  return 10 * power;
}

// Draws `series` ({key, cls}) of `points` into `svg`: the history there is, from one to
// five minutes. The y axis starts at 0 and ends at a round number, at least `minTop`.
function drawChart(svg, points, series, minTop) {
  const width = svg.clientWidth || 640;
  const height = svg.clientHeight || 220;
  svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
  svg.setAttribute("preserveAspectRatio", "xMidYMid meet");
  const pad = { left: 44, right: 10, top: 10, bottom: 20 };
  const plotWidth = width - pad.left - pad.right;
  const plotHeight = height - pad.top - pad.bottom;
  const end = points.length ? points[points.length - 1].t : Date.now() / 1000;
  const span = points.length ? end - points[0].t : 0;
  const windowSeconds = Math.min(MAX_WINDOW_SECONDS, Math.max(MIN_WINDOW_SECONDS, Math.ceil(span / 60) * 60));
  const start = end - windowSeconds;
  const visible = points.filter((p) => p.t >= start);
  let max = 0;
  for (const p of visible) for (const s of series) max = Math.max(max, p[s.key] || 0);
  const top = niceCeiling(Math.max(max, minTop));
  const x = (t) => pad.left + ((t - start) / windowSeconds) * plotWidth;
  const y = (v) => pad.top + plotHeight - (Math.min(v, top) / top) * plotHeight;

  while (svg.firstChild) svg.removeChild(svg.firstChild);
  for (let i = 0; i <= 4; i++) {
    const value = (top * i) / 4;
    const yy = y(value);
    svg.appendChild(el("line", { class: "grid-line", x1: pad.left, x2: width - pad.right, y1: yy, y2: yy }));
    svg.appendChild(el("text", { class: "axis", x: pad.left - 6, y: yy + 3, "text-anchor": "end" }, compact(value)));
  }
  const step = windowSeconds <= 60 ? 15 : 60;
  for (let back = 0; back <= windowSeconds; back += step) {
    const label = back === 0 ? "now" : step === 60 ? `-${back / 60}m` : `-${back}s`;
    const anchor = back === 0 ? "end" : back === windowSeconds ? "start" : "middle";
    svg.appendChild(el("text", { class: "axis", x: x(end - back), y: height - 5, "text-anchor": anchor }, label));
  }
  for (const s of series) {
    if (!visible.length) continue;
    const line = visible.map((p, i) => `${i ? "L" : "M"}${x(p.t).toFixed(1)},${y(p[s.key] || 0).toFixed(1)}`).join("");
    const first = x(visible[0].t).toFixed(1);
    const last = x(visible[visible.length - 1].t).toFixed(1);
    const base = y(0).toFixed(1);
    svg.appendChild(el("path", { class: `area ${s.cls}`, d: `${line}L${last},${base}L${first},${base}Z` }));
    svg.appendChild(el("path", { class: `series ${s.cls}`, d: line, "data-series": s.key }));
  }
  const latest = visible.length ? visible[visible.length - 1] : null;
  svg.dataset.points = String(visible.length);
  svg.dataset.latest = latest ? JSON.stringify(latest) : "";
  svg.dataset.max = String(max);
}

function fillTable(id, rows, empty) {
  const body = $(id).querySelector("tbody");
  body.replaceChildren();
  if (!rows.length) {
    const tr = document.createElement("tr");
    tr.className = "empty";
    const td = document.createElement("td");
    td.colSpan = $(id).querySelectorAll("th").length;
    td.textContent = empty;
    tr.appendChild(td);
    body.appendChild(tr);
    return;
  }
  for (const row of rows) {
    const tr = document.createElement("tr");
    for (const [key, value] of Object.entries(row.data || {})) tr.dataset[key] = value;
    for (const cell of row.cells) {
      const td = document.createElement("td");
      if (cell && typeof cell === "object") {
        if (cell.pill) {
          const span = document.createElement("span");
          span.className = `pill ${cell.pill}`;
          span.textContent = cell.text;
          td.appendChild(span);
        } else {
          td.textContent = cell.text;
        }
        if (cell.cls) td.className = cell.cls;
      } else {
        td.textContent = cell;
      }
      tr.appendChild(td);
    }
    body.appendChild(tr);
  }
}

function render() {
  drawChart($("rate-chart"), state.points, [
    { key: "redis_commands_per_second", cls: "redis" },
    { key: "events_per_second", cls: "events" },
    { key: "calls_per_second", cls: "calls" },
  ], 4);
  drawChart($("lag-chart"), state.points, [{ key: "lag", cls: "lag" }], 4);

  const snap = state.latest;
  if (!snap) return;
  if (snap.error) {
    $("redis").textContent = "cannot read the bus: " + snap.error;
    return;
  }
  const status = snap.status;
  const point = snap.point;
  $("redis").textContent = "Redis " + status.redis.join(", ");
  $("kpi-calls").textContent = compact(point.calls_per_second);
  $("kpi-calls-hint").textContent = snap.metrics_plugin_seen ? "from internal.metrics" : "internal_metrics off";
  $("kpi-events").textContent = compact(point.events_per_second);
  const latency = snap.latency_ms;
  $("kpi-latency").textContent = latency.count ? `${milliseconds(latency.p50)} · ${milliseconds(latency.p99)} ms` : "–";
  $("kpi-latency-hint").textContent = latency.count ? `${latency.count} calls, last 60 s` : "no answered calls seen";
  $("kpi-lag").textContent = compact(point.lag);
  $("kpi-lag").classList.toggle("hot", point.lag > 0);
  const alive = status.workers.filter((w) => w.state === "alive").length;
  $("kpi-workers").textContent = String(alive);
  $("kpi-workers-hint").textContent = `${status.blocked_clients.length} clients blocked on lists`;
  const dead = status.streams.reduce((sum, s) => sum + s.dead_letters, 0);
  $("kpi-dead").textContent = compact(dead);
  $("kpi-dead").classList.toggle("hot", dead > 0);

  const apiRates = {};
  for (const [stream, rate] of Object.entries(snap.stream_rates || {})) {
    const api = stream.replace(/\.[^.]*:stream$/, "");
    apiRates[api] = (apiRates[api] || 0) + rate;
  }
  fillTable("apis", status.apis.map((api) => ({
    data: { api: api.name },
    cells: [
      api.name,
      api.schema_age_seconds === null ? { text: "no schema", cls: "muted" } : ago(api.schema_age_seconds) + " ago",
      { text: String(api.rpcs.length), cls: "num" },
      { text: String(api.events.length), cls: "num" },
      { text: String(api.queue_length), cls: api.queue_length > 0 ? "num hot" : "num" },
      { text: compact(apiRates[api.name] || 0), cls: "num" },
    ],
  })), "no APIs on the bus");
  fillTable("workers", status.workers.map((w) => ({
    data: { process: w.process_name, state: w.state },
    cells: [w.process_name, w.service_name, { pill: w.state, text: w.state }, ago(w.last_seen_seconds) + " ago", w.api_names.join(", ")],
  })), "no internal.state events (enable plugins.internal_state on workers)");
  $("blocked").textContent = status.blocked_clients.length
    ? `${status.blocked_clients.length} client(s) blocked in list pops: workers waiting on RPC queues, callers waiting for results.`
    : "";
  fillTable("groups", status.groups.map((g) => ({
    data: { stream: g.stream, group: g.group },
    cells: [
      g.stream,
      g.group,
      { text: compact(g.lag) + (g.lag_capped ? "+" : ""), cls: g.lag > 0 ? "num hot" : "num" },
      { text: compact(g.pending), cls: "num" },
      g.consumers.map((c) => `${c.name} (${ago(c.idle_ms / 1000)})`).join(", "),
    ],
  })), "no consumer groups");
  fillTable("failures", (snap.failures || []).map((f) => ({
    cells: [clock(f.t), { pill: "fail", text: f.kind }, f.what, f.detail],
  })), "none seen since the dashboard started");
  $("updated").textContent = "updated " + clock(snap.t);
}

function connect() {
  const source = new EventSource("/events");
  const setConnected = (up) => {
    state.connected = up;
    $("conn").textContent = up ? "live" : "reconnecting";
    $("conn").className = "conn " + (up ? "up" : "down");
  };
  source.onopen = () => setConnected(true);
  source.onerror = () => setConnected(false);
  source.addEventListener("history", (event) => {
    state.points = JSON.parse(event.data).points;
    render();
  });
  source.addEventListener("tick", (event) => {
    const snap = JSON.parse(event.data);
    state.latest = snap;
    if (snap.point) {
      state.points.push(snap.point);
      const cutoff = snap.point.t - 600;
      while (state.points.length && state.points[0].t < cutoff) state.points.shift();
    }
    render();
  });
}

window.addEventListener("resize", render);
connect();
