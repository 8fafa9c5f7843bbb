// Tally's workspace dashboard. It uses only the public GraphQL API (POST /graphql) and the
// usage export (GET /usage.csv), with the API key the user typed in, as any frontend would.
// Amounts arrive as Decimal strings and are shown as they are (with thousands separators);
// they become numbers only to be drawn on the chart.
//
// This module logs in and out and opens the workspace; each part of the page is its own module.

import { closeAlerts, openAlerts, wireAlerts } from "./alerts.js";
import { forgetKey, gql, keepKey, restoreKey } from "./api.js";
import { closeAutoTopUp, openAutoTopUp, wireAutoTopUp } from "./autotopup.js";
import { watchChartSize } from "./chart.js";
import { wireCsv } from "./csv.js";
import { wireDeliveries } from "./deliveries.js";
import { $, showMessage } from "./dom.js";
import { closeEventList, openEventList, wireEventList } from "./events.js";
import { closeLedger, openLedger, wireLedger } from "./ledger.js";
import { renderWorkbooks } from "./limits.js";
import { session } from "./state.js";
import { renderSummary, renderWho } from "./summary.js";
import { closeUsage, openUsage, wireUsage } from "./usage.js";
import { closeWebhooks, openWebhooks, wireWebhooks } from "./webhooks.js";

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
  forgetKey();
  Object.assign(session, { workspace: null, viewer: null });
  closeUsage();
  closeLedger();
  closeAlerts();
  closeAutoTopUp();
  closeEventList();
  closeWebhooks();
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
}

start();
