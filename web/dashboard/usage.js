// Usage of a range of UTC days (the current cycle by default), optionally of one workbook: the
// range controls, and loading the chart's and the breakdown's rows in one request, then the
// day-end balances of the chart's days in one more.

import { gql } from "./api.js";
import { balanceDays, balancesByDay, balancesRequest } from "./balances.js";
import { hideBreakdown, renderBreakdown } from "./breakdown.js";
import { destroyChart, renderChart } from "./chart.js";
import { chartDays, daysOfRange, isoDay, rangeOfDays } from "./dates.js";
import { $, el, showMessage } from "./dom.js";
import { ownKeyTotals, savingsText } from "./savings.js";
import { session } from "./state.js";

const USAGE_QUERY = `query Usage($from: DateTime!, $to: DateTime!, $groupBy: [UsageDimension!]!,
                                 $workbookId: ID) {
  daily: usageHistory(from: $from, to: $to, groupBy: [DAY], workbookId: $workbookId) {
    day actions dataCredits results ownKeyResults ownKeySavings
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

// The workspace changed (a live update or a poll): the same range again, without "Loading…".
export function refreshUsage() {
  if (!range) return Promise.resolve();
  renderWorkbookFilter();
  return loadUsage({ quiet: true });
}

// Logged out: an answer still on its way is dropped, not drawn for nobody.
export function closeUsage() {
  requests++;
  range = null;
  destroyChart();
  showMessage($("own-key-savings"), "");
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

async function loadUsage({ quiet = false } = {}) {
  const seq = ++requests;
  if (!quiet) {
    showMessage($("usage-error"), "");
    showMessage($("chart-status"), "Loading…");
    showMessage($("breakdown-status"), "Loading…");
  }
  const variables = usageVariables();
  const shown = range;
  let data;
  let balances;
  try {
    data = await gql(USAGE_QUERY, variables);
    if (seq !== requests) return;
    balances = await loadBalances(data.daily, shown, variables.workbookId);
  } catch (error) {
    if (seq !== requests) return;
    if (quiet) return; // the last figures stay; the live status line says what is wrong
    showMessage($("chart-status"), "");
    showMessage($("breakdown-status"), "");
    showMessage($("usage-error"), `Usage could not be loaded: ${error.message}`);
    destroyChart();
    hideBreakdown();
    showMessage($("own-key-savings"), "");
    return;
  }
  if (seq !== requests) return; // a newer request is on its way
  showMessage($("usage-error"), "");
  renderChart(data.daily, shown, balances);
  renderBreakdown(data.breakdown, variables.groupBy);
  showMessage($("own-key-savings"), savingsText(ownKeyTotals(data.daily)));
}

// The day-end Data Credits balance of the days the chart draws (R38's balanceAt, in one
// request, at most balances.MAX_POINTS days), today's being the balance now; null when the
// chart is of one workbook (a balance is the workspace's) or when they cannot be had (the
// chart is drawn without its line then).
async function loadBalances(daily, shown, workbookId) {
  if (workbookId || daily.length === 0) return null;
  const today = isoDay(Date.now());
  const days = chartDays(shown, daily.map((row) => row.day), today);
  const ws = session.workspace;
  const asked = balanceDays(days, { today, createdDay: isoDay(Date.parse(ws.createdAt)) });
  const request = balancesRequest(asked);
  try {
    const data = asked.length === 0 ? {} : await gql(request.query, request.variables);
    return balancesByDay(request, data, { today, now: ws.dataCredits.balance, days });
  } catch {
    return null;
  }
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
