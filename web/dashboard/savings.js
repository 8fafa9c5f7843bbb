// What the customer's own provider and AI keys saved (R5): usage rows' ownKeyResults and
// ownKeySavings (the Data Credits those results would have cost at the catalog price then),
// summed exactly over a range and said in one sentence.

import { formatDecimal, sumDecimals, toUnits } from "./decimal.js";
import { formatInt } from "./format.js";

// The rows' own-key results and savings: { results, savings } (savings a Decimal string).
export function ownKeyTotals(rows) {
  return {
    results: rows.reduce((sum, row) => sum + row.ownKeyResults, 0),
    savings: sumDecimals(rows.map((row) => row.ownKeySavings)),
  };
}

// "You saved 45 Data Credits with your own keys (90 results).", or "" when no result of the
// range used one.
export function savingsText({ results, savings }) {
  if (results === 0) return "";
  const noun = results === 1 ? "result" : "results";
  const credits = toUnits(savings) === 10_000n ? "Data Credit" : "Data Credits";
  return `You saved ${formatDecimal(savings)} ${credits} with your own keys ` +
    `(${formatInt(results)} ${noun}).`;
}
