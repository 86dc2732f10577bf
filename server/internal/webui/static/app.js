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
  healthyTimer: 0,
  roomsTimer: 0,
  timers: new Set(), // resend timers of refused sends, cleared with the session
  lastTyping: 0,
  gen: 0, // bumped by every log-in and log-out: async work of an older session stops
};

function joinedRoom() {
  return {
    lastSeq: null, // highest seq received; null until the first joined
    oldestSeq: null, // lowest seq on screen, for loading older history
    hasMore: false,
    historyFrom: null, // before_seq of the first history page: last_seq + 1 of the first joined
    historyLoaded: false,
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
  const gen = state.gen;
  const headers = {};
  if (state.session) headers.Authorization = "Bearer " + state.session.token;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  // A server that silently drops traffic must not leave the client
  // waiting for minutes: give up after 15 s, as after any failure.
  const res = await fetch("/api/v1" + path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(15000),
  });
  const data = await res.json().catch(() => ({}));
  if (!res.ok) {
    const err = data.error || {};
    if (res.status === 401 && state.session && gen === state.gen) {
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
  state.gen++;
  armExpiry();
  if (message) showRoomsMessage(message);
  refreshRooms();
  state.roomsTimer = setInterval(refreshRooms, 30000);
  connect();
}

// armExpiry logs out when the token expires. Timers cannot wait longer
// than 2^31-1 ms (about 24.8 days), so a long-lived token re-arms.
function armExpiry() {
  clearTimeout(state.expiryTimer);
  const left = Date.parse(state.session.expires_at) - Date.now();
  if (left <= 0) {
    expire("Your session has expired. Please log in again.");
    return;
  }
  state.expiryTimer = setTimeout(armExpiry, Math.min(left, 2 ** 31 - 1));
}

function endSession(message) {
  state.session = null;
  state.gen++;
  sessionStorage.removeItem(SESSION_KEY);
  clearTimeout(state.retryTimer);
  clearTimeout(state.expiryTimer);
  clearTimeout(state.healthyTimer);
  clearInterval(state.roomsTimer);
  for (const t of state.timers) clearTimeout(t);
  state.timers.clear();
  state.attempt = 0;
  state.lastTyping = 0;
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
  $("#typing").textContent = "";
  $("#rooms-message").textContent = "";
  $("#composer").value = ""; // a draft is not left for the next person at this screen
  $("#room-name").value = "";
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
  renderRoom();
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
    const list = $("#messages");
    const fromBottom = list.scrollHeight - list.scrollTop;
    for (const m of page.messages) {
      if (addMessage(r, m) && id === state.current) insertNode(m);
    }
    r.hasMore = page.has_more;
    r.historyLoaded = true;
    if (id === state.current) {
      updateHistoryNote(r);
      list.scrollTop = list.scrollHeight - fromBottom; // the view stays where it was
    }
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
  const gen = state.gen;
  clearTimeout(state.retryTimer);
  setStatus(state.attempt === 0 ? "connecting" : navigator.onLine ? "reconnecting" : "offline");
  let ticket;
  try {
    ({ ticket } = await api("POST", "/ws-tickets"));
  } catch (err) {
    if (state.session) scheduleReconnect();
    return;
  }
  if (gen !== state.gen || !state.session || state.ws) return; // logged out, or another connect won
  const scheme = location.protocol === "https:" ? "wss://" : "ws://";
  const ws = new WebSocket(`${scheme}${location.host}/ws?ticket=${encodeURIComponent(ticket)}`);
  state.ws = ws;
  // Likewise for the handshake; closing it runs the close handler, which
  // schedules the next try.
  const handshake = setTimeout(() => ws.readyState === WebSocket.CONNECTING && ws.close(), 15000);
  ws.addEventListener("open", () => {
    clearTimeout(handshake);
    setStatus("connected");
    // The backoff starts again only after the connection has lasted: a
    // server that accepts and then closes must not be hammered.
    state.healthyTimer = setTimeout(() => (state.attempt = 0), 10000);
    refreshRooms();
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
    clearTimeout(state.healthyTimer);
    if (ev.code === 4029 || ev.code === 4008) state.attempt = Math.max(state.attempt, 4); // told to slow down
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
      if (r.historyFrom === null) {
        // First join: live messages start after last_seq; history up to it
        // comes over REST.
        r.historyFrom = f.last_seq + 1;
        if (r.lastSeq === null) r.lastSeq = f.last_seq;
      }
      if (!r.historyLoaded) loadOlder(f.room, r.historyFrom); // again after a failed first try
      if (f.room === state.current) renderMembers();
      break;
    case "message":
      if (!r) return;
      settle(f.client_id, f.user && f.user.id);
      r.typing.delete(f.user.id); // they finished typing this one
      if (addMessage(r, f) && f.room === state.current) {
        insertNode(f);
        renderTyping();
      }
      break;
    case "ack":
      // The pending line stays until the message itself arrives in its
      // place; the ack only stops resending.
      settle(f.client_id, state.session && state.session.user.id);
      break;
    case "presence":
      if (!r) return;
      if (f.status === "online") r.members.set(f.user.id, f.user.username);
      else {
        r.members.delete(f.user.id);
        r.typing.delete(f.user.id);
      }
      if (f.room === state.current) {
        renderMembers();
        renderTyping();
      }
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

// addMessage records a message once, and reports whether it was new.
function addMessage(r, m) {
  if (r.messages.has(m.seq)) return false; // a replay overlapping history
  r.messages.set(m.seq, m);
  if (r.lastSeq === null || m.seq > r.lastSeq) r.lastSeq = m.seq;
  if (r.oldestSeq === null || m.seq < r.oldestSeq) r.oldestSeq = m.seq;
  return true;
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
    const gen = state.gen;
    const t = setTimeout(() => {
      state.timers.delete(t);
      if (gen === state.gen && state.pending.includes(p)) sendPending(p); // same client_id: safe to repeat
    }, 1000 + Math.random() * 1000);
    state.timers.add(t);
    return;
  }
  p.failed = f.message || f.code;
  const node = pendingNodeOf(p.clientId);
  if (node) node.replaceWith(pendingNode(p));
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
  const list = $("#messages");
  list.append(pendingNode(p));
  list.scrollTop = list.scrollHeight;
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

function messageNode(m) {
  const li = messageItem(m.user.username, m.ts, m.body);
  li.dataset.seq = String(m.seq);
  return li;
}

function pendingNodeOf(clientId) {
  for (const el of $("#messages").children) if (el.dataset.clientId === clientId) return el;
  return null;
}

// pendingNode shows a message not yet confirmed; a refused one says why,
// in words, with a way to retry or drop it.
function pendingNode(p) {
  const li = messageItem(state.session.user.username, "", p.body, p.failed ? "failed" : "pending");
  li.dataset.clientId = p.clientId;
  if (p.failed) {
    const why = document.createElement("p");
    why.className = "failure";
    why.textContent = "Not sent: " + p.failed + " ";
    const retry = document.createElement("button");
    retry.type = "button";
    retry.className = "secondary";
    retry.textContent = "Retry";
    retry.addEventListener("click", () => {
      p.failed = null;
      li.replaceWith(pendingNode(p));
      sendPending(p);
    });
    const drop = document.createElement("button");
    drop.type = "button";
    drop.className = "secondary";
    drop.textContent = "Discard";
    drop.addEventListener("click", () => {
      state.pending = state.pending.filter((x) => x !== p);
      li.remove();
    });
    why.append(retry, " ", drop);
    li.append(why);
  }
  return li;
}

// insertNode puts a confirmed message of the current room in seq order,
// in place of its pending line if it was ours. Only the new node enters
// the list, so a screen reader announces only it, and focus and selection
// elsewhere in the list stay.
function insertNode(m) {
  const list = $("#messages");
  const follow = list.scrollHeight - list.scrollTop - list.clientHeight < 40;
  if (m.client_id && state.session && m.user.id === state.session.user.id) pendingNodeOf(m.client_id)?.remove();
  let before = null;
  for (const el of list.children) {
    if (el.dataset.clientId || (el.dataset.seq && Number(el.dataset.seq) > m.seq)) {
      before = el;
      break;
    }
  }
  list.insertBefore(messageNode(m), before);
  if (follow) list.scrollTop = list.scrollHeight;
}

function updateHistoryNote(r) {
  const list = $("#messages");
  let note = list.querySelector(".history-note");
  if (!r.hasMore) {
    note?.remove();
    return;
  }
  if (!note) {
    note = document.createElement("li");
    note.className = "history-note";
    note.textContent = "Scroll up for older messages";
    list.prepend(note);
  }
}

// renderRoom draws the current room from scratch, when it is opened.
function renderRoom() {
  const list = $("#messages");
  const r = state.joined.get(state.current);
  if (!r) return;
  const seqs = [...r.messages.keys()].sort((a, b) => a - b);
  list.replaceChildren(
    ...seqs.map((seq) => messageNode(r.messages.get(seq))),
    ...state.pending.filter((p) => p.room === state.current).map(pendingNode),
  );
  updateHistoryNote(r);
  list.scrollTop = list.scrollHeight;
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
