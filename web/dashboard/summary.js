// The top of the page: whose key this is, the plan, and both meters (Actions, Data Credits).

import { fillPercent, formatDecimal } from "./decimal.js";
import { $, setText, showMessage } from "./dom.js";
import { formatDate, formatInt, humanize } from "./format.js";
import { session } from "./state.js";

export function renderWho() {
  const { viewer, workspace } = session;
  setText("who-workspace", workspace.name);
  setText("who-key", `Key “${viewer.apiKey.name}” · ${humanize(viewer.role)}`);
  $("who").hidden = false;
  $("member-note").hidden = viewer.role !== "MEMBER";
}

export function renderSummary() {
  const ws = session.workspace;
  renderPlan(ws);
  renderActions(ws.actions);
  renderCredits(ws.dataCredits);
}

function renderPlan(ws) {
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
  showMessage($("plan-trial"), ws.trialEndsAt ? `Trial ends ${formatDate(ws.trialEndsAt)}.` : "");
  showMessage($("plan-pending"), pendingChangeText(ws.pendingChange));
}

// "Changes to Growth (monthly, 10,000 Data Credits) on Feb 1, 2025.", or "" when none is due.
function pendingChangeText(change) {
  if (!change) return "";
  const tier = change.creditTier === null ? "" : `, ${formatInt(change.creditTier)} Data Credits`;
  return `Changes to ${change.plan.name} (${humanize(change.billingInterval).toLowerCase()}` +
    `${tier}) on ${formatDate(change.effectiveAt)}.`;
}

function renderActions(actions) {
  setText("actions-used", formatInt(actions.used));
  setText("actions-capacity", formatInt(actions.capacity));
  setText("actions-remaining", formatInt(actions.remaining));
  setText("actions-resets", formatDate(actions.resetsAt));
  $("actions-bar").style.width = fillPercent(actions.used, actions.capacity);
}

function renderCredits(credits) {
  setText("credits-balance", formatDecimal(credits.balance));
  setText("credits-cap", formatDecimal(credits.cap));
  setText("credits-grant", formatDecimal(credits.monthlyGrant));
  setText("credits-held", formatDecimal(credits.held));
  setText("credits-available", formatDecimal(credits.available));
  // The balance against the rollover cap, computed exactly (not as floats).
  $("credits-bar").style.width = fillPercent(credits.balance, credits.cap);
}
