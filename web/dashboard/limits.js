// Workbook spend limits: an admin key on Enterprise sets and removes them; otherwise the API's
// refusal is shown next to the row.

import { gql } from "./api.js";
import { formatDecimal, parseCreditAmount } from "./decimal.js";
import { $, el, showMessage } from "./dom.js";
import { session } from "./state.js";

const SET_LIMIT_MUTATION = `mutation SetLimit($workbookId: ID!, $limit: Decimal) {
  setWorkbookSpendLimit(workbookId: $workbookId, limit: $limit) {
    __typename
    ... on Workbook { id name spendLimit spent }
    ... on Refusal { code message }
  }
}`;

// The workbooks changed elsewhere (a live update or a poll): each row's figures are updated
// in place, so a limit being typed or saved keeps its input and its message; the table is
// drawn again only when a workbook was added.
export function refreshWorkbooks() {
  const table = $("workbooks");
  const rows = new Map([...table.tBodies[0].rows].map((row) => [row.dataset.workbookId, row]));
  const workbooks = session.workspace.workbooks;
  if (table.hidden || workbooks.some((wb) => !rows.has(wb.id))) {
    renderWorkbooks();
    return;
  }
  for (const wb of workbooks) {
    const row = rows.get(wb.id);
    const limited = wb.spendLimit !== null;
    row.querySelector('[data-label="Spent since limit set"]').textContent =
      limited ? formatDecimal(wb.spent) : "—";
    row.querySelector('[data-label="Limit"]').textContent =
      limited ? formatDecimal(wb.spendLimit) : "No limit";
  }
}

export function renderWorkbooks() {
  const table = $("workbooks");
  const workbooks = session.workspace.workbooks;
  if (workbooks.length === 0) {
    table.hidden = true;
    showMessage($("workbooks-status"), "No workbooks yet.");
    return;
  }
  showMessage($("workbooks-status"), "");
  table.tBodies[0].replaceChildren(...workbooks.map(workbookRow));
  table.hidden = false;
}

function workbookRow(wb) {
  const message = el("p", { class: "row-message", role: "status", hidden: true });
  const input = el("input", {
    type: "text",
    inputmode: "decimal",
    placeholder: "Data Credits",
    "aria-label": `Spend limit for ${wb.name}`,
    value: wb.spendLimit ?? "",
  });
  const form = el(
    "form",
    { class: "limit-form", onsubmit: (event) => onSetLimit(event, wb, input, message) },
    input,
    el("button", { type: "submit", class: "button small" }, "Set"),
    wb.spendLimit === null ? null : removeButton(wb, message),
  );
  const limited = wb.spendLimit !== null;
  return el(
    "tr",
    { dataset: { workbookId: wb.id } },
    el("td", { "data-label": "Workbook" }, wb.name),
    // `spent` counts from when the limit was set; without a limit nothing is counted.
    el(
      "td",
      { class: "num", "data-label": "Spent since limit set" },
      limited ? formatDecimal(wb.spent) : "—",
    ),
    el(
      "td",
      { class: "num", "data-label": "Limit" },
      limited ? formatDecimal(wb.spendLimit) : "No limit",
    ),
    el("td", { class: "block", "data-label": "Change limit" }, form, message),
  );
}

function removeButton(wb, message) {
  return el(
    "button",
    {
      type: "button",
      class: "button small secondary",
      onclick: () => changeLimit(wb, null, message),
    },
    "Remove",
  );
}

function onSetLimit(event, wb, input, message) {
  event.preventDefault();
  const limit = parseCreditAmount(input.value);
  if (limit === null) {
    showRowMessage(message, "Enter a number of Data Credits, such as 500 or 12.5.", true);
    return;
  }
  changeLimit(wb, limit, message);
}

function showRowMessage(node, text, isError) {
  node.className = isError ? "row-message error" : "row-message ok";
  node.setAttribute("role", isError ? "alert" : "status");
  showMessage(node, text);
}

function setButtonsDisabled(row, disabled) {
  for (const button of row.querySelectorAll("button")) button.disabled = disabled;
}

// Sets (`limit`, a Decimal string) or removes (null) the workbook's limit; the row is redrawn
// with the answer, or keeps its values and shows the refusal.
async function changeLimit(wb, limit, message) {
  const row = message.closest("tr");
  const workspace = session.workspace;
  setButtonsDisabled(row, true);
  showRowMessage(message, limit === null ? "Removing…" : "Saving…", false);
  let result;
  try {
    const data = await gql(SET_LIMIT_MUTATION, { workbookId: wb.id, limit });
    result = data.setWorkbookSpendLimit;
  } catch (error) {
    result = { __typename: "Error", message: error.message };
  }
  if (session.workspace !== workspace) return; // logged out (or into another) meanwhile
  if (result.__typename !== "Workbook") {
    setButtonsDisabled(row, false);
    showRowMessage(message, result.message, true);
    return;
  }
  const updated = { ...wb, ...result };
  workspace.workbooks = workspace.workbooks.map((w) => (w.id === wb.id ? updated : w));
  const fresh = workbookRow(updated);
  row.replaceWith(fresh);
  const done = fresh.querySelector(".row-message");
  showRowMessage(
    done,
    limit === null ? "Limit removed." : `Limit set to ${formatDecimal(result.spendLimit)}.`,
    false,
  );
}
