// The dashboard's Data Credit arithmetic: exact on Decimal strings, never through floats.

import assert from "node:assert/strict";
import { test } from "node:test";

import {
  fillPercent,
  formatDecimal,
  fromUnits,
  parseCreditAmount,
  sumDecimals,
  toUnits,
} from "../decimal.js";

test("formatDecimal groups thousands and leaves the digits alone", () => {
  assert.equal(formatDecimal("0"), "0");
  assert.equal(formatDecimal("999"), "999");
  assert.equal(formatDecimal("1000"), "1,000");
  assert.equal(formatDecimal("12345.5"), "12,345.5");
  assert.equal(formatDecimal("1200000"), "1,200,000");
  assert.equal(formatDecimal("0.0001"), "0.0001");
  assert.equal(formatDecimal("1234.5000"), "1,234.5000"); // trailing zeros are the API's
});

test("formatDecimal keeps digits a float would lose", () => {
  assert.equal(formatDecimal("90071992547409931.0001"), "90,071,992,547,409,931.0001");
});

test("formatDecimal writes a negative amount with a minus sign", () => {
  assert.equal(formatDecimal("-20"), "−20");
  assert.equal(formatDecimal("-1234.25"), "−1,234.25");
  assert.equal(formatDecimal("-1234.25", { signed: true }), "−1,234.25");
});

test("formatDecimal signed puts a plus before a positive amount, not before zero", () => {
  assert.equal(formatDecimal("600000", { signed: true }), "+600,000");
  assert.equal(formatDecimal("0.5", { signed: true }), "+0.5");
  assert.equal(formatDecimal("0", { signed: true }), "0");
  assert.equal(formatDecimal("0.0000", { signed: true }), "0.0000");
  assert.equal(formatDecimal("600000"), "600,000");
});

test("formatDecimal takes numbers too", () => {
  assert.equal(formatDecimal(50000), "50,000");
});

test("toUnits counts ten-thousandths", () => {
  assert.equal(toUnits("0"), 0n);
  assert.equal(toUnits("1"), 10_000n);
  assert.equal(toUnits("12.5"), 125_000n);
  assert.equal(toUnits("0.0001"), 1n);
  assert.equal(toUnits("-20"), -200_000n);
  assert.equal(toUnits("-0.0001"), -1n);
  assert.equal(toUnits("+3"), 30_000n);
  assert.equal(toUnits(".5"), 5_000n);
  assert.equal(toUnits("7."), 70_000n);
  assert.equal(toUnits(145), 1_450_000n);
});

test("toUnits is exact beyond a float's 2^53", () => {
  assert.equal(toUnits("900719925474099.3"), 9_007_199_254_740_993_000n);
});

test("toUnits drops digits past the fourth decimal place", () => {
  assert.equal(toUnits("1.23456"), 12_345n);
});

test("fromUnits writes the shortest Decimal string", () => {
  assert.equal(fromUnits(0n), "0");
  assert.equal(fromUnits(10_000n), "1");
  assert.equal(fromUnits(125_000n), "12.5");
  assert.equal(fromUnits(1n), "0.0001");
  assert.equal(fromUnits(-1n), "-0.0001");
  assert.equal(fromUnits(-200_000n), "-20");
  assert.equal(fromUnits(12_345_678_901_234_567_890n), "1234567890123456.789");
});

test("toUnits and fromUnits round-trip the API's amounts", () => {
  for (const text of ["0", "1", "12.5", "0.0001", "-20", "599855", "-0.3", "1200000.1234"]) {
    assert.equal(fromUnits(toUnits(text)), text);
  }
});

test("sumDecimals adds exactly where floats do not", () => {
  assert.equal(0.1 + 0.2 === 0.3, false); // why the dashboard never adds amounts as numbers
  assert.equal(sumDecimals(["0.1", "0.2"]), "0.3");
  assert.equal(sumDecimals(["50", "45", "0", "30", "20"]), "145");
  assert.equal(sumDecimals(["0.0001", "0.0002", "0.0003"]), "0.0006");
  assert.equal(sumDecimals(["600000", "-20", "-0.5"]), "599979.5");
  assert.equal(sumDecimals(["9007199254740993", "1"]), "9007199254740994");
  assert.equal(sumDecimals([]), "0");
});

test("fillPercent is the share to a tenth of a percent", () => {
  assert.equal(fillPercent("599855", "1200000"), "50.0%"); // 49.98…% rounds up
  assert.equal(fillPercent("314", "100000"), "0.3%");
  assert.equal(fillPercent("1", "3"), "33.3%");
  assert.equal(fillPercent("2", "3"), "66.7%");
  assert.equal(fillPercent("0", "50000"), "0.0%");
  assert.equal(fillPercent("50000", "50000"), "100.0%");
  assert.equal(fillPercent(314, 100000), "0.3%"); // Actions arrive as numbers
});

test("fillPercent rounds half up, exactly", () => {
  assert.equal(fillPercent("1225", "10000"), "12.3%"); // 12.25%
  assert.equal(fillPercent("1224.9999", "10000"), "12.2%");
  assert.equal(fillPercent("0.0005", "1"), "0.1%"); // 0.05%
  assert.equal(fillPercent("0.0004", "1"), "0.0%");
});

test("fillPercent stays between 0% and 100%", () => {
  assert.equal(fillPercent("-5", "100"), "0.0%");
  assert.equal(fillPercent("150", "100"), "100.0%");
});

test("fillPercent of nothing is empty", () => {
  assert.equal(fillPercent("10", "0"), "0.0%");
  assert.equal(fillPercent("0", "0"), "0.0%");
  assert.equal(fillPercent("10", "-1"), "0.0%");
});

test("parseCreditAmount takes what a person types as a limit", () => {
  assert.equal(parseCreditAmount("500"), "500");
  assert.equal(parseCreditAmount(" 12.5 "), "12.5");
  assert.equal(parseCreditAmount("1,250.0001"), "1250.0001");
  assert.equal(parseCreditAmount("0"), "0");
});

test("parseCreditAmount refuses what is not a non-negative amount of four places", () => {
  for (const text of ["", " ", "lots", "-5", "+5", "1.23456", "1.", ".5", "1e3", "0x10", "1 000",
    "١٢", "Infinity", "NaN"]) {
    assert.equal(parseCreditAmount(text), null, JSON.stringify(text));
  }
});
