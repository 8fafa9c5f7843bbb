// Alerts (R35): any key sees the workspace's alerts; an admin key adds them (a meter and a
// threshold) and deletes them. An alert fires once a crossing (an event, sent to the webhooks).

import { gql, loadErrorText } from "./api.js";
import { $, el, showMessage, showOutcome } from "./dom.js";
import { alertThresholdText } from "./eventdata.js";
import { formatDateTime, meterName } from "./format.js";
import { alertInput } from "./inputs.js";
import { isAdmin, session } from "./state.js";

const ALERT_FIELDS = "id meter threshold armed lastFiredAt";
const ALERTS_QUERY = `query Alerts { alerts { ${ALERT_FIELDS} } }`;
const SET_ALERT_MUTATION = `mutation SetAlert($input: AlertInput!) {
  setAlert(input: $input) { ${ALERT_FIELDS} }
}`;
const DELETE_ALERT_MUTATION = `mutation DeleteAlert($id: ID!) { deleteAlert(id: $id) { id } }`;

// What the threshold means on each meter, beside its input.
const THRESHOLD_HINTS = {
  DATA_CREDITS: { placeholder: "Data Credits, e.g. 500", unit: "available Data Credits" },
  ACTIONS: { placeholder: "Percent, 1–100", unit: "% of Actions capacity used" },
};

let alerts = []; // the list shown
let requests = 0; // numbers each load, so only the newest one's answer is shown

export function wireAlerts() {
  $("alert-form").addEventListener("submit", onAdd);
  $("alert-meter").addEventListener("change", showThresholdHint);
}

// A workspace was opened: its alerts, with the form and delete buttons for an admin only.
export function openAlerts() {
  const admin = isAdmin();
  $("alert-form").hidden = !admin;
  $("alerts-member").hidden = admin;
  showMessage($("alert-message"), "");
  $("alert-threshold").value = "";
  showThresholdHint();
  alerts = [];
  loadAlerts();
}

// Logged out: an answer still on its way is dropped.
export function closeAlerts() {
  requests++;
  alerts = [];
}

function showThresholdHint() {
  const hint = THRESHOLD_HINTS[$("alert-meter").value];
  $("alert-threshold").placeholder = hint.placeholder;
  $("alert-unit").textContent = hint.unit;
}

async function loadAlerts() {
  const seq = ++requests;
  if ($("alerts").hidden) showMessage($("alerts-status"), "Loading…");
  let answer;
  try {
    answer = (await gql(ALERTS_QUERY)).alerts;
  } catch (error) {
    if (seq !== requests) return;
    $("alerts").hidden = true;
    showMessage($("alerts-status"), loadErrorText(error, "alerts"));
    return;
  }
  if (seq !== requests) return;
  alerts = answer;
  renderAlerts();
}

function renderAlerts() {
  const table = $("alerts");
  const admin = isAdmin();
  $("alerts-delete-head").hidden = !admin;
  if (alerts.length === 0) {
    table.hidden = true;
    showMessage($("alerts-status"), "No alerts yet.");
    return;
  }
  showMessage($("alerts-status"), "");
  table.tBodies[0].replaceChildren(...alerts.map((alert) => alertRow(alert, admin)));
  table.hidden = false;
}

function alertRow(alert, admin) {
  return el(
    "tr",
    { dataset: { alertId: alert.id } },
    el("td", { "data-label": "Meter" }, meterName(alert.meter)),
    el("td", { "data-label": "Fires at" }, alertThresholdText(alert.meter, alert.threshold)),
    el("td", { "data-label": "State" }, alert.armed ? "Armed" : "Fired: re-arms once back"),
    el(
      "td",
      { class: "nowrap", "data-label": "Last fired" },
      alert.lastFiredAt ? formatDateTime(alert.lastFiredAt) : "Never",
    ),
    admin
      ? el(
          "td",
          { "data-label": "" },
          el(
            "button",
            {
              type: "button",
              class: "button small secondary",
              "aria-label": `Delete the ${meterName(alert.meter)} alert at ${alert.threshold}`,
              onclick: (event) => onDelete(alert, event.currentTarget),
            },
            "Delete",
          ),
        )
      : null,
  );
}

async function onAdd(event) {
  event.preventDefault();
  const message = $("alert-message");
  let input;
  try {
    input = alertInput($("alert-meter").value, $("alert-threshold").value);
  } catch (error) {
    showOutcome(message, error.message, true);
    return;
  }
  const workspace = session.workspace;
  const button = $("alert-add");
  button.disabled = true;
  showOutcome(message, "Adding…", false);
  let alert;
  try {
    alert = (await gql(SET_ALERT_MUTATION, { input })).setAlert;
  } catch (error) {
    if (session.workspace !== workspace) return; // logged out meanwhile
    button.disabled = false;
    showOutcome(message, error.message, true);
    return;
  }
  if (session.workspace !== workspace) return;
  button.disabled = false;
  const known = alerts.some((a) => a.id === alert.id);
  const what = `${meterName(alert.meter)}, ${alertThresholdText(alert.meter, alert.threshold)}`;
  showOutcome(message, known ? `That alert is already set: ${what}.` : `Alert added: ${what}.`);
  $("alert-threshold").value = "";
  loadAlerts();
}

async function onDelete(alert, button) {
  const workspace = session.workspace;
  const message = $("alert-message");
  button.disabled = true;
  showOutcome(message, "Deleting…", false);
  try {
    await gql(DELETE_ALERT_MUTATION, { id: alert.id });
  } catch (error) {
    if (session.workspace !== workspace) return;
    button.disabled = false;
    showOutcome(message, error.message, true);
    return;
  }
  if (session.workspace !== workspace) return;
  const what = `${meterName(alert.meter)}, ${alertThresholdText(alert.meter, alert.threshold)}`;
  showOutcome(message, `Alert deleted: ${what}.`, false);
  loadAlerts();
}
