// Tally's workspace dashboard. It uses only the public GraphQL API (POST /graphql) and the
// usage export (GET /usage.csv), with the API key the user typed in, as any frontend would.
// Amounts arrive as Decimal strings and are shown as they are (with thousands separators);
// they become numbers only to be drawn on the chart.
//
// This module logs in and out and opens the workspace; each part of the page is its own module.

import { closeAlerts, openAlerts, wireAlerts } from "./alerts.js";
import { currentKey, forgetKey, gql, keepKey, restoreKey } from "./api.js";
import { closeAudit, openAudit, wireAudit } from "./audit.js";
import { closeAutoTopUp, openAutoTopUp, wireAutoTopUp } from "./autotopup.js";
import { closeBalanceAt, openBalanceAt, wireBalanceAt } from "./balanceat.js";
import { watchChartSize } from "./chart.js";
import { wireCsv } from "./csv.js";
import { wireDeliveries } from "./deliveries.js";
import { $, showMessage } from "./dom.js";
import { closeEventList, openEventList, refreshEventList, wireEventList } from "./events.js";
import { closeLedger, openLedger, refreshLedger, wireLedger } from "./ledger.js";
import { refreshWorkbooks, renderWorkbooks } from "./limits.js";
import { WORKSPACE_FIELDS, closeLive, openLive } from "./live.js";
import { coalesce } from "./livestate.js";
import { session } from "./state.js";
import { renderSummary, renderWho } from "./summary.js";
import { closeUsage, openUsage, refreshUsage, wireUsage } from "./usage.js";
import { closeWebhooks, openWebhooks, wireWebhooks } from "./webhooks.js";

const DASHBOARD_QUERY = `query Dashboard {
  viewer { role apiKey { name } }
  workspace { ${WORKSPACE_FIELDS} }
}`;
const WORKSPACE_QUERY = `query Workspace { workspace { ${WORKSPACE_FIELDS} } }`;

// Reloads what a change moves (the chart and breakdown, the ledger's page, the newest events);
// changes arriving during a reload merge into one more.
const refreshPanels = coalesce(() =>
  Promise.all([refreshUsage(), refreshLedger(), refreshEventList()]));

async function start() {
  wireEvents();
  if (!restoreKey()) {
    showLogin();
    return;
  }
  $("login").hidden = true;
  $("dashboard").hidden = false;
  showMessage($("page-status"), "Loading…");
  try {
    openDashboard(await gql(DASHBOARD_QUERY));
  } catch (error) {
    if (isRefusedKey(error)) {
      logout(loginMessage(error));
    } else {
      showMessage($("page-status"), "");
      showMessage($("page-error"), `The dashboard could not be loaded: ${error.message}`);
    }
  }
}

function wireEvents() {
  $("login-form").addEventListener("submit", onLogin);
  $("logout").addEventListener("click", () => logout());
  wireUsage();
  wireCsv();
  wireLedger();
  wireAlerts();
  wireAutoTopUp();
  wireEventList();
  wireWebhooks();
  wireDeliveries();
  wireBalanceAt();
  wireAudit();
  watchChartSize();
}

// A key the API will not take (unknown, revoked, the operator's), as opposed to a failure.
function isRefusedKey(error) {
  return error.code === "UNAUTHENTICATED" || error.code === "FORBIDDEN";
}

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
    keepKey(key);
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
  closeLive();
  forgetKey();
  Object.assign(session, { workspace: null, viewer: null });
  closeUsage();
  closeLedger();
  closeAlerts();
  closeAutoTopUp();
  closeEventList();
  closeWebhooks();
  closeBalanceAt();
  closeAudit();
  showLogin(message);
}

function openDashboard(data) {
  Object.assign(session, { workspace: data.workspace, viewer: data.viewer });
  $("login").hidden = true;
  $("dashboard").hidden = false;
  showMessage($("page-status"), "");
  showMessage($("page-error"), "");
  renderWho();
  renderSummary();
  renderWorkbooks();
  openUsage();
  openLedger();
  openAlerts();
  openAutoTopUp();
  openEventList();
  openWebhooks();
  openBalanceAt();
  openAudit();
  openLive({ key: currentKey(), onWorkspace: onLiveWorkspace, poll, onState: showLiveState });
}

// The workspace as it is now, from the socket or a poll: the meters and the workbooks' figures
// at once; true when anything differs from what was shown. The session keeps its object (a
// panel's answer checks it to know the user did not log out meanwhile).
function applyWorkspace(workspace) {
  if (!session.workspace) return false;
  const before = JSON.stringify(session.workspace);
  if (JSON.stringify(workspace) === before) return false;
  Object.assign(session.workspace, workspace);
  renderSummary();
  refreshWorkbooks();
  return true;
}

// A socket's first message is the state when it opened: the panels reload only when it differs
// from what the page shows (after a reconnect, say); every later one follows a commit.
function onLiveWorkspace(workspace, first) {
  const changed = applyWorkspace(workspace);
  if (!first || changed) refreshPanels().catch(() => {});
}

// One round of polling while the socket is lost: the workspace, then the panels.
async function poll() {
  const data = await gql(WORKSPACE_QUERY);
  applyWorkspace(data.workspace);
  await refreshPanels();
}

function showLiveState(view, state) {
  const line = $("live-status");
  line.dataset.phase = state.phase;
  line.dataset.tone = view.tone;
  line.setAttribute("role", view.tone === "error" ? "alert" : "status");
  showMessage(line, view.text);
}

start();
