// How counts, dates and enum codes are shown.

import assert from "node:assert/strict";
import { test } from "node:test";

import {
  formatDate,
  formatDateTime,
  formatInt,
  formatShortDate,
  humanize,
  meterName,
} from "../format.js";

test("formatInt groups thousands", () => {
  assert.equal(formatInt(0), "0");
  assert.equal(formatInt(314), "314");
  assert.equal(formatInt(100000), "100,000");
  assert.equal(formatInt(99686), "99,686");
});

test("formatDate is the UTC day, whatever the instant's zone", () => {
  assert.equal(formatDate("2026-11-25T00:00:00+00:00"), "Nov 25, 2026");
  assert.equal(formatDate("2025-01-31T22:00:00-05:00"), "Feb 1, 2025");
  assert.equal(formatDate(null), "—");
  assert.equal(formatDate(undefined), "—");
});

test("formatShortDate names the day of a tick", () => {
  assert.equal(formatShortDate(Date.parse("2025-01-05T00:00:00Z")), "Jan 5");
});

test("formatDateTime is the UTC minute", () => {
  assert.equal(formatDateTime("2025-01-05T09:30:59.999+00:00"), "2025-01-05 09:30");
  assert.equal(formatDateTime("2025-01-05T23:30:00-01:00"), "2025-01-06 00:30");
});

test("humanize turns an enum code into words", () => {
  assert.equal(humanize("ENRICHMENT"), "Enrichment");
  assert.equal(humanize("DATA_CREDITS"), "Data credits");
  assert.equal(humanize("ADMIN"), "Admin");
  assert.equal(humanize(null), "—");
  assert.equal(humanize(""), "—");
});

test("meterName names the two meters and passes others through", () => {
  assert.equal(meterName("ACTIONS"), "Actions");
  assert.equal(meterName("DATA_CREDITS"), "Data Credits");
  assert.equal(meterName("SEATS"), "SEATS");
});
