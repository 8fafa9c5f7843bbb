// Own-key savings (savings.js): summed exactly, said in one sentence, absent without own keys.

import assert from "node:assert/strict";
import { test } from "node:test";

import { ownKeyTotals, savingsText } from "../savings.js";

test("ownKeyTotals adds results and savings exactly", () => {
  const rows = [
    { ownKeyResults: 90, ownKeySavings: "45" },
    { ownKeyResults: 3, ownKeySavings: "0.1" },
    { ownKeyResults: 0, ownKeySavings: "0.2" },
  ];
  assert.deepEqual(ownKeyTotals(rows), { results: 93, savings: "45.3" });
  assert.deepEqual(ownKeyTotals([]), { results: 0, savings: "0" });
});

test("savingsText says what own keys saved, and nothing when none was used", () => {
  assert.equal(savingsText({ results: 90, savings: "45" }),
    "You saved 45 Data Credits with your own keys (90 results).");
  assert.equal(savingsText({ results: 1, savings: "1" }),
    "You saved 1 Data Credit with your own keys (1 result).");
  assert.equal(savingsText({ results: 2000, savings: "12345.5" }),
    "You saved 12,345.5 Data Credits with your own keys (2,000 results).");
  // results the catalog does not price (an own-key CRM export) saved nothing, and say so
  assert.equal(savingsText({ results: 4, savings: "0" }),
    "You saved 0 Data Credits with your own keys (4 results).");
  assert.equal(savingsText({ results: 0, savings: "0" }), "");
});
