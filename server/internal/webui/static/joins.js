// Which open rooms are live, and how a refused join is tried again. Part
// of app.js's client: it uses its state, and the socket's outbox
// (outbox.js).
//
// A room is live only once the server has answered its join with joined,
// on the socket open now. The server answers a socket's frames in order,
// and answers a join either with joined (naming the room) or with an error
// frame whose ref is just "join": so the joins in flight are kept oldest
// first, and an error refers to the oldest.
"use strict";

const JOIN_TRIES = 3; // refused joins in a row (other than rate_limited) before a room is shown as failed

// The state of an open room in the list, in words; a live room needs none.
const LINK_WORDS = {
  live: "",
  joining: "joining…",
  offline: "not connected",
  retrying: "not connected, retrying",
  failed: "could not join",
};

function roomButton(id) {
  return document.querySelector(`#rooms button[data-room="${CSS.escape(id)}"]`);
}

function paintRoomState(button, note, r) {
  if (r) button.dataset.state = r.link;
  else delete button.dataset.state;
  note.textContent = r ? LINK_WORDS[r.link] : "";
}

// setLink records how an open room stands and shows it, in the list and,
// for the room on screen, above its messages.
function setLink(id, link) {
  const r = state.joined.get(id);
  if (!r) return;
  r.link = link;
  if (link !== "live") {
    // Who is here and typing is known only while joined.
    r.members.clear();
    r.typing.clear();
  }
  const b = roomButton(id);
  if (b) paintRoomState(b, b.nextElementSibling, r);
  if (id === state.current) {
    renderRoomNotice();
    renderMembers();
    renderTyping();
  }
}

function renderRoomNotice() {
  const box = $("#room-notice");
  const r = state.joined.get(state.current);
  if (!r || r.link === "live") {
    box.hidden = true;
    return;
  }
  box.hidden = false;
  box.dataset.state = r.link;
  $("#room-notice-text").textContent = {
    joining: "Joining this room…",
    offline: "Not connected: new messages here are not shown until the connection is back.",
    retrying: `Not connected to this room (${r.problem}); retrying…`,
    failed: `Could not join this room: ${r.problem}. New messages here are not shown.`,
  }[r.link];
  $("#room-retry").hidden = r.link !== "failed";
}

// retryJoin is the person asking to try a failed room again.
function retryJoin() {
  const id = state.current;
  const r = state.joined.get(id);
  if (!r || r.link !== "failed") return;
  r.failures = 0;
  if (state.outbox) queueJoin(id);
  else setLink(id, "offline"); // joined when the connection is back
}

// queueJoin joins a room on the open socket, at the outbox's pace; with
// no socket the room waits for the next one. The join is built when its
// turn comes, with since from the messages received by then, and is
// recorded as in flight then.
function queueJoin(id) {
  const r = state.joined.get(id);
  if (!r || r.link === "joining" || r.link === "live") return;
  const outbox = state.outbox;
  if (!outbox) {
    setLink(id, "offline");
    return;
  }
  setLink(id, "joining");
  outbox.push(() => {
    if (state.outbox !== outbox || state.joined.get(id) !== r || r.link !== "joining") return null;
    state.joinsInFlight.push(id);
    const frame = { type: "join", room: id };
    if (r.lastSeq !== null) frame.since = r.lastSeq;
    return frame;
  });
}

// Refusals of a join that may pass on a later try: the store was away,
// or a room that is not found yet (created on another replica a moment
// ago) may be found.
const RETRYABLE = new Set(["not_found", "unavailable", "internal"]);

// onJoinRefused tries a refused join again: after the wait the server
// asks for when it was rate_limited, for as long as it takes; after a
// growing wait for other passing troubles, JOIN_TRIES times; never for the
// rest. Until joined, the room is shown as not live.
function onJoinRefused(id, f) {
  const r = id === undefined ? undefined : state.joined.get(id);
  if (!r) return; // closed by a log-out meanwhile
  // The words of a rate_limited refusal blame the sender; here the
  // client is only waiting, as asked.
  r.problem = f.code === "rate_limited" ? "the server asked to wait" : f.message || f.code;
  let wait;
  if (f.code === "rate_limited") wait = retryWait(f);
  else if (RETRYABLE.has(f.code) && ++r.failures < JOIN_TRIES) wait = 1000 * 2 ** (r.failures - 1) * (1 + Math.random() / 2);
  else {
    setLink(id, "failed");
    return;
  }
  setLink(id, "retrying");
  const outbox = state.outbox;
  const t = setTimeout(() => {
    state.connTimers.delete(t);
    if (state.outbox === outbox) queueJoin(id);
  }, wait);
  state.connTimers.add(t);
}

// retryWait is the wait in ms an error frame rate_limited asks for; an
// older server gives none, and 1 s is its per-second bucket's refill.
function retryWait(f) {
  return (typeof f.retry_after === "number" && f.retry_after > 0 ? Math.min(f.retry_after, 60) : 1) * 1000;
}
