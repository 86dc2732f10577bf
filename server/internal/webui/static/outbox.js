// Outbox: when the web client may send a frame on its socket.
//
// The server allows each connection a burst of frames and then a steady
// rate (docs/protocol.md, "Rate limits"), and answers a frame over it with
// an error frame rate_limited and retry_after. A client that reconnects
// with many rooms open must not spend its whole allowance at once: the
// outbox sends a first burst well under the server's, then a steady pace,
// and when the server refuses a frame anyway it waits as long as the
// server asks and goes on at half the pace, doubling back to the first pace
// after each quiet spell without a refusal.
"use strict";

class Outbox {
  // write sends one frame on the socket and reports whether it could.
  constructor(write, { burst = 20, rate = 10, minRate = 1, recoverAfter = 10000 } = {}) {
    this.write = write;
    this.burst = burst;
    this.rate = rate; // frames per second
    this.fullRate = rate;
    this.minRate = minRate;
    this.recoverAfter = recoverAfter; // ms without a refusal before the pace doubles back
    this.tokens = burst;
    this.refilled = Date.now();
    this.pausedUntil = 0;
    this.slowedAt = 0;
    this.queue = []; // functions that return the frame to send, or null when it is no longer wanted
    this.timer = 0;
    this.closed = false;
  }

  // push queues a frame. make runs when the frame's turn comes, so that it
  // is built from the state of that moment (a join's since, a message
  // already acked meanwhile); it returns null to send nothing.
  push(make) {
    if (this.closed) return;
    this.queue.push(make);
    this.drain();
  }

  // offer sends a frame that is worth sending only now (typing), if the
  // queue is empty and the pace allows; it reports whether it was sent.
  offer(frame) {
    if (this.closed || this.queue.length > 0 || !this.take()) return false;
    return this.write(frame);
  }

  // refused is told that the server refused a frame as rate_limited, with
  // the wait it asked for in seconds (absent from older servers: 1 s).
  // Frames already on their way were sent at the old pace, so the pace is
  // halved at most once a second.
  refused(retryAfter) {
    const wait = typeof retryAfter === "number" && retryAfter > 0 ? Math.min(retryAfter, 60) : 1;
    const now = Date.now();
    // The server lets one frame through after the wait, not a burst: the
    // pace starts again from nothing then.
    this.pausedUntil = Math.max(this.pausedUntil, now + wait * 1000);
    this.tokens = 0;
    this.refilled = this.pausedUntil;
    if (now - this.slowedAt > 1000) {
      this.rate = Math.max(this.minRate, this.rate / 2);
      this.slowedAt = now;
    }
    this.schedule();
  }

  // close drops what is queued: the next connection starts afresh.
  close() {
    this.closed = true;
    this.queue = [];
    clearTimeout(this.timer);
  }

  take() {
    const now = Date.now();
    if (now < this.pausedUntil) return false;
    if (this.rate < this.fullRate && now - this.slowedAt > this.recoverAfter) {
      this.rate = Math.min(this.fullRate, this.rate * 2);
      this.slowedAt = now;
    }
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.refilled) / 1000) * this.rate);
    this.refilled = now;
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }

  drain() {
    clearTimeout(this.timer);
    this.timer = 0;
    while (!this.closed && this.queue.length > 0) {
      if (!this.take()) {
        this.schedule();
        return;
      }
      const frame = this.queue.shift()();
      if (frame === null) {
        this.tokens += 1; // nothing was sent
        continue;
      }
      this.write(frame);
    }
  }

  // schedule wakes the outbox when the next frame may go.
  schedule() {
    if (this.closed || this.queue.length === 0) return;
    clearTimeout(this.timer);
    const now = Date.now();
    const nextToken = ((1 - this.tokens) / this.rate) * 1000;
    const delay = Math.max(this.pausedUntil - now, nextToken, 0);
    this.timer = setTimeout(() => this.drain(), delay + 5);
  }
}
