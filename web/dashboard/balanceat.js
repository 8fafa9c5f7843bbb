// "Balance on date": the meters at a past instant, exactly as the ledger had them then (R38's
// balanceAt): Data Credits balance, held and available, Actions used of the month's capacity,
// and the plan. The instant is typed in UTC, like every time on the page.

import { gql } from "./api.js";
import { inputOfInstant, instantOfInput } from "./balances.js";
import { formatDecimal } from "./decimal.js";
import { $, setText, showMessage } from "./dom.js";
import { formatInt } from "./format.js";

const BALANCE_AT_QUERY = `query BalanceAt($at: DateTime!) {
  balanceAt(at: $at) {
    at plan { code name } actionsUsed actionsCapacity dataCredits held available
  }
}`;

let requests = 0; // numbers each load, so only the newest one's answer is shown

export function wireBalanceAt() {
  $("balance-at-form").addEventListener("submit", onShow);
}

// A workspace was opened: the picker starts at this second, nothing shown yet.
export function openBalanceAt() {
  $("balance-at-input").value = inputOfInstant(Date.now());
  $("balance-at-facts").hidden = true;
  showMessage($("balance-at-error"), "");
}

// Logged out: an answer still on its way is dropped.
export function closeBalanceAt() {
  requests++;
  $("balance-at-facts").hidden = true;
}

async function onShow(event) {
  event.preventDefault();
  const at = instantOfInput($("balance-at-input").value);
  showMessage($("balance-at-error"), "");
  if (!at) {
    showMessage($("balance-at-error"), "Choose a date and a time (UTC).");
    return;
  }
  const seq = ++requests;
  const button = $("balance-at-submit");
  button.disabled = true;
  try {
    const snapshot = (await gql(BALANCE_AT_QUERY, { at })).balanceAt;
    if (seq === requests) renderSnapshot(snapshot);
  } catch (error) {
    if (seq !== requests) return;
    $("balance-at-facts").hidden = true;
    showMessage($("balance-at-error"), `No balance for that instant: ${error.message}`);
  } finally {
    button.disabled = false;
  }
}

function renderSnapshot(snapshot) {
  const when = new Date(snapshot.at).toISOString().slice(0, 19).replace("T", " ");
  setText("balance-at-when", `${when} UTC`);
  setText("balance-at-plan", snapshot.plan.name);
  setText("balance-at-credits", formatDecimal(snapshot.dataCredits));
  setText("balance-at-held", formatDecimal(snapshot.held));
  setText("balance-at-available", formatDecimal(snapshot.available));
  setText(
    "balance-at-actions",
    `${formatInt(snapshot.actionsUsed)} of ${formatInt(snapshot.actionsCapacity)}`,
  );
  $("balance-at-facts").hidden = false;
}
