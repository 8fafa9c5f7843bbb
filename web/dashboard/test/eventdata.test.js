// How events, alerts and deliveries are shown: each event type's data, ids, thresholds and an
// endpoint's last answer.

import assert from "node:assert/strict";
import { test } from "node:test";

import {
  EVENT_TYPES,
  alertThresholdText,
  deliveryOutcome,
  eventFields,
  eventTypesText,
  fieldLabel,
  optionalDateTime,
  shortId,
} from "../eventdata.js";

const WS = "5b5372a9-0815-41ed-9af6-7489b0a059e4";
const ALERT = "d7177484-f8a8-4995-9e9b-f54c7bddc6a3";
const WORKBOOK = "0c1d2e3f-0000-4000-8000-000000000001";

// "label text · label text", as the page lays the fields out on one line.
function line(type, data, names) {
  return eventFields(type, data, names).map((f) => `${f.label} ${f.text}`).join(" · ");
}

test("EVENT_TYPES are API.md's fourteen, without repeats", () => {
  assert.equal(EVENT_TYPES.length, 14);
  assert.equal(new Set(EVENT_TYPES).size, 14);
  assert.equal(EVENT_TYPES[0], "credits.threshold_crossed");
  assert.equal(EVENT_TYPES.at(-1), "test.ping");
});

test("a credits alert's event shows amounts digit for digit, the alert's id short", () => {
  const data = { workspaceId: WS, alertId: ALERT, threshold: "1000.5", available: "999.9999" };
  const fields = eventFields("credits.threshold_crossed", data);
  assert.deepEqual(fields.map((f) => f.name), ["alertId", "threshold", "available"]);
  assert.equal(line("credits.threshold_crossed", data),
    "alert d7177484… · threshold 1,000.5 · available 999.9999");
  assert.equal(fields[0].title, ALERT); // the whole id, for a tooltip
});

test("an Actions alert's threshold is a percent, its counts integers", () => {
  const data = { workspaceId: WS, alertId: ALERT, threshold: "80", used: 12000, capacity: 15000 };
  assert.equal(line("actions.threshold_crossed", data),
    "alert d7177484… · threshold 80% · used 12,000 · capacity 15,000");
  assert.equal(line("actions.exhausted", { workspaceId: WS, used: 500, capacity: 500 }),
    "used 500 · capacity 500");
});

test("a workbook is named when the page knows it, else its id is shortened", () => {
  const data = { workspaceId: WS, workbookId: WORKBOOK, limit: "500", spent: "500.25" };
  const names = new Map([[WORKBOOK, "Leads"]]);
  assert.equal(line("workbook.spend_limit_reached", data, names),
    "workbook Leads · limit 500 · spent 500.25");
  assert.equal(line("workbook.spend_limit_reached", data),
    "workbook 0c1d2e3f… · limit 500 · spent 500.25");
});

test("renewals, plan changes and trials show times in UTC and booleans as words", () => {
  const renewed = {
    workspaceId: WS,
    periodStart: "2025-02-01T00:00:00+00:00",
    periodEnd: "2025-03-01T00:00:00+00:00",
    granted: "2500",
    rolledOver: "120.5",
    expired: "0",
  };
  assert.equal(line("subscription.renewed", renewed),
    "period start 2025-02-01 00:00 UTC · period end 2025-03-01 00:00 UTC · granted 2,500 · " +
      "rolled over 120.5 · expired 0");
  const changed = {
    workspaceId: WS, fromPlan: "launch", toPlan: "growth", creditTier: 12000,
    effectiveAt: "2025-02-01T00:00:00+00:00", immediate: false,
  };
  assert.equal(line("subscription.plan_changed", changed),
    "from plan launch · to plan growth · credit tier 12,000 · " +
      "effective at 2025-02-01 00:00 UTC · immediate no");
  assert.equal(line("subscription.plan_changed", { ...changed, creditTier: null }).split(" · ")[2],
    "credit tier —");
  assert.equal(line("subscription.trial_ended", { workspaceId: WS, plan: "free" }), "plan free");
});

test("a top-up shows its credits and its price in dollars", () => {
  const data = { workspaceId: WS, topUpId: ALERT, credits: "1000", price: "52.00", auto: true };
  assert.equal(line("topup.purchased", data),
    "top-up d7177484… · credits 1,000 · price $52.00 · auto yes");
});

test("runs and disabled endpoints, and a field the page does not know, as it comes", () => {
  assert.equal(line("run.ended", {
    workspaceId: WS, runId: ALERT, status: "COMPLETED", spent: "12.5", released: "7.5",
  }), "run d7177484… · status COMPLETED · spent 12.5 · released 7.5");
  assert.equal(line("webhook.endpoint_disabled", {
    workspaceId: WS, endpointId: ALERT, reason: "answered 410",
  }), "endpoint d7177484… · reason answered 410");
  assert.equal(line("some.new_type", { workspaceId: WS, count: 3, nested: { a: 1 }, gone: null }),
    "count 3 · nested {\"a\":1} · gone —");
});

test("test.ping has nothing but the workspace, so no fields", () => {
  assert.deepEqual(eventFields("test.ping", { workspaceId: WS }), []);
  assert.deepEqual(eventFields("test.ping", null), []);
  assert.deepEqual(eventFields("odd", [1, 2]), [{ name: "data", label: "data", text: "[1,2]" }]);
});

test("fieldLabel turns camelCase names into words", () => {
  assert.equal(fieldLabel("rolledOver"), "rolled over");
  assert.equal(fieldLabel("trialEndsAt"), "trial ends at");
  assert.equal(fieldLabel("alertId"), "alert");
  assert.equal(fieldLabel("topUpId"), "top-up");
  assert.equal(fieldLabel("available"), "available");
});

test("shortId keeps the first eight characters of a long id", () => {
  assert.equal(shortId(ALERT), "d7177484…");
  assert.equal(shortId("e12"), "e12");
});

test("alertThresholdText says when each meter's alert fires", () => {
  assert.equal(alertThresholdText("DATA_CREDITS", "1000.5"), "below 1,000.5 available");
  assert.equal(alertThresholdText("ACTIONS", "80"), "80% of capacity used");
});

test("deliveryOutcome gives the status, the error, or a dash before any attempt", () => {
  const none = { lastResponseStatus: null, lastError: null };
  assert.equal(deliveryOutcome(none), "—");
  assert.equal(deliveryOutcome({ ...none, lastResponseStatus: 200 }), "HTTP 200");
  // the API also records a non-2xx answer as "answered 500": said once
  assert.equal(deliveryOutcome({ lastResponseStatus: 500, lastError: "answered 500" }), "HTTP 500");
  const redirect = "answered 302: redirects are not followed";
  assert.equal(
    deliveryOutcome({ lastResponseStatus: 302, lastError: redirect }),
    `HTTP 302 · ${redirect}`,
  );
  assert.equal(
    deliveryOutcome({ ...none, lastError: "ConnectError: All connection attempts failed" }),
    "ConnectError: All connection attempts failed",
  );
});

test("optionalDateTime and eventTypesText", () => {
  assert.equal(optionalDateTime(null), "—");
  assert.equal(optionalDateTime("2025-01-05T09:30:12.5+00:00"), "2025-01-05 09:30");
  assert.equal(eventTypesText([]), "All event types");
  assert.equal(eventTypesText(["test.ping", "credits.depleted"]), "test.ping, credits.depleted");
});
