// Events (R34): what happened to the workspace, newest first, ten at a time ("Load more" asks
// for the next ones after the last cursor), optionally of one type. Any key may read them.

import { gql, loadErrorText } from "./api.js";
import { $, el, showMessage } from "./dom.js";
import { EVENT_TYPES, eventFields } from "./eventdata.js";
import { formatDateTime } from "./format.js";
import { session } from "./state.js";

const PAGE_SIZE = 10;

const EVENTS_QUERY = `query Events($first: Int!, $after: String, $types: [String!]) {
  events(first: $first, after: $after, types: $types) {
    edges { node { id type createdAt data } }
    pageInfo { hasNextPage endCursor }
  }
}`;

let after = null; // the cursor "Load more" continues from
let pages = 0; // pages shown: a live update reloads the list only while it is the first alone
let requests = 0; // numbers each load, so only the newest one's answer is shown

export function wireEventList() {
  const select = $("events-type");
  for (const type of EVENT_TYPES) select.append(el("option", { value: type }, type));
  select.addEventListener("change", () => loadEvents(false));
  $("events-refresh").addEventListener("click", () => loadEvents(false));
  $("events-more").addEventListener("click", () => loadEvents(true));
}

// A workspace was opened: its latest events, of every type.
export function openEventList() {
  $("events-type").value = "";
  loadEvents(false);
}

// The workspace changed (a live update or a poll): the newest events again, without
// "Loading…", unless older pages were loaded (the reader's place is kept then).
export function refreshEventList() {
  return pages > 1 ? Promise.resolve() : loadEvents(false, { quiet: true });
}

// Logged out: an answer still on its way is dropped.
export function closeEventList() {
  requests++;
  after = null;
  pages = 0;
}

// The first page (`more` false) or the page after the last one shown.
async function loadEvents(more, { quiet = false } = {}) {
  const seq = ++requests;
  const type = $("events-type").value;
  const table = $("events");
  const button = $("events-more");
  if (!more && !quiet) after = null;
  const from = more ? after : null;
  if (!quiet) {
    button.disabled = true;
    showMessage($("events-status"), "Loading…");
  }
  let connection;
  try {
    const variables = { first: PAGE_SIZE, after: from, types: type ? [type] : null };
    connection = (await gql(EVENTS_QUERY, variables)).events;
  } catch (error) {
    if (seq !== requests || quiet) return;
    showMessage($("events-status"), loadErrorText(error, "events"));
    button.disabled = false;
    return;
  }
  if (seq !== requests) return;
  const names = new Map(session.workspace.workbooks.map((wb) => [wb.id, wb.name]));
  const rows = connection.edges.map(({ node }) => eventRow(node, names));
  if (more) table.tBodies[0].append(...rows);
  else table.tBodies[0].replaceChildren(...rows);
  pages = more ? pages + 1 : 1;
  const shown = table.tBodies[0].rows.length;
  table.hidden = shown === 0;
  const none = type ? `No ${type} events yet.` : "No events yet.";
  showMessage($("events-status"), shown === 0 ? none : "");
  after = connection.pageInfo.endCursor ?? from;
  button.hidden = !connection.pageInfo.hasNextPage;
  button.disabled = false;
}

// One event: when, its type as webhooks receive it, and its data on one line.
function eventRow(event, names) {
  const fields = eventFields(event.type, event.data, names);
  // One span holds the line, so a phone's stacked row keeps it together beside its label.
  const line = el("span", {});
  if (fields.length === 0) line.append("—");
  fields.forEach((field, i) => {
    if (i > 0) line.append(" · ");
    line.append(
      el("span", { class: "muted" }, `${field.label} `),
      el("span", { title: field.title }, field.text),
    );
  });
  const details = el("td", { class: "event-data", "data-label": "Details" }, line);
  return el(
    "tr",
    { dataset: { eventId: event.id } },
    el("td", { class: "nowrap", "data-label": "Time" }, formatDateTime(event.createdAt)),
    el("td", { "data-label": "Type" }, el("code", {}, event.type)),
    details,
  );
}
