// How events, alerts and webhook deliveries are shown: pure functions of what the API returns,
// tested by node (test/eventdata.test.js). Amounts stay Decimal strings (decimal.js).

import { formatDecimal } from "./decimal.js";
import { formatDateTime, formatInt, meterName } from "./format.js";

// Every event type, in API.md's order: what an endpoint may subscribe to and the events list
// may be filtered on.
export const EVENT_TYPES = [
  "credits.threshold_crossed",
  "credits.depleted",
  "actions.threshold_crossed",
  "actions.exhausted",
  "workbook.spend_limit_reached",
  "run.budget_exhausted",
  "run.ended",
  "subscription.renewed",
  "subscription.plan_changed",
  "subscription.trial_ending",
  "subscription.trial_ended",
  "topup.purchased",
  "webhook.endpoint_disabled",
  "test.ping",
];

// How each field of an event's `data` is shown, by its name (API.md names them alike in every
// type). A field not listed is shown as it comes.
const FIELDS = {
  alertId: "id",
  threshold: "credits", // actions.threshold_crossed: a percent (see fieldKind)
  available: "credits",
  used: "int",
  capacity: "int",
  workbookId: "workbook",
  limit: "credits",
  spent: "credits",
  budget: "credits",
  released: "credits",
  runId: "id",
  status: "text",
  periodStart: "time",
  periodEnd: "time",
  granted: "credits",
  rolledOver: "credits",
  expired: "credits",
  creditTier: "int",
  effectiveAt: "time",
  immediate: "bool",
  trialEndsAt: "time",
  credits: "credits",
  price: "usd",
  auto: "bool",
  topUpId: "id",
  endpointId: "id",
};

function fieldKind(type, name) {
  if (type === "actions.threshold_crossed" && name === "threshold") return "percent";
  return FIELDS[name] ?? "any";
}

// "rolledOver" -> "rolled over", "topUpId" -> "top-up", "alertId" -> "alert".
export function fieldLabel(name) {
  if (name === "topUpId") return "top-up";
  return name.replace(/Id$/, "").replace(/([a-z0-9])([A-Z])/g, "$1 $2").toLowerCase();
}

// An id's first eight characters, enough to tell ids apart on a screen: "3f94c5ad…".
export function shortId(id) {
  const text = String(id);
  return text.length > 12 ? `${text.slice(0, 8)}…` : text;
}

// One value of `data` as text; `title` (when set) is the whole value, for a tooltip.
function fieldValue(kind, value, workbookNames) {
  if (value === null || value === undefined) return { text: "—" };
  switch (kind) {
    case "credits":
      return { text: formatDecimal(value) };
    case "usd":
      return { text: `$${formatDecimal(value)}` };
    case "percent":
      return { text: `${value}%` };
    case "int":
      return { text: typeof value === "number" ? formatInt(value) : String(value) };
    case "bool":
      return { text: value ? "yes" : "no" };
    case "time":
      return { text: `${formatDateTime(value)} UTC` };
    case "workbook": {
      const name = workbookNames.get(value);
      return name ? { text: name, title: String(value) } : { text: shortId(value), title: value };
    }
    case "id":
      return { text: shortId(value), title: String(value) };
    case "text":
      return { text: String(value) };
    default:
      if (typeof value === "object") return { text: JSON.stringify(value) };
      return { text: String(value) };
  }
}

// An event's `data` as [{ name, label, text, title? }] in the order the API sent it, without
// `workspaceId` (always the open workspace). `workbookNames` maps workbook ids to names.
export function eventFields(type, data, workbookNames = new Map()) {
  if (data === null || typeof data !== "object" || Array.isArray(data)) {
    return data === null || data === undefined
      ? []
      : [{ name: "data", label: "data", text: JSON.stringify(data) }];
  }
  return Object.entries(data)
    .filter(([name]) => name !== "workspaceId")
    .map(([name, value]) => ({
      name,
      label: fieldLabel(name),
      ...fieldValue(fieldKind(type, name), value, workbookNames),
    }));
}

// An alert's threshold as a person reads it: "1,000.5 Data Credits available" (it fires when
// available falls below), "80% of capacity used" (it fires when used reaches it).
export function alertThresholdText(meter, threshold) {
  if (meter === "ACTIONS") return `${threshold}% of capacity used`;
  if (meter === "DATA_CREDITS") return `below ${formatDecimal(threshold)} available`;
  return `${meterName(meter)} ${threshold}`;
}

// What the endpoint last answered: "HTTP 200", "HTTP 302 · answered 302: redirects are not
// followed", the connection's error, or "—" before any attempt. The API records a non-2xx answer
// as the error "answered 500" too; that says no more than "HTTP 500", so it is left out.
export function deliveryOutcome(delivery) {
  const status = delivery.lastResponseStatus;
  const error = delivery.lastError;
  if (status === null || status === undefined) return error || "—";
  const http = `HTTP ${status}`;
  return error && error !== `answered ${status}` ? `${http} · ${error}` : http;
}

// "2025-01-05 09:30" or "—"; formatDateTime for fields the API may leave null.
export function optionalDateTime(iso) {
  return iso ? formatDateTime(iso) : "—";
}

// Which event types an endpoint receives: "All event types" when it names none.
export function eventTypesText(types) {
  return types.length === 0 ? "All event types" : types.join(", ");
}
