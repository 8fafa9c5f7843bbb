// Balances at past instants (balances.js): the chart's day-ends, the one request asking for
// them, and the picker's instant.

import assert from "node:assert/strict";
import { test } from "node:test";

import {
  MAX_POINTS, balanceDays, balancesByDay, balancesRequest, dayEnd, inputOfInstant,
  instantOfInput,
} from "../balances.js";
import { chartData } from "../chart.js";
import { daysOf, rangeOfDays } from "../dates.js";

test("a day ends at its last microsecond, so a change at the next midnight is not counted", () => {
  assert.equal(dayEnd("2026-02-28"), "2026-02-28T23:59:59.999999Z");
});

test("balanceDays asks for the past days from the creation day on, not today", () => {
  const days = daysOf(rangeOfDays("2026-03-01", "2026-03-10"));
  assert.deepEqual(balanceDays(days, { today: "2026-03-06", createdDay: "2026-03-03" }),
    ["2026-03-03", "2026-03-04", "2026-03-05"]);
  assert.deepEqual(balanceDays(days, { today: "2026-03-03", createdDay: "2026-03-03" }), []);
  assert.deepEqual(balanceDays(days, { today: "2026-04-01", createdDay: "2026-01-01" }), days);
});

test("balanceDays keeps at most MAX_POINTS days, spread evenly, first and last included", () => {
  const year = daysOf(rangeOfDays("2025-01-01", "2025-12-31"));
  const picked = balanceDays(year, { today: "2026-01-15", createdDay: "2024-06-01" });
  assert.equal(MAX_POINTS, 28); // under the server's 30 aliases a document
  assert.equal(picked.length, 28);
  assert.equal(picked[0], "2025-01-01");
  assert.equal(picked.at(-1), "2025-12-31");
  assert.deepEqual([...picked].sort(), picked); // in order, no repeats
  assert.equal(new Set(picked).size, 28);
  const gaps = picked.slice(1).map((day, i) => (Date.parse(day) - Date.parse(picked[i])) / 864e5);
  assert.ok(gaps.every((gap) => gap === 13 || gap === 14), gaps);
  assert.equal(balanceDays(year.slice(0, 29), { today: "2026-01-01", createdDay: "2025-01-01",
    max: 28 }).length, 28);
});

test("balancesRequest is one document of aliased balanceAt fields, one variable each", () => {
  const request = balancesRequest(["2026-03-03", "2026-03-04"]);
  assert.equal(request.query, [
    "query Balances($b0: DateTime!, $b1: DateTime!) {",
    "  b0: balanceAt(at: $b0) { dataCredits }",
    "  b1: balanceAt(at: $b1) { dataCredits }",
    "}",
  ].join("\n"));
  assert.deepEqual(request.variables,
    { b0: "2026-03-03T23:59:59.999999Z", b1: "2026-03-04T23:59:59.999999Z" });
  const aliases = balancesRequest(Array.from({ length: MAX_POINTS }, (_, i) => `d${i}`));
  assert.equal((aliases.query.match(/: balanceAt\(/g) ?? []).length, 28);
});

test("balancesByDay maps the answer to days, today being the balance now", () => {
  const request = balancesRequest(["2026-03-03", "2026-03-04"]);
  const data = { b0: { dataCredits: "2495" }, b1: { dataCredits: "2491.5" } };
  const days = ["2026-03-03", "2026-03-04", "2026-03-05"];
  const byDay = balancesByDay(request, data, { today: "2026-03-05", now: "2400.0001", days });
  assert.deepEqual([...byDay], [
    ["2026-03-03", "2495"], ["2026-03-04", "2491.5"], ["2026-03-05", "2400.0001"],
  ]);
  // today not drawn (a past range): no point for it
  const past = balancesByDay(request, data, { today: "2026-04-01", now: "1", days });
  assert.equal(past.has("2026-04-01"), false);
});

test("chartData carries the balance line: exact strings, numbers only to draw, gaps as null", () => {
  const rows = [{ day: "2026-03-03", actions: 10, dataCredits: "5", results: 10 }];
  const balances = new Map([["2026-03-03", "2495"], ["2026-03-05", "2491.5"]]);
  const data = chartData(rows, rangeOfDays("2026-03-03", "2026-03-31"), "2026-03-05", balances);
  assert.deepEqual(data.balanceTexts, ["2495", null, "2491.5"]);
  assert.deepEqual(data.balances, [2495, null, 2491.5]);
  assert.equal(data.hasBalances, true);
  const none = chartData(rows, rangeOfDays("2026-03-03", "2026-03-31"), "2026-03-05");
  assert.deepEqual(none.balanceTexts, [null, null, null]);
  assert.equal(none.hasBalances, false);
});

test("instantOfInput reads a datetime-local value as UTC, to the second or the minute", () => {
  assert.equal(instantOfInput("2026-12-06T07:30:15"), "2026-12-06T07:30:15Z");
  assert.equal(instantOfInput("2026-12-06T07:30"), "2026-12-06T07:30:00Z");
  assert.equal(instantOfInput("2026-12-06T07:30:15.25"), "2026-12-06T07:30:15.25Z");
  for (const bad of ["", null, undefined, "2026-12-06", "2026-13-06T07:30", "yesterday"]) {
    assert.equal(instantOfInput(bad), null, String(bad));
  }
  assert.equal(inputOfInstant(Date.parse("2026-12-06T07:30:15.999Z")), "2026-12-06T07:30:15");
});
