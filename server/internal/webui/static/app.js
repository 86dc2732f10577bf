// Parley's web client: plain JavaScript on the public protocol
// (docs/protocol.md), no build step, nothing loaded from elsewhere.
//
// Delivery follows the protocol's recipe: remember the highest seq seen per
// room, rejoin with since after every reconnect, and resend unacked
// messages with their original client_id, so that nothing is missed or
// shown twice. Text from the network only ever becomes DOM text (textContent
// or text nodes), never HTML.
//
// The page loads, in order: outbox.js (the pace of the frames sent),
// joins.js (which rooms are live; refused joins tried again), account.js
// (the account panel), and this file, which holds the rest and starts it
// all. They share one global scope, as classic scripts do.
"use strict";

const $ = (selector) => document.querySelector(selector);

const SESSION_KEY = "parley.session";
const TYPING_EVERY = 3000; // ms between our typing frames while the user types
const TYPING_SHOWN = 5000; // ms a typing indicator lasts without a new frame
const HISTORY_PAGE = 50;
const ROOM_PAGE = 100; // rooms per page of the room list
const ROOM_PAGES = 100; // the list stops at 10,000 rooms: a longer one helps nobody
const ROOMS_EVERY = 5 * 60000; // ms between refreshes of the room list while the page is shown

const state = {
  session: null, // {token, expires_at, user: {id, username}}
  rooms: new Map(), // id -> {id, name}
  joined: new Map(), // id -> room state, see joinedRoom
  current: null, // the room on screen
  pending: [], // unacked sends: {clientId, room, body, failed}
  ws: null,
  outbox: null, // paces the frames of the open socket (outbox.js)
  joinsInFlight: [], // rooms whose join was sent on this socket and not yet answered, oldest first
  connTimers: new Set(), // join retries of this socket, cleared when it closes
  attempt: 0, // reconnect attempts since the last good connection
  retryTimer: 0,
  expiryTimer: 0,
  healthyTimer: 0,
  roomsTimer: 0,
  roomsFetchedAt: 0, // when the room list was last read in full
  roomsLoading: null, // the read under way, if any
  timers: new Set(), // resend timers of refused sends, cleared with the session
  lastTyping: 0,
  gen: 0, // bumped by every log-in and log-out: async work of an older session stops
};

// A room the user opened. link says whether the room is live on this
// socket: "live" only once the server answered its join with joined;
// "joining" while the join waits to be sent or answered; "offline" while
// there is no socket; "retrying" after a refusal, until the next try;
// "failed" after JOIN_TRIES refusals, until the user retries.
function joinedRoom() {
  return {
    link: "offline",
    failures: 0, // refusals in a row
    problem: "", // why the last join was refused, for people
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
  constructor(status, code, message, retryAfter) {
    super(message);
    this.status = status;
    this.code = code;
    this.retryAfter = retryAfter; // seconds to wait, on a 429
  }
}

// api calls the REST API. A 401 ends the session, unless the caller
// handles it (keep401: logging out).
async function api(method, path, body, { timeout = 15000, keep401 = false } = {}) {
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
    signal: AbortSignal.timeout(timeout),
  });
  const data = await res.json().catch(() => ({}));
  if (!res.ok) {
    const err = data.error || {};
    if (res.status === 401 && !keep401 && state.session && gen === state.gen) {
      expire(sessionEndedMessage());
    }
    if (res.status === 429) {
      const wait = waitOf(res, err);
      throw new APIError(429, err.code || "rate_limited", `Too many requests: try again in ${formatWait(wait)}.`, wait);
    }
    throw new APIError(res.status, err.code || "", err.message || res.statusText);
  }
  return data;
}

// waitOf reads how long a 429 asks the client to wait, in seconds: the
// envelope's retry_after if there is one, else the Retry-After header
// (whole seconds), else 1 s.
function waitOf(res, err) {
  if (typeof err.retry_after === "number" && err.retry_after > 0) return err.retry_after;
  const header = Number(res.headers.get("Retry-After"));
  return Number.isFinite(header) && header > 0 ? header : 1;
}

function formatWait(seconds) {
  const s = Math.max(1, Math.ceil(seconds));
  if (s < 120) return s === 1 ? "1 second" : `${s} seconds`;
  return `${Math.ceil(s / 60)} minutes`;
}

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
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
  // The list is read in full at the start, after every reconnect, when
  // the person asks, and otherwise only every few minutes while the page
  // is shown: a long list costs the server, and new rooms are rare.
  state.roomsTimer = setInterval(() => {
    if (!document.hidden) refreshRooms();
  }, ROOMS_EVERY);
  connect();
}

// armExpiry logs out when the token expires. Timers cannot wait longer
// than 2^31-1 ms (about 24.8 days), so a long-lived token re-arms.
function armExpiry() {
  clearTimeout(state.expiryTimer);
  const left = Date.parse(state.session.expires_at) - Date.now();
  if (left <= 0) {
    expire(EXPIRED);
    return;
  }
  state.expiryTimer = setTimeout(armExpiry, Math.min(left, 2 ** 31 - 1));
}

const EXPIRED = "Your session has expired. Please log in again.";

// The reasons of a 1008 close (docs/protocol.md, "Close codes") in words.
const SESSION_CLOSES = {
  "token expired": EXPIRED,
  "session ended": "Your session has ended: you logged out elsewhere, or the password was changed. Please log in again.",
  "account deleted": "Your account has been deleted.",
};

// sessionEndedMessage says why the server no longer takes the token, as
// far as the client can tell.
function sessionEndedMessage() {
  if (state.session && Date.parse(state.session.expires_at) <= Date.now()) return EXPIRED;
  return "Your session has ended. Please log in again.";
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
  dropConnectionState();
  state.roomsFetchedAt = 0;
  state.roomsLoading = null; // a read of the last session's list is not this one's
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
  $("#room-notice").hidden = true;
  if ($("#account").open) $("#account").close();
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

// logOut ends the session on the server first, so that the token stops
// working everywhere, then forgets it here. A server that cannot be
// reached does not keep the person logged in on this screen.
async function logOut() {
  if (!state.session) return;
  const button = $("#logout");
  button.disabled = true;
  let message = "You are logged out.";
  try {
    await api("DELETE", "/sessions/current", undefined, { timeout: 5000, keep401: true });
  } catch (err) {
    // 401: the session had ended already. 404 or 405: a server without
    // sessions, whose tokens only expire.
    if (![401, 404, 405].includes(err.status)) {
      message = "You are logged out on this device, but the server could not be told: the session ends when it expires.";
    }
  } finally {
    button.disabled = false;
  }
  expire(message);
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
    else if (err.status === 429) msg.textContent = `Too many attempts. Try again in ${formatWait(err.retryAfter)}.`;
    else msg.textContent = err.message || "Could not reach the server.";
  }
}

// ---- rooms ----

function showRoomsMessage(text) {
  $("#rooms-message").textContent = text;
}

// refreshRooms reads the room list in full and shows it. One read at a
// time: a call while one is under way waits for that one.
function refreshRooms() {
  if (state.roomsLoading) return state.roomsLoading;
  const gen = state.gen;
  const loading = (async () => {
    try {
      const { rooms, complete } = await readRoomList();
      if (gen !== state.gen) return;
      const listed = new Map(rooms.map((r) => [r.id, { id: r.id, name: r.name }]));
      if (complete) {
        // A room that went away stays listed while it is open, shown as
        // not joined, rather than vanishing under the person's eyes.
        for (const [id, r] of state.rooms) if (!listed.has(id) && state.joined.has(id)) listed.set(id, r);
        state.rooms = listed;
      } else {
        for (const [id, r] of listed) state.rooms.set(id, r);
        showRoomsMessage(`Showing the first ${rooms.length} rooms.`);
      }
      state.roomsFetchedAt = Date.now();
      renderRooms();
    } catch (err) {
      if (gen === state.gen && state.session) showRoomsMessage("Could not load the rooms: " + err.message);
    }
  })();
  state.roomsLoading = loading;
  loading.finally(() => {
    if (state.roomsLoading === loading) state.roomsLoading = null;
  });
  return loading;
}

// readRoomList reads the list a page at a time (limit and after, an
// extension). A server without pages ignores both and answers the first
// call with every room and no next, which ends the loop as well.
async function readRoomList() {
  const rooms = [];
  let after = "";
  for (let page = 0; page < ROOM_PAGES; page++) {
    const q = new URLSearchParams({ limit: String(ROOM_PAGE) });
    if (after) q.set("after", after);
    const data = await withRetries(() => api("GET", "/rooms?" + q));
    rooms.push(...data.rooms);
    if (!data.next || data.next === after) return { rooms, complete: true };
    after = data.next;
  }
  return { rooms, complete: false };
}

// withRetries makes a read again after the wait a 429 asks for, a few
// times, before giving up.
async function withRetries(call, tries = 3) {
  for (let i = 1; ; i++) {
    try {
      return await call();
    } catch (err) {
      if (err.status !== 429 || i >= tries) throw err;
      await sleep(err.retryAfter * 1000);
    }
  }
}

function renderRooms() {
  const focused = document.activeElement?.dataset?.room;
  const items = [];
  for (const r of state.rooms.values()) {
    const li = document.createElement("li");
    const b = document.createElement("button");
    b.type = "button";
    b.textContent = r.name;
    b.dataset.room = r.id;
    if (r.id === state.current) b.setAttribute("aria-current", "true");
    b.addEventListener("click", () => openRoom(r.id));
    const note = document.createElement("span");
    note.className = "room-state";
    note.id = "room-state-" + r.id;
    b.setAttribute("aria-describedby", note.id);
    li.append(b, note);
    items.push(li);
    paintRoomState(b, note, state.joined.get(r.id));
  }
  $("#rooms").replaceChildren(...items);
  if (focused) roomButton(focused)?.focus(); // a refresh does not move the keyboard's place
}

async function onNewRoom(event) {
  event.preventDefault();
  const input = $("#room-name");
  const name = input.value.trim();
  if (!name) return;
  try {
    const { room } = await api("POST", "/rooms", { name });
    state.rooms.set(room.id, { id: room.id, name: room.name });
    renderRooms();
    input.value = "";
    showRoomsMessage("");
    openRoom(room.id);
  } catch (err) {
    if (err.code === "conflict") showRoomsMessage("A room with that name exists.");
    else if (err.status === 429) showRoomsMessage(`You are creating rooms too fast. Try again in ${formatWait(err.retryAfter)}.`);
    else showRoomsMessage(err.message);
  }
}

function openRoom(id) {
  state.current = id;
  $("#room-title").textContent = state.rooms.get(id)?.name || "Room";
  if (!state.joined.has(id)) {
    state.joined.set(id, joinedRoom());
    queueJoin(id);
  }
  $("#rooms [aria-current]")?.removeAttribute("aria-current");
  roomButton(id)?.setAttribute("aria-current", "true");
  renderRoom();
  setComposerEnabled(true);
  $("#composer").focus();
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
    if (err.status === 429 && !r.historyLoaded) {
      // The first page is not behind a scroll: fetch it again when allowed.
      const gen = state.gen;
      const t = setTimeout(() => {
        state.timers.delete(t);
        if (gen === state.gen) loadOlder(id, beforeSeq);
      }, err.retryAfter * 1000);
      state.timers.add(t);
    }
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
    // Rooms made while the connection was down, unless the list is fresh
    // (a flapping connection does not reread it each time).
    if (Date.now() - state.roomsFetchedAt > 60000) refreshRooms();
    state.outbox = new Outbox(sendFrame);
    state.joinsInFlight = [];
    // Rejoin with since, the room on screen first, then resend what was
    // never acked: the server handles a connection's frames in order, so
    // the joins come first. The outbox paces them all.
    const ids = [...state.joined.keys()].sort((a, b) => (b === state.current) - (a === state.current));
    for (const id of ids) {
      state.joined.get(id).failures = 0;
      queueJoin(id);
    }
    for (const p of state.pending) if (!p.failed) queueSend(p);
  });
  ws.addEventListener("message", (ev) => {
    if (state.ws !== ws) return; // a socket we already let go of
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
    dropConnectionState();
    if (ev.code === 4029 || ev.code === 4008) state.attempt = Math.max(state.attempt, 4); // told to slow down
    if (ev.code === 1008) {
      // The session ended: expired, logged out elsewhere, or the account
      // was deleted. Only logging in again helps.
      expire(SESSION_CLOSES[ev.reason] || sessionEndedMessage());
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

// dropConnectionState forgets what belonged to a socket that is gone:
// its pace, its joins in flight and their retries. No room is live
// without a socket; failed ones stay failed until the next one.
function dropConnectionState() {
  state.outbox?.close();
  state.outbox = null;
  state.joinsInFlight = [];
  for (const t of state.connTimers) clearTimeout(t);
  state.connTimers.clear();
  for (const [id, r] of state.joined) if (r.link !== "failed") setLink(id, "offline");
}

// queueSend sends a message not yet acked, when the outbox allows; with
// no socket, the next one sends it.
function queueSend(p) {
  state.outbox?.push(() =>
    state.pending.includes(p) && !p.failed ? { type: "send", room: p.room, client_id: p.clientId, body: p.body } : null,
  );
}

function handleFrame(f) {
  const r = state.joined.get(f.room);
  switch (f.type) {
    case "joined": {
      const i = state.joinsInFlight.indexOf(f.room);
      if (i >= 0) state.joinsInFlight.splice(i, 1);
      if (!r) return;
      r.failures = 0;
      r.problem = "";
      setLink(f.room, "live"); // the only way a room becomes live
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
    }
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

// onErrorFrame handles a refused frame, found by its ref: a join (the
// oldest in flight), a message (its client_id), or anything else.
function onErrorFrame(f) {
  if (f.code === "rate_limited") state.outbox?.refused(f.retry_after);
  if (f.ref === "join") {
    onJoinRefused(state.joinsInFlight.shift(), f);
    return;
  }
  const p = state.pending.find((x) => x.clientId === f.ref);
  if (!p) {
    // A refused typing frame is not worth a word.
    if (f.code !== "conflict" && f.code !== "rate_limited" && f.ref !== "typing") showRoomsMessage(f.message || f.code);
    return;
  }
  if (f.code === "unavailable" || f.code === "rate_limited") {
    const gen = state.gen;
    const wait = f.code === "rate_limited" ? retryWait(f) : 1000 + Math.random() * 1000;
    const t = setTimeout(() => {
      state.timers.delete(t);
      if (gen === state.gen && state.pending.includes(p)) queueSend(p); // same client_id: safe to repeat
    }, wait);
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
  queueSend(p); // when offline, the reconnect sends it
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

// onComposerInput tells the room the user is typing, if the room is
// live and the outbox has room to spare: typing is never worth a wait.
function onComposerInput() {
  const now = Date.now();
  const live = state.joined.get(state.current)?.link === "live";
  if (live && now - state.lastTyping > TYPING_EVERY && state.outbox?.offer({ type: "typing", room: state.current })) {
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

// messageNode shows a confirmed message. The author of one whose account
// was deleted is not named: the name may be taken by nobody else, but the
// person is gone.
function messageNode(m) {
  const gone = m.user.deleted === true;
  const li = messageItem(gone ? "deleted account" : m.user.username, m.ts, m.body, gone ? "from-deleted" : "");
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
      queueSend(p);
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
  renderRoomNotice();
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
  $("#logout").addEventListener("click", logOut);
  $("#account-open").addEventListener("click", openAccount);
  $("#account-close").addEventListener("click", () => $("#account").close());
  $("#password-form").addEventListener("submit", onChangePassword);
  $("#delete-form").addEventListener("submit", onDeleteAccount);
  $("#refresh-rooms").addEventListener("click", refreshRooms);
  $("#room-retry").addEventListener("click", retryJoin);
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
  document.addEventListener("visibilitychange", () => {
    if (state.session && !document.hidden && Date.now() - state.roomsFetchedAt > ROOMS_EVERY) refreshRooms();
  });
  const s = loadSession();
  if (s) startSession(s);
  else endSession("");
});
