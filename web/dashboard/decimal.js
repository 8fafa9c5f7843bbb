// Data Credit amounts as the API sends them: Decimal strings with at most four decimal places.
// They are shown digit for digit and computed as BigInt ten-thousandths: a float never holds one.

const SCALE = 4; // decimal places of a Data Credit (app/units.py: CREDIT_SCALE = 10,000)
const BASE = 10n ** BigInt(SCALE);

// A Decimal string with thousands separators, digits untouched: "12345.5" -> "12,345.5".
// `signed` puts "+" before a positive amount (ledger entries); negatives get a minus sign, "−".
export function formatDecimal(value, { signed = false } = {}) {
  const text = String(value);
  const negative = text.startsWith("-");
  const [whole, fraction] = text.replace(/^[-+]/, "").split(".");
  const grouped = whole.replace(/\B(?=(\d{3})+(?!\d))/g, ",");
  const sign = negative ? "−" : signed && !/^0*(\.0*)?$/.test(text) ? "+" : "";
  return sign + grouped + (fraction ? `.${fraction}` : "");
}

// "12.5" -> 125000n. Digits past the fourth decimal place are dropped (the API sends none).
export function toUnits(value) {
  const text = String(value);
  const negative = text.startsWith("-");
  const [whole, fraction = ""] = text.replace(/^[-+]/, "").split(".");
  const units = BigInt(whole || "0") * BASE +
    BigInt((fraction + "0".repeat(SCALE)).slice(0, SCALE));
  return negative ? -units : units;
}

// 125000n -> "12.5": the shortest Decimal string, as the API writes it.
export function fromUnits(units) {
  const negative = units < 0n;
  const abs = negative ? -units : units;
  const fraction = (abs % BASE).toString().padStart(SCALE, "0").replace(/0+$/, "");
  return (negative ? "-" : "") + (abs / BASE).toString() + (fraction ? `.${fraction}` : "");
}

// The exact sum of Decimal strings, as a Decimal string.
export function sumDecimals(values) {
  return fromUnits(values.reduce((sum, value) => sum + toUnits(value), 0n));
}

// How much of `whole` `part` is, as a CSS width to a tenth of a percent, 0% to 100% ("42.5%").
// Exact, rounding half up, so a bar never shows a float's rounding of an amount.
export function fillPercent(part, whole) {
  const total = toUnits(whole);
  if (total <= 0n) return "0.0%";
  const units = toUnits(part);
  const clamped = units < 0n ? 0n : units > total ? total : units;
  const tenths = (clamped * 2000n + total) / (2n * total); // round(clamped / total * 1000)
  return `${tenths / 10n}.${tenths % 10n}%`;
}

// What a person typed as a limit ("1,250.5") as the Decimal string to send ("1250.5"), or null
// when it is not a non-negative amount with at most four decimal places.
export function parseCreditAmount(text) {
  const amount = String(text).trim().replace(/,/g, "");
  return /^\d+(\.\d{1,4})?$/.test(amount) ? amount : null;
}
