// What a person typed into the alert, webhook and auto top-up forms, checked before it is sent
// and turned into the API's input. Each function returns the input or throws an Error whose
// message the page shows as it is. The API checks everything again; these catch the obvious
// mistakes with a clearer message, and never refuse what the API would take.

import { parseCreditAmount } from "./decimal.js";
import { EVENT_TYPES } from "./eventdata.js";

const MAX_URL = 2_048; // characters, as the API allows
const MAX_DESCRIPTION = 500;
const MAX_PER_CYCLE = 100; // auto top-ups a cycle, as the API allows

// An AlertInput: on DATA_CREDITS an amount of credits, on ACTIONS a whole percent, 1 to 100
// ("80" or "80%").
export function alertInput(meter, text) {
  const typed = String(text ?? "").trim();
  if (meter === "DATA_CREDITS") {
    const threshold = parseCreditAmount(typed);
    if (threshold === null) {
      throw new Error("Enter a number of Data Credits, such as 500 or 12.5.");
    }
    return { meter, threshold };
  }
  if (meter === "ACTIONS") {
    const percent = typed.replace(/\s*%$/, "");
    if (!/^\d+$/.test(percent) || Number(percent) < 1 || Number(percent) > 100) {
      throw new Error("Enter a whole percent of Actions capacity, from 1 to 100.");
    }
    return { meter, threshold: String(Number(percent)) };
  }
  throw new Error("Choose a meter.");
}

// A WebhookEndpointInput from the form: the URL (https, or http where the server allows it),
// the chosen event types (none: null, every type) and an optional description.
export function endpointInput({ url, eventTypes = [], description = "" }) {
  const address = String(url ?? "").trim();
  if (!address) throw new Error("Enter the endpoint's URL, such as https://example.com/hooks.");
  if (address.length > MAX_URL) {
    throw new Error(`The URL is too long: at most ${MAX_URL.toLocaleString("en-US")} characters.`);
  }
  if (/\s/.test(address)) throw new Error("The URL must not contain spaces.");
  let parsed;
  try {
    parsed = new URL(address);
  } catch {
    throw new Error("That is not a URL: it should look like https://example.com/hooks.");
  }
  if (parsed.protocol !== "https:" && parsed.protocol !== "http:") {
    throw new Error("The URL must start with https://.");
  }
  if (parsed.username || parsed.password) {
    throw new Error("The URL must not carry a user name or password; the signature is enough.");
  }
  const unknown = eventTypes.filter((type) => !EVENT_TYPES.includes(type));
  if (unknown.length > 0) throw new Error(`Unknown event type: ${unknown.join(", ")}.`);
  const text = String(description ?? "").trim();
  if (text.length > MAX_DESCRIPTION) {
    throw new Error(`The description is too long: at most ${MAX_DESCRIPTION} characters.`);
  }
  return {
    url: address,
    eventTypes: eventTypes.length === 0 ? null : [...eventTypes],
    description: text || null,
  };
}

// The input that leaves an endpoint as it is but for `enabled`: updateWebhookEndpoint replaces
// the URL, the types and the description, so all three are sent back as they are.
export function endpointToggleInput(endpoint, enabled) {
  return {
    url: endpoint.url,
    eventTypes: endpoint.eventTypes.length === 0 ? null : [...endpoint.eventTypes],
    description: endpoint.description ?? null,
    enabled,
  };
}

// An AutoTopUpInput: buy `credits` (more than 0) when available falls below `threshold`, at most
// `maxPerCycle` (1 to 100; 3 when left empty) times a cycle.
export function autoTopUpInput({ threshold, credits, maxPerCycle }) {
  const below = parseCreditAmount(threshold ?? "");
  if (below === null) {
    throw new Error("Enter the threshold as a number of Data Credits, such as 500 or 12.5.");
  }
  const amount = parseCreditAmount(credits ?? "");
  if (amount === null || /^0*(\.0*)?$/.test(amount)) {
    throw new Error("Enter the Data Credits to buy each time: a number more than 0.");
  }
  const times = String(maxPerCycle ?? "").trim() || "3";
  if (!/^\d+$/.test(times) || Number(times) < 1 || Number(times) > MAX_PER_CYCLE) {
    throw new Error(
      `Enter how many times a cycle it may buy: a whole number, 1 to ${MAX_PER_CYCLE}.`,
    );
  }
  return { threshold: below, credits: amount, maxPerCycle: Number(times) };
}
