// How counts, dates and the API's enum codes are shown. Dates are always UTC, as the API's are.

const longDate = new Intl.DateTimeFormat("en-US", {
  month: "short", day: "numeric", year: "numeric", timeZone: "UTC",
});
const shortDate = new Intl.DateTimeFormat("en-US", {
  month: "short", day: "numeric", timeZone: "UTC",
});
const intFormat = new Intl.NumberFormat("en-US");

const METER_NAMES = { ACTIONS: "Actions", DATA_CREDITS: "Data Credits" };

// 100000 -> "100,000". For counts (Actions, results) and chart ticks, never Data Credits.
export function formatInt(n) {
  return intFormat.format(n);
}

// "2025-01-05T00:00:00+00:00" -> "Jan 5, 2025"; no date -> "—".
export function formatDate(iso) {
  return iso ? longDate.format(new Date(iso)) : "—";
}

// Milliseconds -> "Jan 5", for the chart's day ticks.
export function formatShortDate(ms) {
  return shortDate.format(new Date(ms));
}

// "2025-01-05T09:30:12.5+00:00" -> "2025-01-05 09:30".
export function formatDateTime(iso) {
  return new Date(iso).toISOString().slice(0, 16).replace("T", " ");
}

// "ENRICHMENT" -> "Enrichment", "DATA_CREDITS" -> "Data credits".
export function humanize(code) {
  if (!code) return "—";
  const words = code.toLowerCase().replace(/_/g, " ");
  return words.charAt(0).toUpperCase() + words.slice(1);
}

// "DATA_CREDITS" -> "Data Credits"; an unknown meter as the API names it.
export function meterName(code) {
  return METER_NAMES[code] ?? code;
}
