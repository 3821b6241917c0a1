// The testbed's live dashboard: experiments, and the watched one's event stream drawn as it
// arrives. Our own code, no library; the token lives in sessionStorage and travels only in
// the Authorization header (fetch streams the events, so no token in an EventSource URL).
"use strict";

const TOKEN_KEY = "testbed-operator-token";
const SVG = "http://www.w3.org/2000/svg";
const $ = (id) => document.getElementById(id);
let token = sessionStorage.getItem(TOKEN_KEY);
let watched = null;
let stream = null;
let state = null;
let timers = [];
let drawQueued = false;

function api(path, options = {}) {
  const headers = { ...(options.headers || {}), Authorization: `Bearer ${token}` };
  return fetch(path, { ...options, headers, cache: "no-store" });
}

function sleep(ms) { return new Promise((resolve) => setTimeout(resolve, ms)); }

function setConn(text) {
  const el = $("conn");
  el.textContent = text;
  el.className = `badge ${text}`;
}

// -- login ---------------------------------------------------------------------------------
async function login(event) {
  event.preventDefault();
  token = $("token").value.trim();
  let answer;
  try { answer = await api("/api/v1/experiments"); } catch (err) { answer = null; }
  if (!answer || answer.status === 401) {
    $("login-error").textContent = answer ? "the controller refused this token" : "no answer from the controller";
    token = null;
    return;
  }
  sessionStorage.setItem(TOKEN_KEY, token);
  $("token").value = "";
  $("login-error").textContent = "";
  showApp();
}

function logout() {
  sessionStorage.removeItem(TOKEN_KEY);
  token = null;
  if (stream) stream.abort();
  timers.forEach(clearInterval);
  timers = [];
  watched = null;
  $("app").hidden = true;
  $("login").hidden = false;
  $("logout").hidden = true;
  setConn("not connected");
}

function showApp() {
  $("login").hidden = true;
  $("app").hidden = false;
  $("logout").hidden = false;
  refreshExperiments();
  timers.push(setInterval(refreshExperiments, 2000), setInterval(refreshAgents, 2000));
}

// -- experiments -----------------------------------------------------------------------------
async function refreshExperiments() {
  let answer;
  try { answer = await api("/api/v1/experiments"); } catch (err) { return; }
  if (answer.status === 401) { logout(); return; }
  if (!answer.ok) return;
  const list = await answer.json();
  const body = $("experiments").tBodies[0];
  const rows = new Map([...body.rows].map((tr) => [tr.dataset.experiment, tr]));
  body.replaceChildren(...list.map((e) => experimentRow(e, rows.get(e.id))));
  if (watched === null && list.length) {
    const running = list.find((e) => e.status === "running");
    watch((running || list[list.length - 1]).id);
  }
  const mine = list.find((e) => e.id === watched);
  if (mine) $("watch-status").textContent = mine.status;
}

// A row per experiment; an existing row keeps its buttons (only its cells' text changes), so a
// click never lands on a row that the refresh has just replaced.
function experimentRow(e, existing) {
  const cells = [e.id, e.status, e.algorithm, `${e.rounds_completed} / ${e.rounds_total}`];
  if (existing) {
    cells.forEach((text, i) => { existing.cells[i].textContent = text; });
    existing.className = e.id === watched ? "watched" : "";
    return existing;
  }
  const tr = document.createElement("tr");
  tr.dataset.experiment = e.id;
  if (e.id === watched) tr.className = "watched";
  for (const text of cells) {
    const td = document.createElement("td");
    td.textContent = text;
    tr.append(td);
  }
  const td = document.createElement("td");
  td.append(
    button("watch", () => watch(e.id)),
    button("start", () => control(e.id, "start")),
    button("stop", () => control(e.id, "stop")),
  );
  tr.append(td);
  return tr;
}

function button(text, onClick) {
  const b = document.createElement("button");
  b.type = "button";
  b.textContent = text;
  b.dataset.action = text;
  b.addEventListener("click", onClick);
  return b;
}

async function control(id, action) {
  const answer = await api(`/api/v1/experiments/${encodeURIComponent(id)}/${action}`, { method: "POST" });
  if (!answer.ok) logLine(`${action} ${id}: HTTP ${answer.status}`);
  refreshExperiments();
}

// -- agents ----------------------------------------------------------------------------------
async function refreshAgents() {
  let answer;
  try { answer = await api("/api/v1/agents"); } catch (err) { return; }
  if (!answer.ok) return;
  const agents = await answer.json();
  const rows = agents.map((a) => {
    const s = a.status || {};
    const f = typeof s.freq_hz === "number" ? (s.freq_hz / 1e9).toFixed(2) : "";
    return row([a.id, s.device_profile || a.profile, a.alive ? "yes" : "no",
      a.last_seen_s_ago.toFixed(1), s.rounds_trained ?? "", f]);
  });
  $("agents").tBodies[0].replaceChildren(...rows);
}

function row(cells) {
  const tr = document.createElement("tr");
  for (const text of cells) {
    const td = document.createElement("td");
    td.textContent = String(text);
    tr.append(td);
  }
  return tr;
}

// -- the event stream ------------------------------------------------------------------------
function freshState() {
  return { rounds: new Map(), plans: new Map(), links: new Map(), stages: new Map(), csi: null, lastId: 0 };
}

function watch(id) {
  if (stream) stream.abort();
  watched = id;
  state = freshState();
  $("watch").hidden = false;
  $("watch-id").textContent = id;
  $("log").replaceChildren();
  for (const tr of $("experiments").tBodies[0].rows) {
    tr.className = tr.dataset.experiment === id ? "watched" : "";
  }
  draw();
  follow(id);
}

async function follow(id) {
  const control = new AbortController();
  stream = control;
  while (!control.signal.aborted) {
    try {
      const headers = state.lastId ? { "Last-Event-ID": String(state.lastId) } : {};
      const answer = await api(`/api/v1/experiments/${encodeURIComponent(id)}/events`,
        { headers, signal: control.signal });
      if (answer.status === 401) { logout(); return; }
      if (!answer.ok) throw new Error(`HTTP ${answer.status}`);
      setConn("live");
      const reader = answer.body.getReader();
      const decoder = new TextDecoder();
      let buffer = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += decoder.decode(value, { stream: true });
        let cut;
        while ((cut = buffer.indexOf("\n\n")) >= 0) {
          const ev = parseEvent(buffer.slice(0, cut));
          buffer = buffer.slice(cut + 2);
          if (ev) { state.lastId = ev.id; apply(ev); }
        }
      }
    } catch (err) {
      if (control.signal.aborted) return;
    }
    setConn("reconnecting");
    await sleep(1000);
  }
}

function parseEvent(block) {
  let id = null; let kind = "message"; const data = [];
  for (const line of block.split("\n")) {
    if (!line || line.startsWith(":")) continue;
    const at = line.indexOf(":");
    const field = at < 0 ? line : line.slice(0, at);
    const value = at < 0 ? "" : line.slice(at + 1).replace(/^ /, "");
    if (field === "id") id = Number(value);
    else if (field === "event") kind = value;
    else if (field === "data") data.push(value);
  }
  if (id === null || !data.length) return null;
  try { return { id, kind, data: JSON.parse(data.join("\n")) }; } catch (err) { return null; }
}

function apply(ev) {
  const d = ev.data;
  switch (ev.kind) {
    case "round_committed": state.rounds.set(d.round, d); logLine(`round ${d.round} committed: accuracy ${fmt(d.accuracy)}`); break;
    case "plan": state.plans.set(d.round, d); break;
    case "link": state.links.set(d.round, d); break;
    case "stage_opened": case "stage_closed": state.stages.set(`${d.round}/${d.stage}`, { ...d, closed: ev.kind === "stage_closed" }); break;
    case "csi": state.csi = d; break;
    case "experiment_status": $("watch-status").textContent = d.status; logLine(`status ${d.status}${d.error ? `: ${d.error}` : ""}`); break;
    case "agent_up": case "agent_down": logLine(`${ev.kind.replace("_", " ")}: ${d.agent} (${d.ue})`); break;
    case "round_opened": logLine(`round ${d.round} opened: ${d.selected.length} clients`); break;
    default: break;
  }
  if (!drawQueued) { drawQueued = true; requestAnimationFrame(() => { drawQueued = false; draw(); }); }
}

function logLine(text) {
  const li = document.createElement("li");
  li.textContent = `${new Date().toLocaleTimeString()}  ${text}`;
  const log = $("log");
  log.prepend(li);
  while (log.children.length > 200) log.lastChild.remove();
}

function fmt(x, digits = 4) { return typeof x === "number" ? x.toFixed(digits) : "n/a"; }

// -- drawing ---------------------------------------------------------------------------------
function draw() {
  if (!state) return;
  const rounds = [...state.rounds.values()].sort((a, b) => a.round - b.round);
  $("rounds-count").textContent = String(rounds.length);
  const by = (key) => rounds.filter((r) => typeof r[key] === "number").map((r) => [r.round, r[key]]);
  lineChart($("chart-accuracy"), [{ name: "accuracy", points: by("accuracy") }], "round");
  lineChart($("chart-loss"), [{ name: "loss", points: by("loss") }, { name: "fairness var", points: by("fairness_var") }], "round");
  lineChart($("chart-time"), [{ name: "accuracy", points: rounds.filter((r) => typeof r.accuracy === "number").map((r) => [r.model_time_s, r.accuracy]) }], "experiment time, s (modelled)");
  lineChart($("chart-cost"), [{ name: "latency, s", points: by("model_latency_s") }, { name: "energy, J", points: by("model_energy_j") }], "round");
  drawHeatmaps();
  drawStages();
  drawAps();
}

function el(name, attrs = {}, text = null) {
  const node = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  if (text !== null) node.textContent = text;
  return node;
}

function lineChart(svg, series, xLabel) {
  const W = 420, H = 200, L = 46, R = 10, T = 14, B = 30;
  const all = series.flatMap((s) => s.points);
  svg.replaceChildren();
  svg.dataset.points = String(series[0].points.length);
  svg.append(el("line", { x1: L, y1: H - B, x2: W - R, y2: H - B, class: "axis" }),
    el("line", { x1: L, y1: T, x2: L, y2: H - B, class: "axis" }),
    el("text", { x: (L + W - R) / 2, y: H - 4, "text-anchor": "middle" }, xLabel));
  if (!all.length) { svg.append(el("text", { x: W / 2, y: H / 2, "text-anchor": "middle" }, "no rounds yet")); return; }
  const xs = all.map((p) => p[0]), ys = all.map((p) => p[1]);
  let [x0, x1, y0, y1] = [Math.min(...xs), Math.max(...xs), Math.min(...ys), Math.max(...ys)];
  if (x1 === x0) { x0 -= 1; x1 += 1; }
  if (y1 === y0) { y0 -= 1; y1 += 1; }
  const sx = (x) => L + (x - x0) / (x1 - x0) * (W - L - R);
  const sy = (y) => H - B - (y - y0) / (y1 - y0) * (H - T - B);
  svg.append(el("text", { x: L - 4, y: T + 4, "text-anchor": "end" }, tick(y1)),
    el("text", { x: L - 4, y: H - B, "text-anchor": "end" }, tick(y0)),
    el("text", { x: L, y: H - B + 12, "text-anchor": "middle" }, tick(x0)),
    el("text", { x: W - R, y: H - B + 12, "text-anchor": "end" }, tick(x1)));
  series.forEach((s, i) => {
    if (!s.points.length) return;
    svg.append(el("polyline", { points: s.points.map((p) => `${sx(p[0])},${sy(p[1])}`).join(" "), class: `s${i}` }));
    for (const [x, y] of s.points) {
      const dot = el("circle", { cx: sx(x), cy: sy(y), r: 2.6, class: `s${i}` });
      dot.dataset.round = String(x);
      dot.append(el("title", {}, `${s.name}: ${tick(y)} at ${tick(x)}`));
      svg.append(dot);
    }
    svg.append(el("text", { x: W - R - 4, y: T + 10 + 12 * i, "text-anchor": "end", class: `s${i}`, stroke: "none" }, s.name));
  });
}

function tick(v) {
  const a = Math.abs(v);
  if (a !== 0 && (a < 1e-2 || a >= 1e4)) return v.toExponential(1);
  return String(Math.round(v * 1000) / 1000);
}

function drawHeatmaps() {
  const rounds = [...new Set([...state.plans.keys(), ...state.links.keys()])].sort((a, b) => a - b);
  const ues = [...new Set([...state.plans.values(), ...state.links.values()].flatMap((p) => p.ue_ids))].sort();
  const planned = (field, scale) => (r, u) => {
    const p = state.plans.get(r);
    if (!p || !p[field]) return null;
    const i = p.ue_ids.indexOf(u);
    return i < 0 || typeof p[field][i] !== "number" ? null : p[field][i] * scale;
  };
  heatmap($("heat-bandwidth"), rounds, ues, planned("bandwidth_hz", 1e-6));
  heatmap($("heat-power"), rounds, ues, planned("power_w", 1));
  heatmap($("heat-freq"), rounds, ues, planned("freq_hz", 1e-9));
  heatmap($("heat-mcs"), rounds, ues, planned("mcs_index", 1));
  heatmap($("heat-link"), rounds, ues, (r, u) => {
    const l = state.links.get(r);
    if (!l) return null;
    const i = l.ue_ids.indexOf(u);
    return i < 0 ? null : l.status[i];
  }, true);
}

function heatmap(svg, rounds, ues, value, categorical = false) {
  const C = 14, L = 56, T = 14;
  svg.replaceChildren();
  svg.setAttribute("width", String(L + C * Math.max(1, rounds.length) + 6));
  svg.setAttribute("height", String(T + C * Math.max(1, ues.length) + 6));
  const values = [];
  for (const r of rounds) for (const u of ues) { const v = value(r, u); if (typeof v === "number") values.push(v); }
  const lo = Math.min(...values), hi = Math.max(...values);
  rounds.forEach((r, j) => { if (j % 5 === 0) svg.append(el("text", { x: L + C * j, y: T - 3 }, String(r))); });
  ues.forEach((u, i) => {
    svg.append(el("text", { x: L - 4, y: T + C * i + 10, "text-anchor": "end" }, u));
    rounds.forEach((r, j) => {
      const v = value(r, u);
      if (v === null || v === undefined) return;
      const attrs = { x: L + C * j, y: T + C * i, width: C - 1, height: C - 1 };
      if (categorical) attrs.class = String(v);
      else attrs.fill = colour(hi > lo ? (v - lo) / (hi - lo) : 0.5);
      const cell = el("rect", attrs);
      cell.dataset.round = String(r);
      cell.dataset.ue = u;
      cell.append(el("title", {}, `${u}, round ${r}: ${categorical ? v : tick(v)}`));
      svg.append(cell);
    });
  });
}

function colour(t) {  // dark blue (low) to yellow (high)
  const hue = 240 - 180 * t;
  return `hsl(${hue}, 70%, ${30 + 35 * t}%)`;
}

function drawStages() {
  const all = [...state.stages.values()];
  if (!all.length) return;
  const last = Math.max(...all.map((s) => s.round));
  const rows = all.filter((s) => s.round === last).map((s) =>
    row([s.round, s.stage, s.closed ? `${s.received} / ${s.tasks}` : `open (${s.tasks} sent)`,
      s.threshold ?? "", s.closed ? s.duration_s.toFixed(2) : ""]));
  $("stages").tBodies[0].replaceChildren(...rows);
}

function drawAps() {
  const c = state.csi;
  if (!c || !c.aps) return;
  const rows = Object.entries(c.aps).map(([ap, s]) => {
    const gains = Object.entries(s.gain_db || {}).map(([u, g]) => `${u} ${g.toFixed(1)}`).join(", ");
    return row([ap, s.frame, s.age_s === null ? "" : s.age_s.toFixed(2), s.stale ? "yes" : "no", gains]);
  });
  $("aps").tBodies[0].replaceChildren(...rows);
  const n = c.counters || {};
  const rejected = Object.entries(n)
    .filter(([k, v]) => typeof v === "number" && v && !["received", "accepted", "resets"].includes(k))
    .map(([k, v]) => `${k} ${v}`);
  $("csi-counters").textContent = `CSI messages: ${n.accepted ?? 0} accepted; rejected: ${rejected.join(", ") || "none"}`;
}

document.addEventListener("DOMContentLoaded", () => {
  $("login-form").addEventListener("submit", login);
  $("logout").addEventListener("click", logout);
  if (token) showApp();
});
