// Parley's web client: plain JavaScript on the public protocol
// (docs/protocol.md), no build step, nothing loaded from elsewhere.
//
// Delivery follows the protocol's recipe: remember the highest seq seen per
// room, rejoin with since after every reconnect, and resend unacked
// messages with their original client_id, so that nothing is missed or
// shown twice. Text from the network only ever becomes DOM text (textContent
// or text nodes), never HTML.
"use strict";

const $ = (selector) => document.querySelector(selector);

const SESSION_KEY = "parley.session";
const TYPING_EVERY = 3000; // ms between our typing frames while the user types
const TYPING_SHOWN = 5000; // ms a typing indicator lasts without a new frame
const HISTORY_PAGE = 50;

const state = {
  session: null, // {token, expires_at, user: {id, username}}
  rooms: new Map(), // id -> {id, name}
  joined: new Map(), // id -> room state, see joinedRoom
  current: null, // the room on screen
  pending: [], // unacked sends: {clientId, room, body, failed}
  ws: null,
  attempt: 0, // reconnect attempts since the last good connection
  retryTimer: 0,
  expiryTimer: 0,
  lastTyping: 0,
};

function joinedRoom() {
  return {
    lastSeq: null, // highest seq received; null until the first joined
    oldestSeq: null, // lowest seq on screen, for loading older history
    hasMore: false,
    loadingOlder: false,
    messages: new Map(), // seq -> message
    members: new Map(), // user id -> username
    typing: new Map(), // user id -> {name, until}
  };
}

// ---- REST ----

class APIError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

async function api(method, path, body) {
  const headers = {};
  if (state.session) headers.Authorization = "Bearer " + state.session.token;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const res = await fetch("/api/v1" + path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const data = await res.json().catch(() => ({}));
  if (!res.ok) {
    const err = data.error || {};
    if (res.status === 401 && state.session) {
      expire("Your session has expired. Please log in again.");
    }
    throw new APIError(res.status, err.code || "", err.message || res.statusText);
  }
  return data;
}

// ---- session ----

function saveSession(s) {
  state.session = s;
  sessionStorage.setItem(SESSION_KEY, JSON.stringify(s));
}

function loadSession() {
  try {
    const s = JSON.parse(sessionStorage.getItem(SESSION_KEY) || "null");
    if (s && s.token && Date.parse(s.expires_at) > Date.now()) return s;
  } catch {
    // A damaged entry is as good as none.
  }
  sessionStorage.removeItem(SESSION_KEY);
  return null;
}

function startSession(s, message) {
  saveSession(s);
  $("#me").textContent = s.user.username;
  $("#auth").hidden = true;
  $("#app").hidden = false;
  clearTimeout(state.expiryTimer);
  state.expiryTimer = setTimeout(
    () => expire("Your session has expired. Please log in again."),
    Math.max(0, Date.parse(s.expires_at) - Date.now()),
  );
  if (message) showRoomsMessage(message);
  refreshRooms();
  connect();
}

function endSession(message) {
  state.session = null;
  sessionStorage.removeItem(SESSION_KEY);
  clearTimeout(state.retryTimer);
  clearTimeout(state.expiryTimer);
  if (state.ws) {
    const ws = state.ws;
    state.ws = null;
    ws.close(1000, "log out");
  }
  state.rooms.clear();
  state.joined.clear();
  state.pending = [];
  state.current = null;
  $("#rooms").replaceChildren();
  $("#messages").replaceChildren();
  $("#members").replaceChildren();
  $("#room-title").textContent = "Pick or create a room";
  setComposerEnabled(false);
  $("#app").hidden = true;
  $("#auth").hidden = false;
  $("#auth-message").textContent = message || "";
  $("#password").value = "";
  $("#username").focus();
}

function expire(message) {
  if (state.session) endSession(message);
}

async function onAuthSubmit(event) {
  event.preventDefault();
  const signup = event.submitter && event.submitter.value === "signup";
  const username = $("#username").value.trim();
  const password = $("#password").value;
  const msg = $("#auth-message");
  if (!/^[A-Za-z0-9_.-]{3,32}$/.test(username)) {
    msg.textContent = "A username has 3 to 32 letters, digits, dots, dashes or underscores.";
    return;
  }
  if (password.length < 8) {
    msg.textContent = "A password has at least 8 characters.";
    return;
  }
  msg.textContent = "";
  try {
    const s = await api("POST", signup ? "/users" : "/sessions", { username, password });
    startSession(s);
  } catch (err) {
    if (err.code === "conflict") msg.textContent = "That username is taken.";
    else if (err.code === "unauthorized") msg.textContent = "Wrong username or password.";
    else msg.textContent = err.message || "Could not reach the server.";
  }
}

// ---- rooms ----

function showRoomsMessage(text) {
  $("#rooms-message").textContent = text;
}

async function refreshRooms() {
  try {
    const { rooms } = await api("GET", "/rooms");
    for (const r of rooms) state.rooms.set(r.id, { id: r.id, name: r.name });
    renderRooms();
  } catch (err) {
    if (state.session) showRoomsMessage("Could not load the rooms: " + err.message);
  }
}

function renderRooms() {
  const items = [];
  for (const r of state.rooms.values()) {
    const li = document.createElement("li");
    const b = document.createElement("button");
    b.type = "button";
    b.textContent = r.name;
    b.dataset.room = r.id;
    if (r.id === state.current) b.setAttribute("aria-current", "true");
    b.addEventListener("click", () => openRoom(r.id));
    li.append(b);
    items.push(li);
  }
  $("#rooms").replaceChildren(...items);
}

async function onNewRoom(event) {
  event.preventDefault();
  const input = $("#room-name");
  const name = input.value.trim();
  if (!name) return;
  try {
    const { room } = await api("POST", "/rooms", { name });
    state.rooms.set(room.id, { id: room.id, name: room.name });
    input.value = "";
    showRoomsMessage("");
    openRoom(room.id);
  } catch (err) {
    showRoomsMessage(err.code === "conflict" ? "A room with that name exists." : err.message);
  }
}

function openRoom(id) {
  state.current = id;
  $("#room-title").textContent = state.rooms.get(id)?.name || "Room";
  if (!state.joined.has(id)) {
    state.joined.set(id, joinedRoom());
    sendJoin(id);
  }
  renderRooms();
  renderRoom(true);
  setComposerEnabled(true);
  $("#composer").focus();
}

function sendJoin(id) {
  const r = state.joined.get(id);
  const frame = { type: "join", room: id };
  if (r.lastSeq !== null) frame.since = r.lastSeq;
  sendFrame(frame);
}

// loadOlder reads the page of history before the oldest message on screen
// (or before the room's start, right after the first join).
async function loadOlder(id, beforeSeq) {
  const r = state.joined.get(id);
  if (!r || r.loadingOlder) return;
  r.loadingOlder = true;
  try {
    const q = new URLSearchParams({ before_seq: String(beforeSeq), limit: String(HISTORY_PAGE) });
    const page = await api("GET", `/rooms/${encodeURIComponent(id)}/messages?${q}`);
    if (state.joined.get(id) !== r) return; // logged out meanwhile
    for (const m of page.messages) addMessage(r, m);
    r.hasMore = page.has_more;
    if (id === state.current) renderRoom(false, true);
  } catch (err) {
    if (state.session) showRoomsMessage("Could not load older messages: " + err.message);
  } finally {
    r.loadingOlder = false;
  }
}

// ---- WebSocket ----

function setStatus(s) {
  const el = $("#status");
  el.dataset.state = s;
  el.textContent = { connected: "Connected", connecting: "Connecting…", reconnecting: "Reconnecting…", offline: "Offline" }[s];
}

async function connect() {
  if (!state.session || state.ws) return;
  clearTimeout(state.retryTimer);
  setStatus(state.attempt === 0 ? "connecting" : navigator.onLine ? "reconnecting" : "offline");
  let ticket;
  try {
    ({ ticket } = await api("POST", "/ws-tickets"));
  } catch (err) {
    if (state.session) scheduleReconnect();
    return;
  }
  if (!state.session || state.ws) return;
  const scheme = location.protocol === "https:" ? "wss://" : "ws://";
  const ws = new WebSocket(`${scheme}${location.host}/ws?ticket=${encodeURIComponent(ticket)}`);
  state.ws = ws;
  ws.addEventListener("open", () => {
    state.attempt = 0;
    setStatus("connected");
    // Rejoin with since, then resend what was never acked: the server
    // handles a connection's frames in order, so the joins come first.
    for (const id of state.joined.keys()) sendJoin(id);
    for (const p of state.pending) if (!p.failed) sendPending(p);
  });
  ws.addEventListener("message", (ev) => {
    let frame;
    try {
      frame = JSON.parse(ev.data);
    } catch {
      return;
    }
    handleFrame(frame);
  });
  ws.addEventListener("close", (ev) => {
    if (state.ws !== ws) return; // a socket we already let go of
    state.ws = null;
    if (ev.code === 1008) {
      expire("Your session has expired. Please log in again.");
      return;
    }
    if (state.session) scheduleReconnect();
  });
}

// scheduleReconnect waits an exponentially growing, jittered delay, so that
// clients of a restarted server do not all come back at once.
function scheduleReconnect() {
  setStatus(navigator.onLine ? "reconnecting" : "offline");
  const base = Math.min(15000, 500 * 2 ** state.attempt);
  const delay = base / 2 + Math.random() * (base / 2);
  state.attempt++;
  clearTimeout(state.retryTimer);
  state.retryTimer = setTimeout(connect, delay);
}

function sendFrame(frame) {
  if (state.ws && state.ws.readyState === WebSocket.OPEN) {
    state.ws.send(JSON.stringify(frame));
    return true;
  }
  return false;
}

function sendPending(p) {
  sendFrame({ type: "send", room: p.room, client_id: p.clientId, body: p.body });
}

function handleFrame(f) {
  const r = state.joined.get(f.room);
  switch (f.type) {
    case "joined":
      if (!r) return;
      r.members = new Map((f.members || []).map((m) => [m.id, m.username]));
      if (r.lastSeq === null) {
        // First join: live messages start after last_seq; history up to it
        // comes over REST.
        r.lastSeq = f.last_seq;
        loadOlder(f.room, f.last_seq + 1);
      }
      if (f.room === state.current) renderRoom();
      break;
    case "message":
      if (!r) return;
      addMessage(r, f);
      settle(f.client_id, f.user && f.user.id);
      if (f.room === state.current) renderRoom();
      break;
    case "ack":
      settle(f.client_id, state.session && state.session.user.id);
      if (f.room === state.current) renderRoom();
      break;
    case "presence":
      if (!r) return;
      if (f.status === "online") r.members.set(f.user.id, f.user.username);
      else r.members.delete(f.user.id);
      if (f.room === state.current) renderMembers();
      break;
    case "typing":
      if (!r) return;
      r.typing.set(f.user.id, { name: f.user.username, until: Date.now() + TYPING_SHOWN });
      if (f.room === state.current) renderTyping();
      setTimeout(renderTyping, TYPING_SHOWN + 50);
      break;
    case "error":
      onErrorFrame(f);
      break;
  }
}

function addMessage(r, m) {
  if (r.messages.has(m.seq)) return; // a replay overlapping history
  r.messages.set(m.seq, m);
  if (r.lastSeq === null || m.seq > r.lastSeq) r.lastSeq = m.seq;
  if (r.oldestSeq === null || m.seq < r.oldestSeq) r.oldestSeq = m.seq;
}

// settle forgets a pending send once the server has it.
function settle(clientId, userId) {
  if (!clientId || !state.session || userId !== state.session.user.id) return;
  state.pending = state.pending.filter((p) => p.clientId !== clientId);
}

function onErrorFrame(f) {
  const p = state.pending.find((x) => x.clientId === f.ref);
  if (!p) {
    if (f.code !== "conflict") showRoomsMessage(f.message || f.code);
    return;
  }
  if (f.code === "unavailable" || f.code === "rate_limited") {
    setTimeout(() => sendPending(p), 1000 + Math.random() * 1000); // same client_id: safe to repeat
    return;
  }
  p.failed = f.message || f.code;
  if (p.room === state.current) renderRoom();
}

// ---- composing ----

function newClientID() {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

function onSend(event) {
  event.preventDefault();
  const box = $("#composer");
  const body = box.value.trim();
  if (!body || !state.current) return;
  const p = { clientId: newClientID(), room: state.current, body, failed: null };
  state.pending.push(p);
  box.value = "";
  sendPending(p); // when offline, the reconnect sends it
  renderRoom(true);
}

function onComposerKey(event) {
  if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
    event.preventDefault();
    $("#composer-form").requestSubmit();
  }
}

function onComposerInput() {
  const now = Date.now();
  if (state.current && now - state.lastTyping > TYPING_EVERY && sendFrame({ type: "typing", room: state.current })) {
    state.lastTyping = now;
  }
}

function setComposerEnabled(on) {
  $("#composer").disabled = !on;
  $("#send").disabled = !on;
}

// ---- rendering ----

const timeFormat = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit" });

// textWithLinks turns text into text nodes, with http(s) URLs as links that
// open only when clicked, in a new tab that cannot reach back to this one.
function textWithLinks(text) {
  const out = [];
  for (const part of text.split(/(https?:\/\/[^\s<>"']+)/)) {
    if (!part) continue;
    if (/^https?:\/\//.test(part)) {
      const a = document.createElement("a");
      a.href = part;
      a.textContent = part;
      a.target = "_blank";
      a.rel = "noopener noreferrer nofollow";
      out.push(a);
    } else {
      out.push(document.createTextNode(part));
    }
  }
  return out;
}

function messageItem(username, ts, body, extraClass) {
  const li = document.createElement("li");
  li.className = "message" + (extraClass ? " " + extraClass : "");
  const meta = document.createElement("div");
  meta.className = "meta";
  const who = document.createElement("span");
  who.className = "user";
  who.textContent = username;
  const when = document.createElement("time");
  if (ts) {
    when.dateTime = ts;
    when.textContent = timeFormat.format(new Date(ts));
  }
  meta.append(who, when);
  const p = document.createElement("p");
  p.className = "body";
  p.append(...textWithLinks(body));
  li.append(meta, p);
  return li;
}

// renderRoom redraws the current room. toBottom scrolls to the newest
// message; keepOffset keeps the view where it was when older messages
// were added above it. Otherwise the view follows new messages only when
// it was already at the bottom.
function renderRoom(toBottom = false, keepOffset = false) {
  const list = $("#messages");
  const r = state.joined.get(state.current);
  if (!r) return;
  const atBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 40;
  const fromBottom = list.scrollHeight - list.scrollTop;
  const items = [];
  if (r.hasMore) {
    const note = document.createElement("li");
    note.className = "history-note";
    note.textContent = "Scroll up for older messages";
    items.push(note);
  }
  const seqs = [...r.messages.keys()].sort((a, b) => a - b);
  for (const seq of seqs) {
    const m = r.messages.get(seq);
    const li = messageItem(m.user.username, m.ts, m.body);
    li.dataset.seq = String(seq);
    items.push(li);
  }
  for (const p of state.pending) {
    if (p.room !== state.current) continue;
    const li = messageItem(state.session.user.username, "", p.body, p.failed ? "failed" : "pending");
    if (p.failed) li.title = p.failed;
    items.push(li);
  }
  list.replaceChildren(...items);
  if (keepOffset) list.scrollTop = list.scrollHeight - fromBottom;
  else if (toBottom || atBottom) list.scrollTop = list.scrollHeight;
  renderMembers();
  renderTyping();
}

function renderMembers() {
  const r = state.joined.get(state.current);
  if (!r) return;
  const names = [...r.members.values()].sort((a, b) => a.localeCompare(b));
  $("#members").replaceChildren(
    ...names.map((n) => {
      const li = document.createElement("li");
      li.textContent = n;
      return li;
    }),
  );
}

function renderTyping() {
  const r = state.joined.get(state.current);
  const el = $("#typing");
  if (!r) {
    el.textContent = "";
    return;
  }
  const now = Date.now();
  const names = [];
  for (const [id, t] of r.typing) {
    if (t.until < now) r.typing.delete(id);
    else names.push(t.name);
  }
  el.textContent = names.length === 0 ? "" : names.join(", ") + (names.length === 1 ? " is typing…" : " are typing…");
}

function onMessagesScroll() {
  const r = state.joined.get(state.current);
  if (r && r.hasMore && $("#messages").scrollTop < 40 && r.oldestSeq !== null) {
    loadOlder(state.current, r.oldestSeq);
  }
}

// ---- start ----

document.addEventListener("DOMContentLoaded", () => {
  $("#auth-form").addEventListener("submit", onAuthSubmit);
  $("#logout").addEventListener("click", () => endSession("You are logged out."));
  $("#new-room").addEventListener("submit", onNewRoom);
  $("#composer-form").addEventListener("submit", onSend);
  $("#composer").addEventListener("keydown", onComposerKey);
  $("#composer").addEventListener("input", onComposerInput);
  $("#messages").addEventListener("scroll", onMessagesScroll);
  window.addEventListener("online", () => {
    if (state.session && !state.ws) connect();
  });
  window.addEventListener("offline", () => {
    if (!state.ws) setStatus("offline");
  });
  const s = loadSession();
  if (s) startSession(s);
  else endSession("");
});
