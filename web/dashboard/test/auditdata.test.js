// How audit entries are shown (auditdata.js): the target, and "field: before → after".

import assert from "node:assert/strict";
import { test } from "node:test";

import { auditChangeText, auditChanges, auditTarget, auditValue } from "../auditdata.js";

const WORKBOOK = "6f1c2a9b-0d3e-4f5a-8b7c-1d2e3f4a5b6c";

test("auditTarget shortens an id and keeps the whole target as a title", () => {
  assert.deepEqual(auditTarget(`workbook:${WORKBOOK}`),
    { text: "workbook 6f1c2a9b…", title: `workbook:${WORKBOOK}` });
  assert.deepEqual(auditTarget(`api_key:${WORKBOOK}`).text, "api key 6f1c2a9b…");
  assert.deepEqual(auditTarget("catalog:2026-01"), { text: "catalog 2026-01", title: "catalog:2026-01" });
  assert.deepEqual(auditTarget("operator"), { text: "operator", title: "operator" });
  assert.deepEqual(auditTarget(null), { text: "—", title: "" });
});

test("auditValue: strings as they are (amounts digit for digit), the rest as JSON", () => {
  assert.equal(auditValue("1250.5"), "1250.5");
  assert.equal(auditValue(null), "—");
  assert.equal(auditValue(undefined), "—");
  assert.equal(auditValue(3), "3");
  assert.equal(auditValue(false), "false");
  assert.equal(auditValue(["a", "b"]), '["a","b"]');
});

test("auditChanges lists only the fields that differ", () => {
  const before = { plan: "launch", creditTier: 2500, interval: "MONTHLY" };
  const after = { plan: "growth", creditTier: 6000, interval: "MONTHLY" };
  assert.deepEqual(auditChanges(before, after), [
    { field: "plan", before: "launch", after: "growth" },
    { field: "creditTier", before: "2500", after: "6000" },
  ]);
  assert.equal(auditChangeText(before, after), "plan: launch → growth; creditTier: 2500 → 6000");
});

test("a creation has no before, a deletion no after, a limit may go from none to some", () => {
  assert.equal(auditChangeText(null, { meter: "DATA_CREDITS", threshold: "100" }),
    "meter: DATA_CREDITS; threshold: 100");
  assert.equal(auditChangeText({ meter: "ACTIONS", threshold: 80 }, null),
    "meter: ACTIONS (removed); threshold: 80 (removed)");
  assert.equal(auditChangeText({ spendLimit: null }, { spendLimit: "500" }), "spendLimit: — → 500");
  assert.equal(auditChangeText({ a: 1 }, { a: 1 }), "no change");
  assert.equal(auditChangeText(null, null), "no change");
  assert.equal(auditChangeText("1", "2"), "value: 1 → 2");
});
