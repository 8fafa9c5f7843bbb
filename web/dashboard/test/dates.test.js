// UTC days and ranges: the date inputs, the chart's days and its ticks.

import assert from "node:assert/strict";
import { test } from "node:test";

import {
  chartDays,
  dayStart,
  dayTicks,
  daysOf,
  daysOfRange,
  isoDay,
  rangeOfDays,
} from "../dates.js";

const DAY_S = 86_400;

test("isoDay and dayStart are UTC", () => {
  assert.equal(isoDay(Date.parse("2025-01-05T23:59:59.999Z")), "2025-01-05");
  assert.equal(isoDay(Date.parse("2025-01-05T23:30:00-05:00")), "2025-01-06");
  assert.equal(dayStart("2025-01-05"), Date.parse("2025-01-05T00:00:00Z"));
});

test("rangeOfDays includes both days", () => {
  assert.deepEqual(rangeOfDays("2025-01-01", "2025-01-31"), {
    from: "2025-01-01T00:00:00.000Z",
    to: "2025-02-01T00:00:00.000Z",
  });
  assert.deepEqual(rangeOfDays("2024-02-29", "2024-02-29"), {
    from: "2024-02-29T00:00:00.000Z",
    to: "2024-03-01T00:00:00.000Z",
  });
});

test("rangeOfDays refuses a missing day or days the wrong way round", () => {
  assert.throws(() => rangeOfDays("", "2025-01-31"), { message: "Choose both dates." });
  assert.throws(() => rangeOfDays("2025-01-01", ""), { message: "Choose both dates." });
  assert.throws(() => rangeOfDays("2025-02-01", "2025-01-31"), {
    message: "The start date is after the end date.",
  });
});

test("daysOfRange gives back the days of rangeOfDays", () => {
  assert.deepEqual(daysOfRange(rangeOfDays("2025-01-01", "2025-01-31")), {
    fromDay: "2025-01-01",
    toDay: "2025-01-31",
  });
  // A billing cycle as the API gives it, with its zone.
  assert.deepEqual(
    daysOfRange({ from: "2025-03-15T00:00:00+00:00", to: "2025-04-15T00:00:00+00:00" }),
    { fromDay: "2025-03-15", toDay: "2025-04-14" },
  );
});

test("daysOf lists every day the range touches", () => {
  assert.deepEqual(daysOf(rangeOfDays("2024-02-27", "2024-03-01")), [
    "2024-02-27",
    "2024-02-28",
    "2024-02-29",
    "2024-03-01",
  ]);
  // A range that starts and ends inside a day still touches those days.
  assert.deepEqual(daysOf({ from: "2025-01-01T12:00:00Z", to: "2025-01-03T00:00:01Z" }), [
    "2025-01-01",
    "2025-01-02",
    "2025-01-03",
  ]);
  assert.deepEqual(daysOf({ from: "2025-01-01T00:00:00Z", to: "2025-01-01T00:00:00Z" }), []);
});

test("chartDays stops at today", () => {
  const cycle = rangeOfDays("2025-01-01", "2025-01-31");
  assert.deepEqual(chartDays(cycle, ["2025-01-02"], "2025-01-03"), [
    "2025-01-01",
    "2025-01-02",
    "2025-01-03",
  ]);
});

test("chartDays reaches the last day with usage, even after today", () => {
  const cycle = rangeOfDays("2025-01-01", "2025-01-31");
  assert.deepEqual(chartDays(cycle, ["2025-01-04", "2025-01-02"], "2025-01-01"), [
    "2025-01-01",
    "2025-01-02",
    "2025-01-03",
    "2025-01-04",
  ]);
});

test("chartDays of a past range is the whole range", () => {
  const past = rangeOfDays("2024-12-30", "2025-01-01");
  assert.deepEqual(chartDays(past, [], "2025-06-01"), ["2024-12-30", "2024-12-31", "2025-01-01"]);
});

test("dayTicks puts a tick on each day when there is room", () => {
  const first = dayStart("2025-01-01") / 1000;
  const ticks = dayTicks(first - DAY_S / 2, first + 2 * DAY_S + DAY_S / 2, 10);
  assert.deepEqual(ticks, [first, first + DAY_S, first + 2 * DAY_S]);
});

test("dayTicks steps over days when there is not", () => {
  const first = dayStart("2025-01-01") / 1000;
  const ticks = dayTicks(first, first + 30 * DAY_S, 4); // 31 days, about 4 labels
  assert.deepEqual(ticks, [0, 8, 16, 24].map((n) => first + n * DAY_S));
});

test("dayTicks starts on the first whole day inside the scale", () => {
  const first = dayStart("2025-01-01") / 1000;
  const ticks = dayTicks(first + 1, first + 2 * DAY_S, 10);
  assert.deepEqual(ticks, [first + DAY_S, first + 2 * DAY_S]);
});
