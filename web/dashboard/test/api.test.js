// Talking to the API, with fetch and sessionStorage stood in for: errors become ApiErrors a
// person can read, and the key goes in the Authorization header, from sessionStorage only.

import assert from "node:assert/strict";
import { beforeEach, mock, test } from "node:test";

import {
  ApiError,
  fetchUsageCsv,
  forgetKey,
  gql,
  keepKey,
  loadErrorText,
  refusalMessage,
  restoreKey,
} from "../api.js";

// What the browser's sessionStorage does, for one tab.
class MemoryStorage {
  #items = new Map();
  getItem(name) {
    return this.#items.has(name) ? this.#items.get(name) : null;
  }
  setItem(name, value) {
    this.#items.set(name, String(value));
  }
  removeItem(name) {
    this.#items.delete(name);
  }
  get length() {
    return this.#items.size;
  }
}

function answer(body, status = 200) {
  const text = typeof body === "string" ? body : JSON.stringify(body);
  return async () => new Response(text, { status });
}

beforeEach(() => {
  globalThis.sessionStorage = new MemoryStorage();
  mock.restoreAll();
});

test("gql posts the document and variables with the kept key and returns data", async () => {
  const fetch = mock.method(globalThis, "fetch", answer({ data: { viewer: { role: "ADMIN" } } }));
  keepKey("tly_abc");

  const data = await gql("query { viewer { role } }", { n: 1 });

  assert.deepEqual(data, { viewer: { role: "ADMIN" } });
  const [url, init] = fetch.mock.calls[0].arguments;
  assert.equal(url, "/graphql");
  assert.equal(init.method, "POST");
  assert.equal(init.headers.Authorization, "Bearer tly_abc");
  assert.deepEqual(JSON.parse(init.body), {
    query: "query { viewer { role } }",
    variables: { n: 1 },
  });
});

test("gql can try a key before it is kept", async () => {
  const fetch = mock.method(globalThis, "fetch", answer({ data: {} }));
  await gql("query { viewer { role } }", {}, "tly_new");
  assert.equal(fetch.mock.calls[0].arguments[1].headers.Authorization, "Bearer tly_new");
  assert.equal(sessionStorage.length, 0);
});

test("gql reports the first GraphQL error with its code", async () => {
  mock.method(globalThis, "fetch", answer({
    data: null,
    errors: [
      { message: "That key was not accepted", extensions: { code: "UNAUTHENTICATED" } },
      { message: "second" },
    ],
  }));
  await assert.rejects(gql("query { viewer { role } }"), (error) => {
    assert.ok(error instanceof ApiError);
    assert.equal(error.message, "That key was not accepted");
    assert.equal(error.code, "UNAUTHENTICATED");
    return true;
  });
});

test("gql calls an error without a code ERROR", async () => {
  mock.method(globalThis, "fetch", answer({ errors: [{ message: "boom" }] }));
  await assert.rejects(gql("{ x }"), { message: "boom", code: "ERROR" });
});

test("gql says so when Tally cannot be reached", async () => {
  mock.method(globalThis, "fetch", async () => {
    throw new TypeError("Failed to fetch");
  });
  await assert.rejects(gql("{ x }"), {
    message: "Could not reach Tally. Check the connection and try again.",
    code: "NETWORK",
  });
});

test("gql gives the HTTP status when the answer is not JSON", async () => {
  mock.method(globalThis, "fetch", answer("<html>Bad gateway</html>", 502));
  await assert.rejects(gql("{ x }"), { message: "Tally answered with HTTP 502.", code: "HTTP" });
});

test("the key lasts in sessionStorage until it is forgotten", () => {
  assert.equal(restoreKey(), false);
  keepKey("tly_abc");
  assert.equal(sessionStorage.getItem("tally.apiKey"), "tly_abc");
  assert.equal(restoreKey(), true);
  forgetKey();
  assert.equal(sessionStorage.length, 0);
  assert.equal(restoreKey(), false);
});

test("fetchUsageCsv sends the key in a header, never in the URL", async () => {
  const fetch = mock.method(globalThis, "fetch", answer("day,actions\n"));
  keepKey("tly_abc");

  const params = new URLSearchParams({ from: "2025-01-01T00:00:00.000Z", groupBy: "DAY" });
  const response = await fetchUsageCsv(params);

  assert.equal(await response.text(), "day,actions\n");
  const [url, init] = fetch.mock.calls[0].arguments;
  assert.equal(url, "/usage.csv?from=2025-01-01T00%3A00%3A00.000Z&groupBy=DAY");
  assert.equal(init.headers.Authorization, "Bearer tly_abc");
});

test("fetchUsageCsv throws the server's message when it refuses", async () => {
  mock.method(globalThis, "fetch", answer("to must be after from\n", 400));
  await assert.rejects(fetchUsageCsv(new URLSearchParams()), { message: "to must be after from" });
});

test("fetchUsageCsv says so when Tally cannot be reached", async () => {
  mock.method(globalThis, "fetch", async () => {
    throw new TypeError("Failed to fetch");
  });
  await assert.rejects(fetchUsageCsv(new URLSearchParams()), {
    message: "Could not reach Tally. Check the connection and try again.",
  });
});

test("refusalMessage gives the text of a refused export, or its status", () => {
  assert.equal(refusalMessage("groupBy: unknown dimension 'WEEK'\n", 400), "groupBy: unknown dimension 'WEEK'");
  assert.equal(refusalMessage("  The database is unavailable; retry in a few seconds.\n", 503),
    "The database is unavailable; retry in a few seconds.");
  assert.equal(refusalMessage("", 500), "HTTP 500");
});

test("loadErrorText names the key a member lacks, and gives any other error's message", () => {
  const forbidden = new ApiError("this operation needs an ADMIN key", "FORBIDDEN");
  assert.equal(
    loadErrorText(forbidden, "webhook endpoints"),
    "Only an admin key can see webhook endpoints.",
  );
  const lost = new ApiError("Could not reach Tally.", "NETWORK");
  assert.equal(
    loadErrorText(lost, "the delivery log"),
    "The delivery log could not be loaded: Could not reach Tally.",
  );
});
