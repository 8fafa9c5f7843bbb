// What the chart, the breakdown's total row and the CSV download make of usage rows.

import assert from "node:assert/strict";
import { test } from "node:test";

import { usageTotals } from "../breakdown.js";
import { chartData } from "../chart.js";
import { csvFilename } from "../csv.js";
import { dayStart, rangeOfDays } from "../dates.js";

const ROWS = [
  { day: "2025-01-01", actions: 314, dataCredits: "145.1", results: 514 },
  { day: "2025-01-03", actions: 2, dataCredits: "0.2", results: 2 },
];

test("chartData has a column entry for every day drawn, zero without usage", () => {
  const data = chartData(ROWS, rangeOfDays("2025-01-01", "2025-01-31"), "2025-01-04");

  const days = ["2025-01-01", "2025-01-02", "2025-01-03", "2025-01-04"];
  assert.deepEqual(data.xs, days.map((day) => dayStart(day) / 1000));
  assert.deepEqual(data.actions, [314, 0, 2, 0]);
  assert.deepEqual(data.creditTexts, ["145.1", "0", "0.2", "0"]);
  assert.deepEqual(data.credits, [145.1, 0, 0.2, 0]); // only drawn
});

test("chartData totals Data Credits exactly, from the strings", () => {
  const data = chartData(ROWS, rangeOfDays("2025-01-01", "2025-01-03"), "2025-01-03");
  assert.equal(data.totalActions, 316);
  assert.equal(data.totalCredits, "145.3"); // as floats: 145.29999999999998
});

test("usageTotals sums every figure, Data Credits exactly", () => {
  const rows = [
    { actions: 34, dataCredits: "50", results: 234 },
    { actions: 90, dataCredits: "0.1", results: 90 },
    { actions: 190, dataCredits: "0.2", results: 190 },
  ];
  assert.deepEqual(usageTotals(rows), { actions: 314, dataCredits: "50.3", results: 514 });
  assert.deepEqual(usageTotals([]), { actions: 0, dataCredits: "0", results: 0 });
});

test("csvFilename takes the server's name, else one of the chosen days", () => {
  const header = 'attachment; filename="tally-usage-2025-01-01.csv"';
  assert.equal(csvFilename(header, "2025-01-01", "2025-01-31"), "tally-usage-2025-01-01.csv");
  assert.equal(csvFilename("attachment; filename=usage.csv", "a", "b"), "usage.csv");
  assert.equal(
    csvFilename(null, "2025-01-01", "2025-01-31"),
    "tally-usage-2025-01-01-to-2025-01-31.csv",
  );
  assert.equal(csvFilename("attachment", "x", "y"), "tally-usage-x-to-y.csv");
});
