// The live connection's state machine (livestate.js): live, polling after a loss, stopped for
// good on a refused key, and the merging of reloads.

import assert from "node:assert/strict";
import { test } from "node:test";

import {
  INITIAL, OFF, POLL_MS, coalesce, isPolling, liveStep, liveView, reconnectDelay,
} from "../livestate.js";

function run(...events) {
  return events.reduce((state, event) => liveStep(state, event), INITIAL);
}

test("a socket that connects is live; a lost one polls and counts the losses in a row", () => {
  assert.deepEqual(run({ type: "connected" }), { phase: "live", failures: 0 });
  const lost = run({ type: "connected" }, { type: "lost", code: 1006 });
  assert.deepEqual(lost, { phase: "polling", failures: 1 });
  assert.equal(isPolling(lost), true);
  // each failed reconnect counts; a success clears them
  const twice = liveStep(lost, { type: "lost", code: 1001 });
  assert.deepEqual(twice, { phase: "polling", failures: 2 });
  assert.deepEqual(liveStep(twice, { type: "connected" }), { phase: "live", failures: 0 });
  // a socket that never opened polls too
  assert.deepEqual(run({ type: "lost", code: null }), { phase: "polling", failures: 1 });
});

test("4403 (a revoked or refused key) and an UNAUTHENTICATED poll stop for good", () => {
  const revoked = run({ type: "connected" }, { type: "lost", code: 4403 });
  assert.equal(revoked.phase, "stopped");
  assert.equal(isPolling(revoked), false);
  assert.equal(run({ type: "lost", code: 1006 }, { type: "refused" }).phase, "stopped");
  // nothing revives it, not even a late "connected" from an old socket
  assert.equal(liveStep(revoked, { type: "connected" }), revoked);
  assert.equal(liveStep(revoked, { type: "lost", code: 1006 }), revoked);
});

test("logging out turns it off from any state, and off stays off", () => {
  for (const state of [INITIAL, run({ type: "connected" }), run({ type: "lost" })]) {
    assert.equal(liveStep(state, { type: "closed" }), OFF);
  }
  assert.equal(liveStep(OFF, { type: "connected" }), OFF);
  assert.throws(() => liveStep(INITIAL, { type: "bogus" }), /unknown live event bogus/);
});

test("reconnects wait 1 s, 2 s, 4 s … at most 30 s", () => {
  assert.deepEqual([1, 2, 3, 4, 5, 6, 7, 50].map(reconnectDelay),
    [1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000]);
  assert.equal(reconnectDelay(0), 1000);
});

test("the page says which state it is in", () => {
  assert.equal(POLL_MS, 3000);
  assert.deepEqual(liveView(INITIAL), { text: "Connecting for live updates…", tone: "" });
  assert.deepEqual(liveView(run({ type: "connected" })),
    { text: "Live: changes show here as they happen.", tone: "ok" });
  assert.deepEqual(liveView(run({ type: "lost" })), {
    text: "Live updates are interrupted: checking every 3 s and reconnecting.",
    tone: "warn",
  });
  const stopped = liveView(run({ type: "refused" }));
  assert.equal(stopped.tone, "error");
  assert.match(stopped.text, /^This API key is no longer accepted/);
  assert.deepEqual(liveView(OFF), { text: "", tone: "" });
});

test("coalesce runs a task once more after calls made while it ran, never twice at once", async () => {
  let running = 0;
  let most = 0;
  let runs = 0;
  const gates = [];
  const task = coalesce(async () => {
    running++;
    runs++;
    most = Math.max(most, running);
    await new Promise((resolve) => gates.push(resolve));
    running--;
  });
  const first = task();
  const during = [task(), task(), task()]; // three changes while the first load runs
  await Promise.resolve();
  assert.equal(runs, 1);
  gates.shift()();
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(runs, 2); // the three merged into one more
  gates.shift()();
  await Promise.all([first, ...during]);
  assert.equal(runs, 2);
  assert.equal(most, 1);
  // and it runs again afterwards
  const later = task();
  gates.shift()();
  await later;
  assert.equal(runs, 3);
});

test("coalesce passes a failure on and runs again next time", async () => {
  let calls = 0;
  const task = coalesce(async () => {
    calls++;
    if (calls === 1) throw new Error("boom");
  });
  await assert.rejects(task(), /boom/);
  await task();
  assert.equal(calls, 2);
});
