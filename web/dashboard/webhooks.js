// Webhook endpoints (R36), for an admin key only (the API answers FORBIDDEN to a member's):
// list, add (the signing secret is shown this once), enable and disable, rotate the secret
// (the new one shown once), send a test event, delete. The delivery log is deliveries.js.
//
// A secret lives only in the box that shows it: never in sessionStorage or a URL, and it is
// gone when the box is dismissed, the page reloaded or the user logs out.

import { gql, loadErrorText } from "./api.js";
import { closeDeliveries, setDeliveryEndpoints, showDeliveriesFor } from "./deliveries.js";
import { $, el, showMessage, showOutcome } from "./dom.js";
import { EVENT_TYPES, eventTypesText } from "./eventdata.js";
import { formatDateTime } from "./format.js";
import { endpointInput, endpointToggleInput } from "./inputs.js";
import { isAdmin, session } from "./state.js";

const ENDPOINT_FIELDS = `id url eventTypes description enabled disabledReason failingSince
  previousSecretExpiresAt createdAt`;
const ENDPOINTS_QUERY = `query WebhookEndpoints { webhookEndpoints { ${ENDPOINT_FIELDS} } }`;
const CREATE_MUTATION = `mutation CreateWebhookEndpoint($input: WebhookEndpointInput!) {
  createWebhookEndpoint(input: $input) { secret endpoint { ${ENDPOINT_FIELDS} } }
}`;
const UPDATE_MUTATION = `mutation UpdateWebhookEndpoint($id: ID!, $input: WebhookEndpointInput!) {
  updateWebhookEndpoint(id: $id, input: $input) { ${ENDPOINT_FIELDS} }
}`;
const ROTATE_MUTATION = `mutation RotateWebhookSecret($id: ID!) {
  rotateWebhookSecret(id: $id) { secret endpoint { ${ENDPOINT_FIELDS} } }
}`;
const DELETE_MUTATION = `mutation DeleteWebhookEndpoint($id: ID!) {
  deleteWebhookEndpoint(id: $id) { id }
}`;
const TEST_MUTATION = `mutation SendTestEvent($endpointId: ID!) {
  sendTestEvent(endpointId: $endpointId) { id status }
}`;

let endpoints = []; // the list shown
let requests = 0; // numbers each load, so only the newest one's answer is shown

export function wireWebhooks() {
  const types = $("endpoint-types");
  for (const type of EVENT_TYPES) types.append(el("option", { value: type }, type));
  $("endpoint-form").addEventListener("submit", onCreate);
  $("secret-copy").addEventListener("click", onCopySecret);
  $("secret-dismiss").addEventListener("click", hideSecret);
}

// A workspace was opened: its endpoints for an admin; a note for a member, whose key may not
// see them.
export function openWebhooks() {
  const admin = isAdmin();
  $("webhooks-member").hidden = admin;
  $("webhooks-admin").hidden = !admin;
  hideSecret();
  showMessage($("endpoint-message"), "");
  endpoints = [];
  if (admin) loadEndpoints(null);
}

// Logged out: the secret box is emptied and an answer still on its way is dropped.
export function closeWebhooks() {
  requests++;
  endpoints = [];
  hideSecret();
  $("endpoints").tBodies[0].replaceChildren();
  closeDeliveries();
}

// Loads the list; `focus`, an endpoint's id, is the one whose delivery log is then shown.
async function loadEndpoints(focus) {
  const seq = ++requests;
  if ($("endpoints").hidden) showMessage($("endpoints-status"), "Loading…");
  let answer;
  try {
    answer = (await gql(ENDPOINTS_QUERY)).webhookEndpoints;
  } catch (error) {
    if (seq !== requests) return;
    $("endpoints").hidden = true;
    showMessage($("endpoints-status"), loadErrorText(error, "webhook endpoints"));
    setDeliveryEndpoints([], null);
    return;
  }
  if (seq !== requests) return;
  endpoints = answer;
  renderEndpoints();
  setDeliveryEndpoints(endpoints, focus);
}

function renderEndpoints() {
  const table = $("endpoints");
  if (endpoints.length === 0) {
    table.hidden = true;
    showMessage($("endpoints-status"), "No endpoints yet: add one below.");
    return;
  }
  showMessage($("endpoints-status"), "");
  table.tBodies[0].replaceChildren(...endpoints.map(endpointRow));
  table.hidden = false;
}

// The endpoint's row; `note`, when given, is shown under its buttons.
function endpointRow(endpoint, note = null) {
  const message = el("p", { class: "row-message", hidden: true });
  const actions = el("div", { class: "row-actions" }, ...actionButtons(endpoint, message));
  const row = el(
    "tr",
    { dataset: { endpointId: endpoint.id } },
    el(
      "td",
      { class: "block", "data-label": "Endpoint" },
      el("div", { class: "endpoint-url" }, endpoint.url),
      endpoint.description ? el("div", { class: "muted small" }, endpoint.description) : null,
      el("div", { class: "muted small" }, `Added ${formatDateTime(endpoint.createdAt)}`),
    ),
    el("td", { "data-label": "Events" }, eventTypesText(endpoint.eventTypes)),
    el("td", { class: "block", "data-label": "Status" }, ...statusLines(endpoint)),
    el("td", { class: "block", "data-label": "Manage" }, actions, message),
  );
  if (note) showOutcome(message, note.text, note.isError);
  return row;
}

function statusLines(endpoint) {
  const lines = [
    endpoint.enabled
      ? el("div", { class: "state-ok" }, "Enabled")
      : el("div", { class: "state-off" }, `Disabled: ${endpoint.disabledReason ?? "no reason"}`),
  ];
  if (endpoint.failingSince) {
    lines.push(
      el("div", { class: "muted small" }, `Failing since ${formatDateTime(endpoint.failingSince)}`),
    );
  }
  const previousUntil = endpoint.previousSecretExpiresAt;
  if (previousUntil && Date.parse(previousUntil) > Date.now()) {
    lines.push(
      el(
        "div",
        { class: "muted small" },
        `The previous secret signs until ${formatDateTime(previousUntil)}`,
      ),
    );
  }
  return lines;
}

function button(label, onclick, { secondary = true, disabled = false, title = null } = {}) {
  return el(
    "button",
    {
      type: "button",
      class: secondary ? "button small secondary" : "button small",
      disabled,
      title,
      onclick: (event) => onclick(event.currentTarget),
    },
    label,
  );
}

function actionButtons(endpoint, message) {
  return [
    button(endpoint.enabled ? "Disable" : "Enable", () => toggle(endpoint, message)),
    button("Send test event", () => sendTest(endpoint, message), {
      disabled: !endpoint.enabled,
      title: endpoint.enabled ? null : "Enable the endpoint to send to it",
    }),
    button("Rotate secret", () => rotate(endpoint, message)),
    button("Delivery log", () => showDeliveriesFor(endpoint.id)),
    button("Delete", (clicked) => confirmDelete(endpoint, clicked.parentElement, message)),
  ];
}

// Deleting asks first, in the row: its pending deliveries stop and it cannot be undone.
function confirmDelete(endpoint, actions, message) {
  const restore = () => actions.replaceChildren(...actionButtons(endpoint, message));
  actions.replaceChildren(
    el("span", { class: "confirm" }, "Delete this endpoint? Its pending deliveries stop."),
    button("Delete endpoint", () => remove(endpoint, message), { secondary: false }),
    button("Cancel", restore),
  );
}

// Runs a mutation for the endpoint's row: its buttons are disabled meanwhile, the refusal is
// shown under them; the answer (the data) is returned, or null when there is nothing to do.
async function act(endpoint, message, working, mutation, variables) {
  const workspace = session.workspace;
  const row = message.closest("tr");
  for (const b of row.querySelectorAll("button")) b.disabled = true;
  showOutcome(message, working, false);
  try {
    const data = await gql(mutation, variables);
    return session.workspace === workspace ? data : null;
  } catch (error) {
    if (session.workspace !== workspace) return null; // logged out meanwhile
    row.replaceWith(endpointRow(endpoint, { text: error.message, isError: true }));
    return null;
  }
}

// Redraws the endpoint's row with the API's answer and a note under its buttons.
function replaceEndpoint(updated, note) {
  endpoints = endpoints.map((e) => (e.id === updated.id ? updated : e));
  const row = $("endpoints").querySelector(`tr[data-endpoint-id="${CSS.escape(updated.id)}"]`);
  row?.replaceWith(endpointRow(updated, { text: note, isError: false }));
  setDeliveryEndpoints(endpoints, null);
}

async function toggle(endpoint, message) {
  const enabled = !endpoint.enabled;
  const working = enabled ? "Enabling…" : "Disabling…";
  const variables = { id: endpoint.id, input: endpointToggleInput(endpoint, enabled) };
  const data = await act(endpoint, message, working, UPDATE_MUTATION, variables);
  if (!data) return;
  const note = enabled ? "Enabled." : "Disabled: nothing is sent to it.";
  replaceEndpoint(data.updateWebhookEndpoint, note);
}

async function sendTest(endpoint, message) {
  const data = await act(endpoint, message, "Sending…", TEST_MUTATION, { endpointId: endpoint.id });
  if (!data) return;
  replaceEndpoint(endpoint, "A test.ping event is on its way: see the delivery log.");
  showDeliveriesFor(endpoint.id);
}

async function rotate(endpoint, message) {
  const data = await act(endpoint, message, "Rotating…", ROTATE_MUTATION, { id: endpoint.id });
  if (!data) return;
  const { secret, endpoint: updated } = data.rotateWebhookSecret;
  replaceEndpoint(updated, "New secret made: copy it from the box above.");
  const until = updated.previousSecretExpiresAt;
  showSecret(
    secret,
    "New signing secret",
    updated.url,
    until ? `The previous secret keeps signing until ${formatDateTime(until)} UTC.` : "",
  );
}

async function remove(endpoint, message) {
  const data = await act(endpoint, message, "Deleting…", DELETE_MUTATION, { id: endpoint.id });
  if (!data) return;
  showOutcome($("endpoint-message"), `Endpoint deleted: ${endpoint.url}.`, false);
  loadEndpoints(null);
}

async function onCreate(event) {
  event.preventDefault();
  const message = $("endpoint-message");
  let input;
  try {
    input = endpointInput({
      url: $("endpoint-url").value,
      eventTypes: [...$("endpoint-types").selectedOptions].map((option) => option.value),
      description: $("endpoint-description").value,
    });
  } catch (error) {
    showOutcome(message, error.message, true);
    return;
  }
  const workspace = session.workspace;
  const submit = $("endpoint-add");
  submit.disabled = true;
  showOutcome(message, "Adding…", false);
  let created;
  try {
    created = (await gql(CREATE_MUTATION, { input })).createWebhookEndpoint;
  } catch (error) {
    if (session.workspace !== workspace) return;
    submit.disabled = false;
    showOutcome(message, error.message, true);
    return;
  }
  if (session.workspace !== workspace) return;
  submit.disabled = false;
  $("endpoint-form").reset();
  showOutcome(message, `Endpoint added: ${created.endpoint.url}.`, false);
  showSecret(created.secret, "Signing secret", created.endpoint.url, "");
  loadEndpoints(created.endpoint.id);
}

// The box that shows a secret this once.
function showSecret(secret, title, url, extra) {
  $("secret-title").textContent = title;
  $("secret-for").textContent = `For ${url}. ${extra}`.trim();
  $("secret-value").textContent = secret;
  showMessage($("secret-copied"), "");
  $("secret-box").hidden = false;
  $("secret-box").scrollIntoView({ block: "nearest" });
  $("secret-copy").focus({ preventScroll: true });
}

function hideSecret() {
  $("secret-box").hidden = true;
  $("secret-value").textContent = "";
  $("secret-for").textContent = "";
}

async function onCopySecret() {
  const value = $("secret-value");
  try {
    await navigator.clipboard.writeText(value.textContent);
    showOutcome($("secret-copied"), "Copied to the clipboard.", false);
  } catch {
    // No clipboard here (a page served over plain http, or permission refused): the secret is
    // selected instead, for the keyboard's copy.
    getSelection().selectAllChildren(value);
    const note = "Could not copy: the secret is selected, copy it with Ctrl+C.";
    showOutcome($("secret-copied"), note, true);
  }
}
