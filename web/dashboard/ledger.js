// The ledger: every balance change, newest first, ten entries a page. The API pages forward
// with cursors, so the cursor of each page seen is kept for "Previous".

import { gql } from "./api.js";
import { formatDecimal } from "./decimal.js";
import { $, el, setText, showMessage } from "./dom.js";
import { formatDateTime, humanize, meterName } from "./format.js";
import { session } from "./state.js";

const PAGE_SIZE = 10;

const LEDGER_QUERY = `query Ledger($first: Int!, $after: String) {
  ledger(first: $first, after: $after) {
    edges { cursor node { id entryType meter amount balanceAfter createdAt workbookId chargeId } }
    pageInfo { hasNextPage endCursor }
  }
}`;

let cursors = [null]; // the `after` of each page seen so far; the last is the page shown
let requests = 0; // numbers each load, so only the newest one's answer is shown

export function wireLedger() {
  $("ledger-next").addEventListener("click", onNext);
  $("ledger-prev").addEventListener("click", onPrevious);
}

// A workspace was opened: its first page.
export function openLedger() {
  cursors = [null];
  loadLedger();
}

// The workspace changed (a live update or a poll): the page shown again, without "Loading…"
// (on the first page, the new entries appear at its top).
export function refreshLedger() {
  return loadLedger({ quiet: true });
}

// Logged out: an answer still on its way is dropped, not shown for nobody.
export function closeLedger() {
  requests++;
  cursors = [null];
}

async function loadLedger({ quiet = false } = {}) {
  const seq = ++requests;
  const page = cursors.length - 1;
  const after = cursors[page];
  if (!quiet) {
    showMessage($("ledger-status"), "Loading…");
    $("ledger-prev").disabled = true;
    $("ledger-next").disabled = true;
  }
  let connection;
  try {
    connection = (await gql(LEDGER_QUERY, { first: PAGE_SIZE, after })).ledger;
  } catch (error) {
    if (seq !== requests || quiet) return;
    showMessage($("ledger-status"), `The ledger could not be loaded: ${error.message}`);
    $("ledger-prev").disabled = page === 0;
    return;
  }
  if (seq !== requests) return;
  renderLedger(connection, page);
}

function renderLedger(connection, page) {
  const table = $("ledger");
  if (connection.edges.length === 0) {
    table.hidden = true;
    showMessage($("ledger-status"), page === 0 ? "No ledger entries yet." : "No more entries.");
  } else {
    showMessage($("ledger-status"), "");
    const names = new Map(session.workspace.workbooks.map((wb) => [wb.id, wb.name]));
    table.tBodies[0].replaceChildren(...connection.edges.map(({ node }) => entryRow(node, names)));
    table.hidden = false;
  }
  setText("ledger-page", `Page ${page + 1}`);
  $("ledger-prev").disabled = page === 0;
  const next = $("ledger-next");
  next.disabled = !connection.pageInfo.hasNextPage;
  next.dataset.after = connection.pageInfo.endCursor ?? "";
}

// One entry; `names` maps workbook ids to names.
function entryRow(entry, names) {
  const direction = entry.amount.startsWith("-") ? "debit" : "credit";
  return el(
    "tr",
    { dataset: { entryId: entry.id } },
    el("td", { class: "nowrap", "data-label": "Time" }, formatDateTime(entry.createdAt)),
    el("td", { "data-label": "Entry" }, humanize(entry.entryType)),
    el("td", { "data-label": "Meter" }, meterName(entry.meter)),
    el(
      "td",
      { "data-label": "Workbook" },
      entry.workbookId ? names.get(entry.workbookId) ?? entry.workbookId : "—",
    ),
    el(
      "td",
      { class: `num ${direction}`, "data-label": "Amount" },
      formatDecimal(entry.amount, { signed: true }),
    ),
    el("td", { class: "num", "data-label": "Balance after" }, formatDecimal(entry.balanceAfter)),
  );
}

function onNext() {
  const after = $("ledger-next").dataset.after;
  if (!after) return;
  cursors.push(after);
  loadLedger();
}

function onPrevious() {
  if (cursors.length > 1) {
    cursors.pop();
    loadLedger();
  }
}
