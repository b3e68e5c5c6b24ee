// OpenClaw web chat: one page, no build step, no network beyond this
// gateway. It speaks protocol 4 over the gateway's own WebSocket: a device
// identity (Ed25519 in WebCrypto, kept in this browser) signs the v2
// payload, the gateway token (from #token=… or the form; kept in this tab)
// authenticates, and chat.send / chat.history / chat.abort / sessions.*
// do the rest. Message text is only ever set as textContent.
"use strict";

const $ = (id) => document.getElementById(id);
const state = { ws: null, pending: new Map(), next: 1, session: "agent:main:main", runId: null, streaming: null };

function setStatus(text, phase) {
  $("status").textContent = text;
  if (phase) document.body.dataset.state = phase;
}

function b64url(bytes) {
  let s = "";
  for (const b of new Uint8Array(bytes)) s += String.fromCharCode(b);
  return btoa(s).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

async function sha256hex(bytes) {
  const d = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  return Array.from(d, (b) => b.toString(16).padStart(2, "0")).join("");
}

// The browser's device: generated once, kept in localStorage.
async function device() {
  const saved = localStorage.getItem("openclaw.webchat.device");
  if (saved) {
    const d = JSON.parse(saved);
    const key = await crypto.subtle.importKey("jwk", d.jwk, { name: "Ed25519" }, false, ["sign"]);
    return { id: d.id, publicKey: d.publicKey, key };
  }
  const pair = await crypto.subtle.generateKey({ name: "Ed25519" }, true, ["sign", "verify"]);
  const raw = await crypto.subtle.exportKey("raw", pair.publicKey);
  const jwk = await crypto.subtle.exportKey("jwk", pair.privateKey);
  const d = { id: await sha256hex(raw), publicKey: b64url(raw), jwk };
  localStorage.setItem("openclaw.webchat.device", JSON.stringify(d));
  return { id: d.id, publicKey: d.publicKey, key: pair.privateKey };
}

function token() {
  const m = location.hash.match(/token=([^&]+)/);
  if (m) {
    sessionStorage.setItem("openclaw.webchat.token", decodeURIComponent(m[1]));
    history.replaceState(null, "", location.pathname);
  }
  return sessionStorage.getItem("openclaw.webchat.token");
}

function request(method, params) {
  const id = `${state.next++}:${crypto.randomUUID()}`;
  state.ws.send(JSON.stringify({ type: "req", id, method, params }));
  return new Promise((resolve, reject) => state.pending.set(id, { resolve, reject }));
}

function entry(role, text, extra) {
  const li = document.createElement("li");
  li.className = role + (extra ? " " + extra : "");
  li.textContent = text;
  $("log").appendChild(li);
  li.scrollIntoView({ block: "end" });
  return li;
}

function textOf(message) {
  if (!message) return "";
  if (typeof message.content === "string") return message.content;
  return (message.content || []).filter((p) => p.type === "text").map((p) => p.text).join("");
}

async function loadHistory() {
  $("log").textContent = "";
  $("session").textContent = state.session;
  const h = await request("chat.history", { sessionKey: state.session, limit: 200 });
  for (const m of h.messages) {
    if (m.role === "user") entry("user", textOf(m));
    else if (m.role === "assistant") entry("assistant", textOf(m), m.stopReason === "error" ? "error" : "");
  }
  const info = h.sessionInfo;
  if (info) $("session").textContent = `${state.session} · ${info.model || "no model"} · tokens ${info.totalTokens || 0}`;
}

async function loadSessions() {
  const list = await request("sessions.list", {});
  const ul = $("sessions");
  ul.textContent = "";
  const keys = list.sessions.map((s) => s.key);
  if (!keys.includes(state.session)) list.sessions.unshift({ key: state.session, updatedAt: null });
  for (const s of list.sessions) {
    const li = document.createElement("li");
    li.textContent = s.key;
    const small = document.createElement("small");
    small.textContent = s.updatedAt ? new Date(s.updatedAt).toLocaleString() : "new";
    li.appendChild(small);
    if (s.key === state.session) li.className = "current";
    li.addEventListener("click", async () => {
      state.session = s.key;
      await loadHistory();
      await loadSessions();
    });
    ul.appendChild(li);
  }
}

function onChat(p) {
  if (p.sessionKey !== state.session) return;
  if (p.state === "delta") {
    if (!state.streaming) state.streaming = entry("assistant", "", "streaming");
    state.streaming.textContent = textOf(p.message);
    setStatus("streaming…", "streaming");
    return;
  }
  if (!["final", "error", "aborted"].includes(p.state)) return;
  const li = state.streaming || entry("assistant", "");
  state.streaming = null;
  li.classList.remove("streaming");
  if (p.state === "final") {
    li.textContent = textOf(p.message);
    setStatus("idle", "idle");
  } else if (p.state === "aborted") {
    li.textContent = textOf(p.message);
    if (!li.textContent) li.remove();
    entry("system", "run aborted");
    setStatus("aborted", "idle");
  } else {
    li.remove();
    entry("assistant", `run error: ${p.errorMessage}`, "error");
    setStatus("error", "idle");
  }
  state.runId = null;
  $("abort").disabled = true;
  loadSessions().catch(() => {});
}

async function connect() {
  const tok = token();
  if (!tok) {
    $("login").hidden = false;
    setStatus("token needed", "login");
    return;
  }
  setStatus("connecting…", "connecting");
  const dev = await device();
  const ws = new WebSocket(`${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/`);
  state.ws = ws;
  ws.onmessage = async (ev) => {
    const f = JSON.parse(ev.data);
    if (f.type === "event" && f.event === "connect.challenge") {
      const scopes = ["operator.read", "operator.write"];
      const client = { id: "webchat-ui", version: "webchat", platform: navigator.platform || "web", mode: "webchat" };
      const signedAt = Date.now();
      const payload = ["v2", dev.id, client.id, client.mode, "operator", scopes.join(","), signedAt, tok, f.payload.nonce].join("|");
      const sig = await crypto.subtle.sign({ name: "Ed25519" }, dev.key, new TextEncoder().encode(payload));
      const params = {
        minProtocol: 4, maxProtocol: 4, client, role: "operator", scopes, caps: [],
        auth: { token: tok },
        device: { id: dev.id, publicKey: dev.publicKey, signature: b64url(sig), signedAt, nonce: f.payload.nonce },
      };
      request("connect", params).then(async () => {
        $("login").hidden = true;
        $("app").hidden = false;
        setStatus("connected", "connected");
        await request("sessions.subscribe", {});
        await loadHistory();
        await loadSessions();
        setStatus("idle", "idle");
      }, (e) => {
        sessionStorage.removeItem("openclaw.webchat.token");
        setStatus(`not connected: ${e.message}`, "refused");
      });
      return;
    }
    if (f.type === "res") {
      const p = state.pending.get(f.id);
      if (!p) return;
      state.pending.delete(f.id);
      if (f.ok) p.resolve(f.payload);
      else p.reject(new Error(f.error ? f.error.message : "request failed"));
      return;
    }
    if (f.type === "event" && f.event === "chat") onChat(f.payload);
  };
  ws.onclose = (ev) => {
    for (const p of state.pending.values()) p.reject(new Error(ev.reason || "connection closed"));
    state.pending.clear();
    if (document.body.dataset.state !== "refused") setStatus(`disconnected${ev.reason ? ": " + ev.reason : ""}`, "disconnected");
  };
}

async function send() {
  const text = $("input").value.trim();
  if (!text || state.runId) return;
  $("input").value = "";
  entry("user", text);
  const runId = crypto.randomUUID();
  state.runId = runId;
  $("abort").disabled = false;
  setStatus("sending…", "sending");
  try {
    await request("chat.send", { sessionKey: state.session, message: text, deliver: false, idempotencyKey: runId });
  } catch (e) {
    entry("assistant", `send failed: ${e.message}`, "error");
    state.runId = null;
    $("abort").disabled = true;
    setStatus("idle", "idle");
  }
}

document.addEventListener("DOMContentLoaded", () => {
  $("login").addEventListener("submit", (ev) => {
    ev.preventDefault();
    sessionStorage.setItem("openclaw.webchat.token", $("token").value);
    connect();
  });
  $("composer").addEventListener("submit", (ev) => { ev.preventDefault(); send(); });
  $("input").addEventListener("keydown", (ev) => {
    if (ev.key === "Enter" && !ev.shiftKey) { ev.preventDefault(); send(); }
  });
  $("abort").addEventListener("click", () => request("chat.abort", { sessionKey: state.session }).catch(() => {}));
  $("new").addEventListener("click", async () => {
    const created = await request("sessions.create", { key: `webchat-${crypto.randomUUID()}` });
    state.session = created.key;
    await loadHistory();
    await loadSessions();
  });
  // A link with #token=… opened on this page already.
  window.addEventListener("hashchange", () => {
    if (!state.ws && location.hash.includes("token=")) {
      connect().catch((e) => setStatus(`cannot start: ${e.message}`, "refused"));
    }
  });
  connect().catch((e) => setStatus(`cannot start: ${e.message}`, "refused"));
});
