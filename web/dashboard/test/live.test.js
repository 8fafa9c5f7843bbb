// live.js's wiring, with a fake graphql-ws client and node's mock timers: what each socket
// event does to the page (updates, polling, reconnects, stopping).

import assert from "node:assert/strict";
import { mock, test } from "node:test";

import { closeLive, liveRefused, openLive } from "../live.js";

// A stand-in for graphql-ws's createClient: records each client and lets the test drive it.
function fakeLibrary() {
  const clients = [];
  const createClient = (options) => {
    const client = {
      options,
      disposed: false,
      sink: null,
      query: null,
      subscribe(payload, sink) {
        client.query = payload.query;
        client.sink = sink;
        return () => {};
      },
      dispose() {
        client.disposed = true;
      },
    };
    clients.push(client);
    return client;
  };
  return { clients, createClient };
}

function start(overrides = {}) {
  const { clients, createClient } = fakeLibrary();
  const seen = { updates: [], polls: 0, states: [] };
  openLive({
    key: "tly_secret",
    url: "ws://tally.test/graphql",
    createClient,
    onWorkspace: (workspace, first) => seen.updates.push([workspace.id, first]),
    poll: async () => {
      seen.polls++;
      if (overrides.pollError) throw overrides.pollError;
    },
    onState: (view, state) => seen.states.push(state.phase),
  });
  return { clients, seen };
}

const update = (id) => ({ data: { workspaceUpdated: { id } } });

test("the key goes in connection_init; updates are handed on, the first marked", (t) => {
  t.after(closeLive);
  const { clients, seen } = start();
  const [client] = clients;
  assert.deepEqual(client.options.connectionParams, { Authorization: "Bearer tly_secret" });
  assert.equal(client.options.url, "ws://tally.test/graphql");
  assert.equal(client.options.retryAttempts, 0);
  assert.match(client.query, /subscription Live \{ workspaceUpdated \{/);
  client.options.on.connected();
  client.sink.next(update("a"));
  client.sink.next(update("b"));
  assert.deepEqual(seen.updates, [["a", true], ["b", false]]);
  assert.deepEqual(seen.states, ["connecting", "live"]);
});

test("a lost socket polls every 3 s and reconnects after 1 s, then 2 s; live stops polling",
  async (t) => {
    mock.timers.enable({ apis: ["setTimeout", "setInterval"] });
    t.after(() => {
      closeLive();
      mock.timers.reset();
    });
    const { clients, seen } = start();
    clients[0].options.on.connected();
    clients[0].sink.error({ code: 1001, reason: "going away" });
    assert.equal(clients[0].disposed, true);
    assert.deepEqual(seen.states, ["connecting", "live", "polling"]);

    mock.timers.tick(1_000); // the first reconnect
    assert.equal(clients.length, 2);
    clients[1].sink.error(new Error("refused")); // fails: the next wait doubles
    mock.timers.tick(1_999);
    assert.equal(clients.length, 2);
    mock.timers.tick(1); // 3 s after the loss: the first poll, and the second reconnect
    assert.equal(seen.polls, 1);
    assert.equal(clients.length, 3);

    clients[2].options.on.connected();
    clients[2].sink.next(update("c"));
    assert.deepEqual(seen.updates, [["c", true]]);
    assert.equal(seen.states.at(-1), "live");
    mock.timers.tick(60_000);
    assert.equal(seen.polls, 1); // no polling while live
    assert.equal(clients.length, 3); // and no reconnecting
    // a late callback from an old socket changes nothing
    clients[0].sink.next(update("old"));
    clients[1].options.on.connected();
    assert.deepEqual(seen.updates, [["c", true]]);
  });

test("4403 stops: no polling, no reconnect", (t) => {
  mock.timers.enable({ apis: ["setTimeout", "setInterval"] });
  t.after(() => {
    closeLive();
    mock.timers.reset();
  });
  const { clients, seen } = start();
  clients[0].options.on.connected();
  clients[0].sink.error({ code: 4403, reason: "Forbidden" });
  mock.timers.tick(120_000);
  assert.equal(clients.length, 1);
  assert.equal(seen.polls, 0);
  assert.deepEqual(seen.states, ["connecting", "live", "stopped"]);
});

test("a poll answered UNAUTHENTICATED stops too, as does a refusal seen elsewhere", async (t) => {
  mock.timers.enable({ apis: ["setTimeout", "setInterval"] });
  t.after(() => {
    closeLive();
    mock.timers.reset();
  });
  const refused = Object.assign(new Error("revoked"), { code: "UNAUTHENTICATED" });
  const { clients, seen } = start({ pollError: refused });
  clients[0].sink.error({ code: 1006 });
  mock.timers.tick(1_000);
  clients[1].sink.error({ code: 1006 });
  mock.timers.tick(2_000); // the first poll
  await Promise.resolve();
  await Promise.resolve();
  assert.equal(seen.states.at(-1), "stopped");
  mock.timers.tick(60_000);
  assert.equal(seen.polls, 1);
  assert.equal(clients.length, 3); // the reconnect already under way when it stopped, no more
  assert.equal(clients[2].disposed, true);

  const other = start();
  liveRefused();
  assert.equal(other.seen.states.at(-1), "stopped");
});

test("logging out closes the socket and nothing is delivered after", (t) => {
  const { clients, seen } = start();
  closeLive();
  assert.equal(clients[0].disposed, true);
  clients[0].sink.next(update("late"));
  assert.deepEqual(seen.updates, []);
  t.after(closeLive);
});
