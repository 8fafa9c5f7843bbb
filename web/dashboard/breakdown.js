// The usage breakdown table: one row per group of the chosen keys, then the total.

import { formatDecimal, sumDecimals } from "./decimal.js";
import { $, el, showMessage } from "./dom.js";
import { formatDate, formatInt, humanize } from "./format.js";

// How each grouping key (a UsageDimension) is shown.
const DIMENSIONS = {
  DAY: { label: "Day", cell: (row) => row.day },
  CYCLE: { label: "Cycle start", cell: (row) => formatDate(row.cycleStart) },
  WORKBOOK: { label: "Workbook", cell: (row) => row.workbookName ?? row.workbookId ?? "—" },
  TABLE: { label: "Table", cell: (row) => row.tableId ?? "(no table)" },
  PROVIDER: { label: "Provider", cell: (row) => row.provider ?? "—" },
  KIND: { label: "Kind", cell: (row) => humanize(row.kind) },
};

// The sums of the rows' figures; Data Credits exactly, as a Decimal string.
export function usageTotals(rows) {
  return {
    actions: rows.reduce((sum, row) => sum + row.actions, 0),
    dataCredits: sumDecimals(rows.map((row) => row.dataCredits)),
    results: rows.reduce((sum, row) => sum + row.results, 0),
  };
}

export function hideBreakdown() {
  $("breakdown").hidden = true;
}

// The rows grouped by `groupBy` (UsageDimension names, in order), or says there are none.
export function renderBreakdown(rows, groupBy) {
  const table = $("breakdown");
  if (rows.length === 0) {
    table.hidden = true;
    showMessage($("breakdown-status"), "No usage in this range yet.");
    return;
  }
  showMessage($("breakdown-status"), "");
  const keys = groupBy.map((dimension) => DIMENSIONS[dimension]);
  table.tHead.rows[0].replaceChildren(
    ...keys.map((key) => el("th", {}, key.label)),
    el("th", { class: "num" }, "Actions"),
    el("th", { class: "num" }, "Data Credits"),
    el("th", { class: "num" }, "Results"),
  );
  const body = rows.map((row) =>
    el(
      "tr",
      {},
      ...keys.map((key) => el("td", { "data-label": key.label }, key.cell(row))),
      ...figureCells(row.actions, row.dataCredits, row.results),
    )
  );
  const totals = usageTotals(rows);
  const total = el(
    "tr",
    { class: "total" },
    el("th", { colspan: String(keys.length), scope: "row" }, "Total"),
    ...figureCells(totals.actions, totals.dataCredits, totals.results),
  );
  table.tBodies[0].replaceChildren(...body, total);
  table.hidden = false;
}

function figureCells(actions, dataCredits, results) {
  return [
    el("td", { class: "num", "data-label": "Actions" }, formatInt(actions)),
    el("td", { class: "num", "data-label": "Data Credits" }, formatDecimal(dataCredits)),
    el("td", { class: "num", "data-label": "Results" }, formatInt(results)),
  ];
}
