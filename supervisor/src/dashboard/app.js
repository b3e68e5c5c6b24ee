// openclawctl dashboard: renders the snapshot the server streams over
// /events (a `full` event with a minute of history, then one tick a
// second) and posts start/stop/restart. Text goes in through textContent
// only: nothing from a profile is ever parsed as HTML.
"use strict";

const HISTORY = 60;
const profiles = new Map(); // name -> {row, cpu: [], mem: [], card}
let doctor = null;
let registryError = null;

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") e.className = v; else e.setAttribute(k, v);
  }
  for (const c of children) e.append(c);
  return e;
}

function bytes(b) {
  if (b == null) return "-";
  const k = 1024;
  if (b < k * k) return (b / k).toFixed(0) + " KiB";
  if (b < k * k * k) return (b / k / k).toFixed(1) + " MiB";
  return (b / k / k / k).toFixed(1) + " GiB";
}

function uptime(ms) {
  if (ms == null) return "-";
  const s = Math.floor(ms / 1000);
  const d = Math.floor(s / 86400), h = Math.floor(s % 86400 / 3600), m = Math.floor(s % 3600 / 60);
  if (d) return `${d}d ${h}h`;
  if (h) return `${h}h ${m}m`;
  if (m) return `${m}m ${s % 60}s`;
  return `${s}s`;
}

function lastExit(e) {
  if (!e) return "-";
  const what = e.code != null ? `code ${e.code}` : (e.signal || e.reason || "?");
  return e.reason && e.signal ? `${what} (${e.reason})` : what;
}

const SVG = "http://www.w3.org/2000/svg";
function sparkline(values, limit) {
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("viewBox", `0 0 ${HISTORY - 1} 100`);
  svg.setAttribute("preserveAspectRatio", "none");
  const top = Math.max(limit || 0, ...values, 1e-9) * 1.1;
  const line = document.createElementNS(SVG, "polyline");
  const offset = HISTORY - values.length;
  line.setAttribute("points", values.map((v, i) => `${offset + i},${100 - (v / top) * 100}`).join(" "));
  svg.append(line);
  if (limit) {
    const l = document.createElementNS(SVG, "line");
    const y = 100 - (limit / top) * 100;
    l.setAttribute("x1", 0); l.setAttribute("x2", HISTORY - 1);
    l.setAttribute("y1", y); l.setAttribute("y2", y);
    svg.append(l);
  }
  return svg;
}

function act(name, verb, button) {
  button.disabled = true;
  fetch(`/api/profiles/${encodeURIComponent(name)}/${verb}`, { method: "POST" })
    .then((r) => r.json())
    .then((doc) => toast(doc.ok ? `${verb} ${name}: done` : `${verb} ${name}: ${doc.error || "failed"}`))
    .catch((e) => toast(`${verb} ${name}: ${e}`))
    .finally(() => { button.disabled = false; });
}

let toastTimer = null;
function toast(text) {
  const t = document.getElementById("toast");
  t.textContent = text;
  t.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { t.hidden = true; }, 4000);
}

function fact(label, value, key) {
  return [el("span", {}, label), el("b", { "data-fact": key }, value)];
}

function renderCard(p) {
  const r = p.row;
  const lim = r.limits || {};
  const cpu = r.cpuPercent == null ? "-" : `${r.cpuPercent.toFixed(1)}%`;
  const card = el("article", {
    class: "card",
    "data-profile": r.name,
    "data-state": r.state,
    "data-healthy": String(r.healthy),
    "data-restarts": String(r.restarts),
    "data-pid": String(r.pid ?? ""),
  });
  card.append(
    el("div", { class: "top" },
      el("span", { class: "dot", "data-healthy": String(r.healthy), title: r.healthy ? "healthy" : "not healthy" }),
      el("span", { class: "name", title: r.stateDir }, r.name),
      el("span", { class: "badge", "data-state": r.state }, r.state)),
    el("div", { class: "facts" },
      ...fact("managed by", r.managedBy, "managedBy"),
      ...fact("port / pid", `${r.port ?? "-"} / ${r.pid ?? "-"}`, "pid"),
      ...fact("uptime", uptime(r.uptimeMs), "uptime"),
      ...fact("restarts", String(r.restarts), "restarts"),
      ...fact("cpu", lim.cpuQuotaPercent ? `${cpu} / ${lim.cpuQuotaPercent}%` : cpu, "cpu"),
      ...fact("memory", lim.memoryMaxBytes ? `${bytes(r.memoryBytes)} / ${bytes(lim.memoryMaxBytes)}` : bytes(r.memoryBytes), "memory"),
      ...fact("last exit", lastExit(r.lastExit), "lastExit")),
    el("div", { class: "spark" },
      el("figure", {}, el("figcaption", {}, "cpu, 1 min"), sparkline(p.cpu, lim.cpuQuotaPercent)),
      el("figure", {}, el("figcaption", {}, "memory, 1 min"), sparkline(p.mem, lim.memoryMaxBytes))),
    el("div", { class: "log" }, ...((r.log || []).length
      ? r.log.map((l) => el("div", { title: l }, l.replace(/^\d{4}-\d\d-\d\dT(\d\d:\d\d:\d\d)\S*/, "$1")))
      : [el("div", {}, "(no log yet)")])));
  if (r.lastError) card.append(el("div", { class: "finding", "data-severity": "error" }, r.lastError));
  const actions = el("div", { class: "actions" });
  for (const verb of ["start", "stop", "restart"]) {
    const b = el("button", { type: "button", "data-action": verb }, verb);
    const running = ["running", "starting", "backoff"].includes(r.state);
    if ((verb === "start" && running) || (verb === "stop" && !running)) b.disabled = true;
    b.addEventListener("click", () => act(r.name, verb, b));
    actions.append(b);
  }
  card.append(actions);
  return card;
}

function renderDoctor() {
  const box = document.getElementById("doctor");
  box.replaceChildren();
  if (registryError) box.append(el("div", { class: "finding", "data-severity": "error" }, registryError));
  if (!doctor) { box.append(el("div", { class: "clean" }, "doctor: running…")); return; }
  const list = doctor.findings || [];
  if (!list.length) { box.append(el("div", { class: "clean", "data-doctor": "clean" }, "doctor: no problems found")); return; }
  for (const f of list) {
    box.append(el("div", { class: "finding", "data-severity": f.severity, "data-check": f.checkId },
      el("b", {}, `${f.severity} ${f.checkId}`), ` ${(f.profiles || []).join(", ")}: ${f.message} `,
      el("span", { class: "hint" }, `fix: ${f.fixHint}`)));
  }
}

function render() {
  const grid = document.getElementById("profiles");
  const names = [...profiles.keys()].sort();
  const cards = names.map((n) => renderCard(profiles.get(n)));
  grid.replaceChildren(...cards);
  if (!names.length) grid.append(el("p", {}, "no profiles yet: create one with `openclawctl profile create <name>`"));
  const rows = names.map((n) => profiles.get(n).row);
  const running = rows.filter((r) => r.state === "running").length;
  const unhealthy = rows.filter((r) => ["running", "starting", "backoff"].includes(r.state) && !r.healthy).length;
  const restarts = rows.reduce((a, r) => a + r.restarts, 0);
  document.getElementById("summary").textContent =
    `${rows.length} profiles · ${running} running · ${unhealthy} not healthy · ${restarts} restarts`;
  renderDoctor();
}

function apply(doc, full) {
  const seen = new Set();
  for (const r of doc.profiles) {
    seen.add(r.name);
    let p = profiles.get(r.name);
    if (!p || full) {
      p = { row: r, cpu: full ? (r.cpuHistory || []) : [], mem: full ? (r.memoryHistory || []) : [] };
      profiles.set(r.name, p);
    } else {
      p.cpu.push(r.cpuPercent || 0);
      p.mem.push(r.memoryBytes || 0);
      if (p.cpu.length > HISTORY) p.cpu.shift();
      if (p.mem.length > HISTORY) p.mem.shift();
      p.row = r;
    }
  }
  for (const n of [...profiles.keys()]) if (!seen.has(n)) profiles.delete(n);
  doctor = doc.doctor;
  registryError = doc.registryError;
  render();
}

function connect() {
  const conn = document.getElementById("conn");
  const es = new EventSource("/events");
  es.addEventListener("full", (e) => {
    conn.dataset.state = "live"; conn.textContent = "live";
    apply(JSON.parse(e.data), true);
  });
  es.onmessage = (e) => {
    conn.dataset.state = "live"; conn.textContent = "live";
    apply(JSON.parse(e.data), false);
  };
  es.onerror = () => { conn.dataset.state = "lost"; conn.textContent = "reconnecting…"; };
}

connect();
