// The daily chart of Actions and Data Credits, with the day-end Data Credits balance as a line
// when it is known, drawn by uPlot (the global of uPlot.iife.min.js, which the page loads before
// its modules).

import { chartDays, dayStart, dayTicks, isoDay } from "./dates.js";
import { formatDecimal, sumDecimals } from "./decimal.js";
import { $, showMessage } from "./dom.js";
import { formatInt, formatShortDate } from "./format.js";

const HEIGHT = 260;
const MIN_WIDTH = 200;
const HALF_DAY_S = 43_200;
const LABEL_WIDTH = 90; // CSS pixels per day label on the x axis

let chart = null; // the uPlot instance on the page, if any

// The usage rows of a range as the chart's columns: one entry per day drawn, zero on days
// without usage. Data Credits stay strings (`creditTexts`) for the legend and the total; the
// numbers in `credits` are only for drawing bars. `balances` (day -> Decimal string, or null)
// gives the balance line: null on the days it does not name, which the line spans.
export function chartData(rows, range, today = isoDay(Date.now()), balances = null) {
  const byDay = new Map(rows.map((row) => [row.day, row]));
  const days = chartDays(range, rows.map((row) => row.day), today);
  const actions = days.map((day) => byDay.get(day)?.actions ?? 0);
  const creditTexts = days.map((day) => byDay.get(day)?.dataCredits ?? "0");
  const balanceTexts = days.map((day) => balances?.get(day) ?? null);
  return {
    xs: days.map((day) => dayStart(day) / 1000),
    actions,
    credits: creditTexts.map(Number),
    creditTexts,
    totalActions: actions.reduce((sum, n) => sum + n, 0),
    totalCredits: sumDecimals(creditTexts),
    balanceTexts,
    balances: balanceTexts.map((text) => (text === null ? null : Number(text))),
    hasBalances: balanceTexts.some((text) => text !== null),
  };
}

export function destroyChart() {
  delete $("chart").dataset.balances;
  if (chart) {
    chart.destroy();
    chart = null;
  }
}

// Draws the daily rows of `range` (and the balance line of `balances`), or says there is no usage.
export function renderChart(rows, range, balances = null) {
  destroyChart();
  if (rows.length === 0) {
    showMessage($("chart-status"), "No usage in this range yet.");
    return;
  }
  showMessage($("chart-status"), "");
  const data = chartData(rows, range, undefined, balances);
  const container = $("chart");
  const columns = [data.xs, data.actions, data.credits];
  if (data.hasBalances) columns.push(data.balances);
  chart = new uPlot(chartOptions(data, width(container)), columns, container);
  // The exact day-end balances drawn, for a reader of the page's markup (and its tests).
  container.dataset.balances = JSON.stringify(Object.fromEntries(balances ?? []));
}

// Keeps the chart as wide as its box (the page resizes, a phone turns).
export function watchChartSize() {
  new ResizeObserver(fitChart).observe($("chart"));
}

function fitChart() {
  if (chart) chart.setSize({ width: width($("chart")), height: HEIGHT });
}

function width(container) {
  return Math.max(container.clientWidth, MIN_WIDTH);
}

// Ticks on whole UTC days, few enough to stay readable at the chart's width.
function daySplits(u, axisIdx, min, max) {
  const labels = Math.max(2, Math.floor(u.bbox.width / devicePixelRatio / LABEL_WIDTH));
  return dayTicks(min, max, labels);
}

function chartOptions(data, chartWidth) {
  const { xs, creditTexts, balanceTexts } = data;
  // Away from the cursor, the legend shows the range's totals.
  const totalActions = formatInt(data.totalActions);
  const totalCredits = formatDecimal(data.totalCredits);
  return {
    width: chartWidth,
    height: HEIGHT,
    tzDate: (ts) => uPlot.tzDate(new Date(ts * 1000), "Etc/UTC"),
    cursor: { drag: { x: false, y: false } },
    scales: {
      // The days drawn, and half a day each side so the first and last bars are whole (uPlot
      // would stretch a single day to a thousand).
      x: { time: true, range: () => [xs[0] - HALF_DAY_S, xs[xs.length - 1] + HALF_DAY_S] },
      actions: { range: (u, min, max) => [0, Math.max(max, 1) * 1.1] },
      credits: { range: (u, min, max) => [0, Math.max(max, 1) * 1.1] },
      balance: { range: (u, min, max) => [0, Math.max(max ?? 0, 1) * 1.1] },
    },
    series: [
      { label: "Day", value: (u, ts) => (ts === null ? "Total" : isoDay(ts * 1000)) },
      {
        label: "Actions",
        scale: "actions",
        stroke: "#3563d9",
        fill: "rgba(53, 99, 217, 0.8)",
        width: 0,
        paths: uPlot.paths.bars({ size: [0.4, 28], align: -1 }),
        points: { show: false },
        value: (u, v) => (v === null ? totalActions : formatInt(v)),
      },
      {
        label: "Data Credits",
        scale: "credits",
        stroke: "#d9822b",
        fill: "rgba(217, 130, 43, 0.8)",
        width: 0,
        paths: uPlot.paths.bars({ size: [0.4, 28], align: 1 }),
        points: { show: false },
        // The exact string of the day under the cursor, not the float drawn.
        value: (u, v) => (v === null ? totalCredits : formatDecimal(creditTexts[u.cursor.idx])),
      },
      ...(data.hasBalances ? [balanceSeries(balanceTexts)] : []),
    ],
    axes: [
      {
        stroke: "#5b6270",
        grid: { show: false },
        splits: daySplits,
        values: (u, splits) => splits.map((t) => formatShortDate(t * 1000)),
      },
      {
        scale: "actions",
        label: "Actions",
        stroke: "#3563d9",
        grid: { stroke: "#eef0f4" },
        values: (u, ticks) => ticks.map((t) => formatInt(t)),
        size: 60,
      },
      {
        scale: "credits",
        side: 1,
        label: "Data Credits",
        stroke: "#b8641a",
        grid: { show: false },
        values: (u, ticks) => ticks.map((t) => formatInt(t)),
        size: 60,
      },
      ...(data.hasBalances ? [BALANCE_AXIS] : []),
    ],
  };
}

// The day-end balance: a line on its own scale (a balance dwarfs a day's spend), through the
// days it is known on; the legend shows the exact string of the day under the cursor, and away
// from it the latest (the balance now when today is drawn).
function balanceSeries(balanceTexts) {
  const latest = balanceTexts.filter((text) => text !== null).at(-1);
  return {
    label: "Balance (day end)",
    scale: "balance",
    stroke: "#2f8f5b",
    width: 2,
    spanGaps: true,
    points: { show: true, size: 5 },
    value: (u, v) => {
      const idx = u.cursor.idx;
      if (idx === null || idx === undefined) return formatDecimal(latest);
      const text = balanceTexts[idx];
      return v === null || text === null ? "—" : formatDecimal(text);
    },
  };
}

const BALANCE_AXIS = {
  scale: "balance",
  side: 1,
  label: "Balance",
  stroke: "#2f8f5b",
  grid: { show: false },
  values: (u, ticks) => ticks.map((t) => formatInt(t)),
  size: 70,
};
