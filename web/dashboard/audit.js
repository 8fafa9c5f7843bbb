// The audit log (R39), for an admin key only: every change made with an admin or the operator's
// key, newest first, ten at a time ("Load more" asks for the ones after the last cursor). A
// member's page neither shows the section nor asks; a FORBIDDEN answer is worded anyway.

import { gql, loadErrorText } from "./api.js";
import { auditChangeText, auditTarget } from "./auditdata.js";
import { $, el, showMessage } from "./dom.js";
import { formatDateTime } from "./format.js";
import { isAdmin } from "./state.js";

const PAGE_SIZE = 10;

const AUDIT_QUERY = `query AuditLog($first: Int!, $after: String) {
  auditLog(first: $first, after: $after) {
    edges { node { id at actor apiKeyId action target before after requestId } }
    pageInfo { hasNextPage endCursor }
  }
}`;

let after = null; // the cursor "Load more" continues from
let requests = 0; // numbers each load, so only the newest one's answer is shown

export function wireAudit() {
  $("audit-refresh").addEventListener("click", () => loadAudit(false));
  $("audit-more").addEventListener("click", () => loadAudit(true));
}

// A workspace was opened: the newest entries for an admin; nothing at all for a member.
export function openAudit() {
  const admin = isAdmin();
  $("audit-section").hidden = !admin;
  $("audit").tBodies[0].replaceChildren();
  $("audit").hidden = true;
  after = null;
  if (admin) loadAudit(false);
}

// Logged out: the rows go and an answer still on its way is dropped.
export function closeAudit() {
  requests++;
  after = null;
  $("audit").tBodies[0].replaceChildren();
  $("audit-section").hidden = true;
}

async function loadAudit(more) {
  const seq = ++requests;
  const table = $("audit");
  const button = $("audit-more");
  button.disabled = true;
  if (!more) after = null;
  showMessage($("audit-status"), "Loading…");
  let connection;
  try {
    connection = (await gql(AUDIT_QUERY, { first: PAGE_SIZE, after })).auditLog;
  } catch (error) {
    if (seq !== requests) return;
    if (!more) table.hidden = true;
    button.hidden = true;
    showMessage($("audit-status"), loadErrorText(error, "the audit log"));
    return;
  }
  if (seq !== requests) return;
  const rows = connection.edges.map(({ node }) => auditRow(node));
  if (more) table.tBodies[0].append(...rows);
  else table.tBodies[0].replaceChildren(...rows);
  const shown = table.tBodies[0].rows.length;
  table.hidden = shown === 0;
  showMessage($("audit-status"), shown === 0 ? "No audited changes yet." : "");
  after = connection.pageInfo.endCursor ?? after;
  button.hidden = !connection.pageInfo.hasNextPage;
  button.disabled = false;
}

function auditRow(entry) {
  const target = auditTarget(entry.target);
  return el(
    "tr",
    { dataset: { auditId: entry.id } },
    el("td", { class: "nowrap", "data-label": "When" }, formatDateTime(entry.at)),
    el("td", { "data-label": "Actor" }, entry.actor),
    el("td", { "data-label": "Action" }, el("code", {}, entry.action)),
    el("td", { "data-label": "Target", title: target.title }, target.text),
    el("td", { class: "event-data", "data-label": "Change" },
      auditChangeText(entry.before, entry.after)),
    el("td", { class: "nowrap", "data-label": "Request id" }, entry.requestId ?? "—"),
  );
}
