// Usage of a range of UTC days (the current cycle by default), optionally of one workbook: the
// range controls, and loading the chart's and the breakdown's rows in one request.

import { gql } from "./api.js";
import { hideBreakdown, renderBreakdown } from "./breakdown.js";
import { destroyChart, renderChart } from "./chart.js";
import { daysOfRange, rangeOfDays } from "./dates.js";
import { $, el, showMessage } from "./dom.js";
import { session } from "./state.js";

const USAGE_QUERY = `query Usage($from: DateTime!, $to: DateTime!, $groupBy: [UsageDimension!]!,
                                 $workbookId: ID) {
  daily: usageHistory(from: $from, to: $to, groupBy: [DAY], workbookId: $workbookId) {
    day actions dataCredits results
  }
  breakdown: usageHistory(from: $from, to: $to, groupBy: $groupBy, workbookId: $workbookId) {
    day cycleStart workbookId workbookName tableId provider kind actions dataCredits results
  }
}`;

let range = null; // the range shown: { from, to }, ISO instants, `to` exclusive
let requests = 0; // numbers each load, so only the newest one's answer is shown

export function wireUsage() {
  $("range-form").addEventListener("submit", onApplyRange);
  $("range-cycle").addEventListener("click", onCurrentCycle);
  $("range-workbook").addEventListener("change", () => loadUsage());
  $("group-by").addEventListener("change", () => loadUsage());
}

// A workspace was opened: its current cycle, all workbooks unless one is still chosen.
export function openUsage() {
  range = cycleRange();
  renderWorkbookFilter();
  showRangeInInputs(range);
  loadUsage();
}

// Logged out: an answer still on its way is dropped, not drawn for nobody.
export function closeUsage() {
  requests++;
  range = null;
  destroyChart();
}

// What the chart, the breakdown and the CSV export are asked for.
export function usageVariables() {
  return {
    from: range.from,
    to: range.to,
    groupBy: $("group-by").value.split(","),
    workbookId: $("range-workbook").value || null,
  };
}

async function loadUsage() {
  const seq = ++requests;
  showMessage($("usage-error"), "");
  showMessage($("chart-status"), "Loading…");
  showMessage($("breakdown-status"), "Loading…");
  const variables = usageVariables();
  let data;
  try {
    data = await gql(USAGE_QUERY, variables);
  } catch (error) {
    if (seq !== requests) return;
    showMessage($("chart-status"), "");
    showMessage($("breakdown-status"), "");
    showMessage($("usage-error"), `Usage could not be loaded: ${error.message}`);
    destroyChart();
    hideBreakdown();
    return;
  }
  if (seq !== requests) return; // a newer request is on its way
  renderChart(data.daily, range);
  renderBreakdown(data.breakdown, variables.groupBy);
}

function cycleRange() {
  const { start, end } = session.workspace.currentPeriod;
  return { from: start, to: end };
}

function showRangeInInputs(shown) {
  const { fromDay, toDay } = daysOfRange(shown);
  $("range-from").value = fromDay;
  $("range-to").value = toDay;
}

function renderWorkbookFilter() {
  const select = $("range-workbook");
  const chosen = select.value;
  const workbooks = session.workspace.workbooks;
  select.replaceChildren(el("option", { value: "" }, "All workbooks"));
  for (const wb of workbooks) select.append(el("option", { value: wb.id }, wb.name));
  select.value = workbooks.some((wb) => wb.id === chosen) ? chosen : "";
}

function onApplyRange(event) {
  event.preventDefault();
  try {
    range = rangeOfDays($("range-from").value, $("range-to").value);
  } catch (error) {
    showMessage($("usage-error"), error.message);
    return;
  }
  loadUsage();
}

function onCurrentCycle() {
  range = cycleRange();
  showRangeInInputs(range);
  loadUsage();
}
