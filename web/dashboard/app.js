// Tally's workspace dashboard. It uses only the public GraphQL API (POST /graphql) and the
// usage export (GET /usage.csv), with the API key the user typed in, as any frontend would.
// Amounts arrive as Decimal strings and are shown as they are (with thousands separators);
// they become numbers only to be drawn on the chart.

const KEY_STORAGE = "tally.apiKey"; // sessionStorage: gone when the tab closes, never in a URL
const LEDGER_PAGE_SIZE = 10;
const CHART_HEIGHT = 260;
const DAY_MS = 86_400_000;

const DASHBOARD_QUERY = `query Dashboard {
  viewer { role apiKey { name } }
  workspace {
    id name plan { code name } creditTier billingInterval status trialEndsAt
    currentPeriod { start end }
    pendingChange { plan { code name } creditTier billingInterval effectiveAt }
    actions { capacity used remaining resetsAt }
    dataCredits { balance cap monthlyGrant held available }
    workbooks { id name spendLimit spent }
  }
}`;

const USAGE_QUERY = `query Usage($from: DateTime!, $to: DateTime!, $groupBy: [UsageDimension!]!,
                                 $workbookId: ID) {
  daily: usageHistory(from: $from, to: $to, groupBy: [DAY], workbookId: $workbookId) {
    day actions dataCredits results
  }
  breakdown: usageHistory(from: $from, to: $to, groupBy: $groupBy, workbookId: $workbookId) {
    day cycleStart workbookId workbookName tableId provider kind actions dataCredits results
  }
}`;

const LEDGER_QUERY = `query Ledger($first: Int!, $after: String) {
  ledger(first: $first, after: $after) {
    edges { cursor node { id entryType meter amount balanceAfter createdAt workbookId chargeId } }
    pageInfo { hasNextPage endCursor }
  }
}`;

const SET_LIMIT_MUTATION = `mutation SetLimit($workbookId: ID!, $limit: Decimal) {
  setWorkbookSpendLimit(workbookId: $workbookId, limit: $limit) {
    __typename
    ... on Workbook { id name spendLimit spent }
    ... on Refusal { code message }
  }
}`;

// How each grouping key is shown in the breakdown table.
const DIMENSIONS = {
  DAY: { label: "Day", cell: (row) => row.day },
  CYCLE: { label: "Cycle start", cell: (row) => formatDate(row.cycleStart) },
  WORKBOOK: { label: "Workbook", cell: (row) => row.workbookName ?? row.workbookId ?? "—" },
  TABLE: { label: "Table", cell: (row) => row.tableId ?? "(no table)" },
  PROVIDER: { label: "Provider", cell: (row) => row.provider ?? "—" },
  KIND: { label: "Kind", cell: (row) => humanize(row.kind) },
};

const state = {
  key: null,
  workspace: null,
  viewer: null,
  range: null, // { from, to }: ISO instants, to exclusive
  ledgerCursors: [null], // the `after` of each page seen so far
  chart: null,
  seq: { usage: 0, ledger: 0 },
};

const $ = (id) => document.getElementById(id);

class ApiError extends Error {
  constructor(message, code) {
    super(message);
    this.code = code;
  }
}

// ---- talking to the API ------------------------------------------------------------------

async function gql(query, variables = {}, key = state.key) {
  let response;
  try {
    response = await fetch("/graphql", {
      method: "POST",
      headers: { "Content-Type": "application/json", Authorization: `Bearer ${key}` },
      body: JSON.stringify({ query, variables }),
    });
  } catch {
    throw new ApiError("Could not reach Tally. Check the connection and try again.", "NETWORK");
  }
  let body;
  try {
    body = await response.json();
  } catch {
    throw new ApiError(`Tally answered with HTTP ${response.status}.`, "HTTP");
  }
  if (body.errors && body.errors.length > 0) {
    const [first] = body.errors;
    throw new ApiError(first.message, first.extensions?.code ?? "ERROR");
  }
  return body.data;
}

// ---- formatting ----------------------------------------------------------------------------

const dateFormat = new Intl.DateTimeFormat("en-US", {
  month: "short", day: "numeric", year: "numeric", timeZone: "UTC",
});
const shortDate = new Intl.DateTimeFormat("en-US", {
  month: "short", day: "numeric", timeZone: "UTC",
});
const intFormat = new Intl.NumberFormat("en-US");

function formatInt(n) {
  return intFormat.format(n);
}

// A Decimal string with thousands separators, digits untouched: "12345.5" -> "12,345.5".
function formatDecimal(value, { signed = false } = {}) {
  const text = String(value);
  const negative = text.startsWith("-");
  const [whole, fraction] = text.replace(/^[-+]/, "").split(".");
  const grouped = whole.replace(/\B(?=(\d{3})+(?!\d))/g, ",");
  const sign = negative ? "−" : signed && !/^0*(\.0*)?$/.test(text) ? "+" : "";
  return sign + grouped + (fraction ? `.${fraction}` : "");
}

// Exact sums of Decimal strings (the API sends at most four decimal places).
const SCALE = 4;
function toUnits(value) {
  const text = String(value);
  const negative = text.startsWith("-");
  const [whole, fraction = ""] = text.replace(/^[-+]/, "").split(".");
  const units = BigInt(whole || "0") * 10n ** BigInt(SCALE) +
    BigInt((fraction + "0".repeat(SCALE)).slice(0, SCALE));
  return negative ? -units : units;
}
function fromUnits(units) {
  const negative = units < 0n;
  const abs = negative ? -units : units;
  const base = 10n ** BigInt(SCALE);
  const fraction = (abs % base).toString().padStart(SCALE, "0").replace(/0+$/, "");
  return (negative ? "-" : "") + (abs / base).toString() + (fraction ? `.${fraction}` : "");
}

function formatDate(iso) {
  return iso ? dateFormat.format(new Date(iso)) : "—";
}

function formatDateTime(iso) {
  return new Date(iso).toISOString().slice(0, 16).replace("T", " ");
}

// "ENRICHMENT" -> "Enrichment", "DATA_CREDITS" -> "Data credits".
function humanize(code) {
  if (!code) return "—";
  const words = code.toLowerCase().replace(/_/g, " ");
  return words.charAt(0).toUpperCase() + words.slice(1);
}

const METER_NAMES = { ACTIONS: "Actions", DATA_CREDITS: "Data Credits" };

// ---- small DOM helpers ---------------------------------------------------------------------

function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(props)) {
    if (name === "class") node.className = value;
    else if (name === "dataset") Object.assign(node.dataset, value);
    else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else if (value !== undefined && value !== null && value !== false) {
      node.setAttribute(name, value);
    }
  }
  node.append(...children.filter((c) => c !== null && c !== undefined));
  return node;
}

function setText(id, text) {
  $(id).textContent = text;
}

function showMessage(node, text) {
  node.textContent = text ?? "";
  node.hidden = !text;
}

// ---- dates and ranges (UTC) ----------------------------------------------------------------

function isoDay(ms) {
  return new Date(ms).toISOString().slice(0, 10);
}

function dayStart(day) {
  return Date.parse(`${day}T00:00:00Z`);
}

// The date inputs name whole UTC days; `to` is the last day included.
function rangeFromInputs() {
  const fromDay = $("range-from").value;
  const toDay = $("range-to").value;
  if (!fromDay || !toDay) throw new ApiError("Choose both dates.", "INPUT");
  if (fromDay > toDay) throw new ApiError("The start date is after the end date.", "INPUT");
  return {
    from: new Date(dayStart(fromDay)).toISOString(),
    to: new Date(dayStart(toDay) + DAY_MS).toISOString(),
  };
}

function showRangeInInputs(range) {
  $("range-from").value = isoDay(Date.parse(range.from));
  $("range-to").value = isoDay(Date.parse(range.to) - 1);
}

function cycleRange() {
  const { start, end } = state.workspace.currentPeriod;
  return { from: start, to: end };
}

// Every UTC day the range touches, so days without usage are drawn as zero.
function daysOf(range) {
  const days = [];
  const last = Date.parse(range.to) - 1;
  for (let t = dayStart(isoDay(Date.parse(range.from))); t <= last; t += DAY_MS) {
    days.push(isoDay(t));
  }
  return days;
}

// ---- login and logout ----------------------------------------------------------------------

function showLogin(message) {
  $("dashboard").hidden = true;
  $("who").hidden = true;
  $("login").hidden = false;
  showMessage($("login-error"), message);
  $("login-key").focus();
}

function loginMessage(error) {
  if (error.code === "UNAUTHENTICATED") {
    return "That key was not accepted. Check that it is a current API key and try again.";
  }
  if (error.code === "FORBIDDEN") {
    return "That is the operator key. Open the dashboard with a workspace API key.";
  }
  return error.message;
}

async function onLogin(event) {
  event.preventDefault();
  const key = $("login-key").value.trim();
  if (!key) return;
  const button = $("login-submit");
  button.disabled = true;
  button.textContent = "Checking…";
  showMessage($("login-error"), "");
  try {
    const data = await gql(DASHBOARD_QUERY, {}, key);
    state.key = key;
    sessionStorage.setItem(KEY_STORAGE, key);
    $("login-key").value = "";
    openDashboard(data);
  } catch (error) {
    showMessage($("login-error"), loginMessage(error));
  } finally {
    button.disabled = false;
    button.textContent = "Open dashboard";
  }
}

function logout(message) {
  sessionStorage.removeItem(KEY_STORAGE);
  Object.assign(state, { key: null, workspace: null, viewer: null, range: null });
  state.ledgerCursors = [null];
  destroyChart();
  showLogin(message);
}

// ---- the dashboard -------------------------------------------------------------------------

async function start() {
  wireEvents();
  state.key = sessionStorage.getItem(KEY_STORAGE);
  if (!state.key) {
    showLogin();
    return;
  }
  $("login").hidden = true;
  $("dashboard").hidden = false;
  showMessage($("page-status"), "Loading…");
  try {
    openDashboard(await gql(DASHBOARD_QUERY));
  } catch (error) {
    if (error.code === "UNAUTHENTICATED" || error.code === "FORBIDDEN") {
      logout(loginMessage(error));
    } else {
      showMessage($("page-status"), "");
      showMessage($("page-error"), `The dashboard could not be loaded: ${error.message}`);
    }
  }
}

function openDashboard(data) {
  state.workspace = data.workspace;
  state.viewer = data.viewer;
  state.range = cycleRange();
  state.ledgerCursors = [null];
  $("login").hidden = true;
  $("dashboard").hidden = false;
  showMessage($("page-status"), "");
  showMessage($("page-error"), "");
  renderWho();
  renderSummary();
  renderWorkbookFilter();
  renderWorkbooks();
  showRangeInInputs(state.range);
  loadUsage();
  loadLedger();
}

function renderWho() {
  const { viewer, workspace } = state;
  setText("who-workspace", workspace.name);
  setText("who-key", `Key “${viewer.apiKey.name}” · ${humanize(viewer.role)}`);
  $("who").hidden = false;
  $("member-note").hidden = viewer.role !== "MEMBER";
}

function renderSummary() {
  const ws = state.workspace;
  setText("plan-name", ws.plan.name);
  setText(
    "plan-tier",
    ws.creditTier === null ? "Trial" : `${formatInt(ws.creditTier)} Data Credits a month`,
  );
  setText("plan-interval", humanize(ws.billingInterval));
  setText("plan-status", humanize(ws.status));
  setText(
    "plan-cycle",
    `${formatDate(ws.currentPeriod.start)} – ${formatDate(ws.currentPeriod.end)}`,
  );
  const trial = $("plan-trial");
  showMessage(trial, ws.trialEndsAt ? `Trial ends ${formatDate(ws.trialEndsAt)}.` : "");
  const change = ws.pendingChange;
  let pending = "";
  if (change) {
    const tier = change.creditTier === null ? "" : `, ${formatInt(change.creditTier)} Data Credits`;
    pending = `Changes to ${change.plan.name} (${humanize(change.billingInterval).toLowerCase()}` +
      `${tier}) on ${formatDate(change.effectiveAt)}.`;
  }
  showMessage($("plan-pending"), pending);

  const actions = ws.actions;
  setText("actions-used", formatInt(actions.used));
  setText("actions-capacity", formatInt(actions.capacity));
  setText("actions-remaining", formatInt(actions.remaining));
  setText("actions-resets", formatDate(actions.resetsAt));
  setBar("actions-bar", actions.capacity ? actions.used / actions.capacity : 0);

  const credits = ws.dataCredits;
  setText("credits-balance", formatDecimal(credits.balance));
  setText("credits-cap", formatDecimal(credits.cap));
  setText("credits-grant", formatDecimal(credits.monthlyGrant));
  setText("credits-held", formatDecimal(credits.held));
  setText("credits-available", formatDecimal(credits.available));
  const cap = Number(credits.cap);
  setBar("credits-bar", cap > 0 ? Number(credits.balance) / cap : 0);
}

function setBar(id, fraction) {
  const clamped = Math.max(0, Math.min(1, fraction));
  $(id).style.width = `${(clamped * 100).toFixed(1)}%`;
}

function renderWorkbookFilter() {
  const select = $("range-workbook");
  const chosen = select.value;
  select.replaceChildren(el("option", { value: "" }, "All workbooks"));
  for (const wb of state.workspace.workbooks) {
    select.append(el("option", { value: wb.id }, wb.name));
  }
  select.value = state.workspace.workbooks.some((wb) => wb.id === chosen) ? chosen : "";
}

// ---- usage: chart and breakdown ------------------------------------------------------------

function usageVariables() {
  return {
    from: state.range.from,
    to: state.range.to,
    groupBy: $("group-by").value.split(","),
    workbookId: $("range-workbook").value || null,
  };
}

async function loadUsage() {
  const seq = ++state.seq.usage;
  showMessage($("usage-error"), "");
  showMessage($("chart-status"), "Loading…");
  showMessage($("breakdown-status"), "Loading…");
  const variables = usageVariables();
  let data;
  try {
    data = await gql(USAGE_QUERY, variables);
  } catch (error) {
    if (seq !== state.seq.usage) return;
    showMessage($("chart-status"), "");
    showMessage($("breakdown-status"), "");
    showMessage($("usage-error"), `Usage could not be loaded: ${error.message}`);
    destroyChart();
    $("breakdown").hidden = true;
    return;
  }
  if (seq !== state.seq.usage) return; // a newer request is on its way
  renderChart(data.daily);
  renderBreakdown(data.breakdown, variables.groupBy);
}

function destroyChart() {
  if (state.chart) {
    state.chart.destroy();
    state.chart = null;
  }
}

// The days drawn: the range's, but none after today (or after the last day with usage), so a
// cycle that has just begun is not a year of empty space.
function chartDays(rows) {
  const last = [isoDay(Date.now()), ...rows.map((row) => row.day)].sort().at(-1);
  return daysOf(state.range).filter((day) => day <= last);
}

// Ticks on whole UTC days, few enough to stay readable at the chart's width.
function daySplits(u, axisIdx, min, max) {
  const first = dayStart(isoDay(Math.ceil(min) * 1000)) / 1000;
  const days = Math.floor((max - first) / 86_400) + 1;
  const labels = Math.max(2, Math.floor(u.bbox.width / devicePixelRatio / 90)); // that fit
  const step = Math.max(1, Math.ceil(days / labels));
  const splits = [];
  for (let t = first < min ? first + 86_400 : first; t <= max; t += step * 86_400) splits.push(t);
  return splits;
}

function renderChart(rows) {
  destroyChart();
  const container = $("chart");
  if (rows.length === 0) {
    showMessage($("chart-status"), "No usage in this range yet.");
    return;
  }
  showMessage($("chart-status"), "");
  const byDay = new Map(rows.map((row) => [row.day, row]));
  const days = chartDays(rows);
  const xs = days.map((day) => dayStart(day) / 1000);
  const actions = days.map((day) => byDay.get(day)?.actions ?? 0);
  const creditTexts = days.map((day) => byDay.get(day)?.dataCredits ?? "0");
  const credits = creditTexts.map(Number); // drawn only; the legend shows the exact string
  // Away from the cursor, the legend shows the range's totals.
  const totalActions = formatInt(actions.reduce((sum, n) => sum + n, 0));
  const totalCredits = formatDecimal(fromUnits(creditTexts.reduce((s, c) => s + toUnits(c), 0n)));
  const halfDay = 43_200;
  const opts = {
    width: Math.max(container.clientWidth, 200),
    height: CHART_HEIGHT,
    tzDate: (ts) => uPlot.tzDate(new Date(ts * 1000), "Etc/UTC"),
    cursor: { drag: { x: false, y: false } },
    scales: {
      // The days drawn, and half a day each side so the first and last bars are whole (uPlot
      // would stretch a single day to a thousand).
      x: { time: true, range: () => [xs[0] - halfDay, xs[xs.length - 1] + halfDay] },
      actions: { range: (u, min, max) => [0, Math.max(max, 1) * 1.1] },
      credits: { range: (u, min, max) => [0, Math.max(max, 1) * 1.1] },
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
        value: (u, v) => (v === null ? totalCredits : formatDecimal(creditTexts[u.cursor.idx])),
      },
    ],
    axes: [
      {
        stroke: "#5b6270",
        grid: { show: false },
        splits: daySplits,
        values: (u, splits) => splits.map((t) => shortDate.format(new Date(t * 1000))),
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
    ],
  };
  state.chart = new uPlot(opts, [xs, actions, credits], container);
}

function fitChart() {
  if (state.chart) {
    state.chart.setSize({ width: Math.max($("chart").clientWidth, 200), height: CHART_HEIGHT });
  }
}

function renderBreakdown(rows, groupBy) {
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
  let totalActions = 0;
  let totalCredits = 0n;
  let totalResults = 0;
  const body = rows.map((row) => {
    totalActions += row.actions;
    totalCredits += toUnits(row.dataCredits);
    totalResults += row.results;
    return el(
      "tr",
      {},
      ...keys.map((key) => el("td", { "data-label": key.label }, key.cell(row))),
      el("td", { class: "num", "data-label": "Actions" }, formatInt(row.actions)),
      el("td", { class: "num", "data-label": "Data Credits" }, formatDecimal(row.dataCredits)),
      el("td", { class: "num", "data-label": "Results" }, formatInt(row.results)),
    );
  });
  const total = el(
    "tr",
    { class: "total" },
    el("th", { colspan: String(keys.length), scope: "row" }, "Total"),
    el("td", { class: "num", "data-label": "Actions" }, formatInt(totalActions)),
    el(
      "td",
      { class: "num", "data-label": "Data Credits" },
      formatDecimal(fromUnits(totalCredits)),
    ),
    el("td", { class: "num", "data-label": "Results" }, formatInt(totalResults)),
  );
  table.tBodies[0].replaceChildren(...body, total);
  table.hidden = false;
}

async function onApplyRange(event) {
  event.preventDefault();
  try {
    state.range = rangeFromInputs();
  } catch (error) {
    showMessage($("usage-error"), error.message);
    return;
  }
  loadUsage();
}

function onCurrentCycle() {
  state.range = cycleRange();
  showRangeInInputs(state.range);
  loadUsage();
}

// ---- CSV export ----------------------------------------------------------------------------

function csvFilename(response) {
  const header = response.headers.get("Content-Disposition") ?? "";
  const match = /filename="?([^";]+)"?/.exec(header);
  if (match) return match[1];
  return `tally-usage-${$("range-from").value}-to-${$("range-to").value}.csv`;
}

async function onDownloadCsv() {
  const button = $("download-csv");
  const { from, to, groupBy, workbookId } = usageVariables();
  const params = new URLSearchParams({ from, to, groupBy: groupBy.join(",") });
  if (workbookId) params.set("workbookId", workbookId);
  showMessage($("csv-error"), "");
  button.disabled = true;
  button.textContent = "Preparing…";
  try {
    let response;
    try {
      // A link cannot carry the Authorization header, so the file is fetched and then saved.
      response = await fetch(`/usage.csv?${params}`, {
        headers: { Authorization: `Bearer ${state.key}` },
      });
    } catch {
      throw new Error("Could not reach Tally. Check the connection and try again.");
    }
    if (!response.ok) throw new Error(await csvError(response));
    const url = URL.createObjectURL(await response.blob());
    const link = el("a", { href: url, download: csvFilename(response) });
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10_000);
  } catch (error) {
    showMessage($("csv-error"), `The CSV could not be downloaded: ${error.message}`);
  } finally {
    button.disabled = false;
    button.textContent = "Download CSV";
  }
}

async function csvError(response) {
  const text = await response.text();
  try {
    const body = JSON.parse(text);
    return body.errors?.[0]?.message ?? body.message ?? body.error ?? text;
  } catch {
    return text.trim() || `HTTP ${response.status}`;
  }
}

// ---- workbook spend limits -----------------------------------------------------------------

function renderWorkbooks() {
  const table = $("workbooks");
  const workbooks = state.workspace.workbooks;
  if (workbooks.length === 0) {
    table.hidden = true;
    showMessage($("workbooks-status"), "No workbooks yet.");
    return;
  }
  showMessage($("workbooks-status"), "");
  table.tBodies[0].replaceChildren(...workbooks.map(workbookRow));
  table.hidden = false;
}

function workbookRow(wb) {
  const message = el("p", { class: "row-message", role: "status", hidden: true });
  const input = el("input", {
    type: "text",
    inputmode: "decimal",
    placeholder: "Data Credits",
    "aria-label": `Spend limit for ${wb.name}`,
    value: wb.spendLimit ?? "",
  });
  const form = el(
    "form",
    { class: "limit-form", onsubmit: (event) => onSetLimit(event, wb, input, message) },
    input,
    el("button", { type: "submit", class: "button small" }, "Set"),
    wb.spendLimit === null
      ? null
      : el(
        "button",
        {
          type: "button",
          class: "button small secondary",
          onclick: () => changeLimit(wb, null, message),
        },
        "Remove",
      ),
  );
  return el(
    "tr",
    { dataset: { workbookId: wb.id } },
    el("td", { "data-label": "Workbook" }, wb.name),
    // `spent` counts from when the limit was set; without a limit nothing is counted.
    el(
      "td",
      { class: "num", "data-label": "Spent since limit set" },
      wb.spendLimit === null ? "—" : formatDecimal(wb.spent),
    ),
    el(
      "td",
      { class: "num", "data-label": "Limit" },
      wb.spendLimit === null ? "No limit" : formatDecimal(wb.spendLimit),
    ),
    el("td", { class: "block", "data-label": "Change limit" }, form, message),
  );
}

function onSetLimit(event, wb, input, message) {
  event.preventDefault();
  const limit = input.value.trim().replace(/,/g, "");
  if (!/^\d+(\.\d{1,4})?$/.test(limit)) {
    showRowMessage(message, "Enter a number of Data Credits, such as 500 or 12.5.", true);
    return;
  }
  changeLimit(wb, limit, message);
}

function showRowMessage(node, text, isError) {
  node.className = isError ? "row-message error" : "row-message ok";
  node.setAttribute("role", isError ? "alert" : "status");
  showMessage(node, text);
}

async function changeLimit(wb, limit, message) {
  const row = message.closest("tr");
  for (const button of row.querySelectorAll("button")) button.disabled = true;
  showRowMessage(message, limit === null ? "Removing…" : "Saving…", false);
  let result;
  try {
    const data = await gql(SET_LIMIT_MUTATION, { workbookId: wb.id, limit });
    result = data.setWorkbookSpendLimit;
  } catch (error) {
    result = { __typename: "Error", message: error.message };
  }
  if (result.__typename !== "Workbook") {
    for (const button of row.querySelectorAll("button")) button.disabled = false;
    showRowMessage(message, result.message, true);
    return;
  }
  const updated = { ...wb, ...result };
  state.workspace.workbooks = state.workspace.workbooks.map((w) => (w.id === wb.id ? updated : w));
  const fresh = workbookRow(updated);
  row.replaceWith(fresh);
  const done = fresh.querySelector(".row-message");
  showRowMessage(
    done,
    limit === null ? "Limit removed." : `Limit set to ${formatDecimal(result.spendLimit)}.`,
    false,
  );
}

// ---- ledger --------------------------------------------------------------------------------

async function loadLedger() {
  const seq = ++state.seq.ledger;
  const page = state.ledgerCursors.length - 1;
  const after = state.ledgerCursors[page];
  showMessage($("ledger-status"), "Loading…");
  $("ledger-prev").disabled = true;
  $("ledger-next").disabled = true;
  let connection;
  try {
    connection = (await gql(LEDGER_QUERY, { first: LEDGER_PAGE_SIZE, after })).ledger;
  } catch (error) {
    if (seq !== state.seq.ledger) return;
    showMessage($("ledger-status"), `The ledger could not be loaded: ${error.message}`);
    $("ledger-prev").disabled = page === 0;
    return;
  }
  if (seq !== state.seq.ledger) return;
  renderLedger(connection, page);
}

function renderLedger(connection, page) {
  const table = $("ledger");
  const names = new Map(state.workspace.workbooks.map((wb) => [wb.id, wb.name]));
  if (connection.edges.length === 0) {
    table.hidden = true;
    showMessage($("ledger-status"), page === 0 ? "No ledger entries yet." : "No more entries.");
  } else {
    showMessage($("ledger-status"), "");
    table.tBodies[0].replaceChildren(
      ...connection.edges.map(({ node }) =>
        el(
          "tr",
          { dataset: { entryId: node.id } },
          el("td", { class: "nowrap", "data-label": "Time" }, formatDateTime(node.createdAt)),
          el("td", { "data-label": "Entry" }, humanize(node.entryType)),
          el("td", { "data-label": "Meter" }, METER_NAMES[node.meter] ?? node.meter),
          el(
            "td",
            { "data-label": "Workbook" },
            node.workbookId ? names.get(node.workbookId) ?? node.workbookId : "—",
          ),
          el(
            "td",
            {
              class: `num ${node.amount.startsWith("-") ? "debit" : "credit"}`,
              "data-label": "Amount",
            },
            formatDecimal(node.amount, { signed: true }),
          ),
          el(
            "td",
            { class: "num", "data-label": "Balance after" },
            formatDecimal(node.balanceAfter),
          ),
        )
      ),
    );
    table.hidden = false;
  }
  setText("ledger-page", `Page ${page + 1}`);
  $("ledger-prev").disabled = page === 0;
  const next = $("ledger-next");
  next.disabled = !connection.pageInfo.hasNextPage;
  next.dataset.after = connection.pageInfo.endCursor ?? "";
}

function onLedgerNext() {
  const after = $("ledger-next").dataset.after;
  if (!after) return;
  state.ledgerCursors.push(after);
  loadLedger();
}

function onLedgerPrev() {
  if (state.ledgerCursors.length > 1) {
    state.ledgerCursors.pop();
    loadLedger();
  }
}

// ---- wiring --------------------------------------------------------------------------------

function wireEvents() {
  $("login-form").addEventListener("submit", onLogin);
  $("logout").addEventListener("click", () => logout());
  $("range-form").addEventListener("submit", onApplyRange);
  $("range-cycle").addEventListener("click", onCurrentCycle);
  $("range-workbook").addEventListener("change", () => loadUsage());
  $("group-by").addEventListener("change", () => loadUsage());
  $("download-csv").addEventListener("click", onDownloadCsv);
  $("ledger-next").addEventListener("click", onLedgerNext);
  $("ledger-prev").addEventListener("click", onLedgerPrev);
  new ResizeObserver(fitChart).observe($("chart"));
}

start();
