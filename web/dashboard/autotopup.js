// Auto top-up (R37): Data Credits bought by themselves when available falls below a threshold,
// at most a number of times a cycle. Any key sees the settings; an admin key sets them or turns
// them off, and a plan without the feature (free, a trial) answers with a Refusal, shown as is.

import { gql, loadErrorText } from "./api.js";
import { formatDecimal } from "./decimal.js";
import { $, setText, showMessage, showOutcome } from "./dom.js";
import { formatInt } from "./format.js";
import { autoTopUpInput } from "./inputs.js";
import { isAdmin, session } from "./state.js";

const FIELDS = "enabled threshold credits maxPerCycle usedThisCycle";
const AUTO_TOP_UP_QUERY = `query AutoTopUp { autoTopUp { ${FIELDS} } }`;
const SET_AUTO_TOP_UP_MUTATION = `mutation SetAutoTopUp($input: AutoTopUpInput) {
  setAutoTopUp(input: $input) {
    __typename
    ... on AutoTopUp { ${FIELDS} }
    ... on Refusal { code message }
  }
}`;

let requests = 0; // numbers each load, so only the newest one's answer is shown

export function wireAutoTopUp() {
  $("autotopup-form").addEventListener("submit", onSave);
  $("autotopup-off").addEventListener("click", onTurnOff);
}

// A workspace was opened: its settings, and the form for an admin only.
export function openAutoTopUp() {
  const admin = isAdmin();
  $("autotopup-form").hidden = true;
  $("autotopup-member").hidden = admin;
  $("autotopup-facts").hidden = true;
  showMessage($("autotopup-message"), "");
  loadAutoTopUp();
}

// Logged out: an answer still on its way is dropped.
export function closeAutoTopUp() {
  requests++;
}

async function loadAutoTopUp() {
  const seq = ++requests;
  showMessage($("autotopup-status"), "Loading…");
  let config;
  try {
    config = (await gql(AUTO_TOP_UP_QUERY)).autoTopUp;
  } catch (error) {
    if (seq !== requests) return;
    showMessage($("autotopup-status"), loadErrorText(error, "the auto top-up settings"));
    return;
  }
  if (seq !== requests) return;
  showMessage($("autotopup-status"), "");
  renderAutoTopUp(config, true);
}

// The settings (null, or `enabled` false: off); `fill` puts them in the form's inputs.
function renderAutoTopUp(config, fill) {
  const on = Boolean(config?.enabled);
  setText("autotopup-state", on ? "On" : "Off");
  setText("autotopup-threshold", on ? `${formatDecimal(config.threshold)} Data Credits` : "—");
  setText("autotopup-credits", on ? `${formatDecimal(config.credits)} Data Credits` : "—");
  setText("autotopup-max", on ? `${formatInt(config.maxPerCycle)} a cycle` : "—");
  setText(
    "autotopup-used",
    on ? `${formatInt(config.usedThisCycle)} of ${formatInt(config.maxPerCycle)}` : "—",
  );
  $("autotopup-facts").hidden = false;
  if (!isAdmin()) return;
  $("autotopup-form").hidden = false;
  $("autotopup-off").hidden = !on;
  $("autotopup-save").textContent = on ? "Save" : "Turn on";
  if (fill) {
    $("autotopup-threshold-input").value = on ? config.threshold : "";
    $("autotopup-credits-input").value = on ? config.credits : "";
    $("autotopup-max-input").value = on ? String(config.maxPerCycle) : "3";
  }
}

function onSave(event) {
  event.preventDefault();
  let input;
  try {
    input = autoTopUpInput({
      threshold: $("autotopup-threshold-input").value,
      credits: $("autotopup-credits-input").value,
      maxPerCycle: $("autotopup-max-input").value,
    });
  } catch (error) {
    showOutcome($("autotopup-message"), error.message, true);
    return;
  }
  change(input);
}

function onTurnOff() {
  change(null);
}

// Sets (`input`) or turns off (null) auto top-up; the settings are redrawn with the answer, or
// the refusal is shown and nothing changes.
async function change(input) {
  const workspace = session.workspace;
  const message = $("autotopup-message");
  const buttons = $("autotopup-form").querySelectorAll("button");
  for (const button of buttons) button.disabled = true;
  showOutcome(message, input ? "Saving…" : "Turning off…", false);
  let result;
  try {
    result = (await gql(SET_AUTO_TOP_UP_MUTATION, { input })).setAutoTopUp;
  } catch (error) {
    result = { __typename: "Error", message: error.message };
  }
  if (session.workspace !== workspace) return; // logged out meanwhile
  for (const button of buttons) button.disabled = false;
  if (result.__typename !== "AutoTopUp") {
    showOutcome(message, result.message, true);
    return;
  }
  renderAutoTopUp(result, false); // the inputs keep what was typed, to turn it on again
  showOutcome(
    message,
    result.enabled
      ? `Auto top-up is on: ${formatDecimal(result.credits)} Data Credits when available falls ` +
          `below ${formatDecimal(result.threshold)}, at most ${formatInt(result.maxPerCycle)} ` +
          "times a cycle."
      : "Auto top-up is off.",
    false,
  );
}
