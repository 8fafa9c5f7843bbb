// How an audit entry (R39) is shown: its target with a short id, and what it changed as
// "field: before → after" for each field whose value differs (a creation has no before, a
// deletion no after). Values are JSON as the API stores them; amounts stay digit for digit.

import { shortId } from "./eventdata.js";

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

// "workbook:6f1c…-…" -> { text: "workbook 6f1c2a9b…", title: the whole target }.
export function auditTarget(target) {
  if (!target) return { text: "—", title: "" };
  const [kind, id] = target.split(/:(.*)/s);
  if (id === undefined) return { text: target, title: target };
  return { text: `${kind.replace(/_/g, " ")} ${UUID.test(id) ? shortId(id) : id}`, title: target };
}

// One JSON value as text: null or absent "—", strings as they are, anything else as JSON.
export function auditValue(value) {
  if (value === null || value === undefined) return "—";
  if (typeof value === "string") return value;
  return JSON.stringify(value);
}

// [{ field, before, after }] for each field whose value differs between the two objects (null
// for a side that is not there), in the order of the fields' first appearance.
export function auditChanges(before, after) {
  const from = asObject(before);
  const to = asObject(after);
  const fields = [...new Set([...Object.keys(from), ...Object.keys(to)])];
  return fields
    .filter((field) => JSON.stringify(from[field]) !== JSON.stringify(to[field]))
    .map((field) => ({
      field,
      before: before === null || before === undefined ? null : auditValue(from[field]),
      after: after === null || after === undefined ? null : auditValue(to[field]),
    }));
}

// The changes on one line: "limit: 100 → 250; …", "created: …" or "deleted: …".
export function auditChangeText(before, after) {
  const changes = auditChanges(before, after);
  if (changes.length === 0) return "no change";
  return changes
    .map(({ field, before: from, after: to }) => {
      if (from === null) return `${field}: ${to}`;
      if (to === null) return `${field}: ${from} (removed)`;
      return `${field}: ${from} → ${to}`;
    })
    .join("; ");
}

// A JSON value that is not an object (a bare amount, say) is shown as the field "value".
function asObject(value) {
  if (value === null || value === undefined) return {};
  if (typeof value === "object" && !Array.isArray(value)) return value;
  return { value };
}
