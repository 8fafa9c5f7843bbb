// The delivery log (R36), admin only: one endpoint's deliveries, newest first, ten at a time
// ("Load more"), each with its attempts and last answer, and "Resend" to send its event to the
// endpoint again (a new delivery, with the same webhook-id).

import { gql, loadErrorText } from "./api.js";
import { $, el, showMessage, showOutcome } from "./dom.js";
import { deliveryOutcome, optionalDateTime, shortId } from "./eventdata.js";
import { formatDateTime, formatInt, humanize } from "./format.js";
import { session } from "./state.js";

const PAGE_SIZE = 10;

const DELIVERIES_QUERY = `query WebhookDeliveries($endpointId: ID, $first: Int!, $after: String) {
  webhookDeliveries(endpointId: $endpointId, first: $first, after: $after) {
    edges {
      node {
        id eventId endpointId status attempts lastResponseStatus lastError lastAttemptAt
        nextAttemptAt createdAt
      }
    }
    pageInfo { hasNextPage endCursor }
  }
}`;
const RESEND_MUTATION = `mutation ResendEvent($eventId: ID!, $endpointId: ID) {
  resendEvent(eventId: $eventId, endpointId: $endpointId) { id status }
}`;

let endpoints = []; // the endpoints one may choose, as webhooks.js listed them
let after = null; // the cursor "Load more" continues from
let requests = 0; // numbers each load, so only the newest one's answer is shown

export function wireDeliveries() {
  $("deliveries-endpoint").addEventListener("change", () => loadDeliveries(false));
  $("deliveries-refresh").addEventListener("click", () => loadDeliveries(false));
  $("deliveries-more").addEventListener("click", () => loadDeliveries(true));
}

// The endpoints changed (listed, added, updated, deleted). The log stays on the endpoint chosen
// while it exists; `focus`, an id, chooses another. The log reloads when its endpoint changed.
export function setDeliveryEndpoints(list, focus) {
  endpoints = list;
  const select = $("deliveries-endpoint");
  const before = select.value;
  const label = (e) => (e.description ? `${e.description} · ${e.url}` : e.url);
  select.replaceChildren(...list.map((e) => el("option", { value: e.id }, label(e))));
  $("deliveries-section").hidden = list.length === 0;
  if (list.length === 0) {
    requests++;
    return;
  }
  const chosen = [focus, before].find((id) => id && list.some((e) => e.id === id)) ?? list[0].id;
  select.value = chosen;
  if (chosen !== before || $("deliveries").tBodies[0].rows.length === 0) loadDeliveries(false);
  else refreshResendButtons();
}

// "Delivery log" or "Send test event" on an endpoint's row: its log, from the newest.
export function showDeliveriesFor(endpointId) {
  $("deliveries-endpoint").value = endpointId;
  loadDeliveries(false);
  $("deliveries-section").scrollIntoView({ block: "nearest" });
}

// Logged out: an answer still on its way is dropped and the log emptied.
export function closeDeliveries() {
  requests++;
  endpoints = [];
  after = null;
  $("deliveries").tBodies[0].replaceChildren();
  $("deliveries").hidden = true;
  showMessage($("deliveries-message"), "");
}

function chosenEndpoint() {
  return endpoints.find((e) => e.id === $("deliveries-endpoint").value) ?? null;
}

// The first page (`more` false) or the page after the last one shown.
async function loadDeliveries(more) {
  const seq = ++requests;
  const endpoint = chosenEndpoint();
  if (!endpoint) return;
  const table = $("deliveries");
  const button = $("deliveries-more");
  button.disabled = true;
  if (!more) {
    after = null;
    showMessage($("deliveries-message"), "");
  }
  showMessage($("deliveries-status"), "Loading…");
  let connection;
  try {
    const variables = { endpointId: endpoint.id, first: PAGE_SIZE, after };
    connection = (await gql(DELIVERIES_QUERY, variables)).webhookDeliveries;
  } catch (error) {
    if (seq !== requests) return;
    showMessage($("deliveries-status"), loadErrorText(error, "the delivery log"));
    button.disabled = false;
    return;
  }
  if (seq !== requests) return;
  const rows = connection.edges.map(({ node }) => deliveryRow(node, endpoint));
  if (more) table.tBodies[0].append(...rows);
  else table.tBodies[0].replaceChildren(...rows);
  const shown = table.tBodies[0].rows.length;
  table.hidden = shown === 0;
  showMessage($("deliveries-status"), shown === 0 ? "Nothing sent to this endpoint yet." : "");
  after = connection.pageInfo.endCursor ?? after;
  button.hidden = !connection.pageInfo.hasNextPage;
  button.disabled = false;
}

function deliveryRow(delivery, endpoint) {
  return el(
    "tr",
    { dataset: { deliveryId: delivery.id, eventId: delivery.eventId } },
    el("td", { class: "nowrap", "data-label": "Created" }, formatDateTime(delivery.createdAt)),
    // The API gives a delivery's event id, not its type (see the Events list for the type).
    el(
      "td",
      { "data-label": "Event" },
      el("code", { title: delivery.eventId }, shortId(delivery.eventId)),
    ),
    el(
      "td",
      { class: `status-${delivery.status.toLowerCase()}`, "data-label": "Status" },
      humanize(delivery.status),
    ),
    el("td", { class: "num", "data-label": "Attempts" }, formatInt(delivery.attempts)),
    el("td", { class: "answer", "data-label": "Last answer" }, deliveryOutcome(delivery)),
    el(
      "td",
      { class: "nowrap", "data-label": "Last attempt" },
      optionalDateTime(delivery.lastAttemptAt),
    ),
    el(
      "td",
      { class: "nowrap", "data-label": "Next attempt" },
      optionalDateTime(delivery.nextAttemptAt),
    ),
    el("td", { "data-label": "" }, resendButton(delivery, endpoint)),
  );
}

function resendButton(delivery, endpoint) {
  return el(
    "button",
    {
      type: "button",
      class: "button small secondary resend",
      disabled: !endpoint.enabled,
      title: resendTitle(endpoint),
      onclick: () => resend(delivery),
    },
    "Resend",
  );
}

function resendTitle(endpoint) {
  return endpoint.enabled
    ? "Send this event to the endpoint again"
    : "Enable the endpoint to resend";
}

// An endpoint enabled or disabled meanwhile: its rows' Resend buttons follow.
function refreshResendButtons() {
  const endpoint = chosenEndpoint();
  if (!endpoint) return;
  for (const b of $("deliveries").querySelectorAll("button.resend")) {
    b.disabled = !endpoint.enabled;
    b.title = resendTitle(endpoint);
  }
}

async function resend(delivery) {
  const workspace = session.workspace;
  const message = $("deliveries-message");
  const buttons = $("deliveries").querySelectorAll("button.resend");
  for (const b of buttons) b.disabled = true;
  showOutcome(message, "Resending…", false);
  try {
    await gql(RESEND_MUTATION, { eventId: delivery.eventId, endpointId: delivery.endpointId });
  } catch (error) {
    if (session.workspace !== workspace) return;
    refreshResendButtons();
    showOutcome(message, error.message, true);
    return;
  }
  if (session.workspace !== workspace) return;
  await loadDeliveries(false);
  if (session.workspace !== workspace) return;
  const event = shortId(delivery.eventId);
  showOutcome(message, `Event ${event} sent again: a new delivery is queued.`, false);
}
