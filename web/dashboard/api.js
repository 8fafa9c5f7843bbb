// Talking to Tally: GraphQL at POST /graphql and the usage export at GET /usage.csv, with the API
// key the user typed in, as any frontend would. The key is kept in sessionStorage: gone when the
// tab closes, and never in a URL.

const KEY_STORAGE = "tally.apiKey";
const UNREACHABLE = "Could not reach Tally. Check the connection and try again.";

let apiKey = null; // the key of the open session

export class ApiError extends Error {
  constructor(message, code) {
    super(message);
    this.code = code; // the GraphQL error's extensions.code, or NETWORK / HTTP
  }
}

// The key this tab was opened with earlier, if any; true when there is one.
export function restoreKey() {
  apiKey = sessionStorage.getItem(KEY_STORAGE);
  return Boolean(apiKey);
}

// A key the API has just accepted: used from now on, and kept for a reload of this tab.
export function keepKey(key) {
  apiKey = key;
  sessionStorage.setItem(KEY_STORAGE, key);
}

// The open session's key (the live socket sends it in connection_init).
export function currentKey() {
  return apiKey;
}

export function forgetKey() {
  sessionStorage.removeItem(KEY_STORAGE);
  apiKey = null;
}

// The query's `data`; an ApiError carrying the first error's message and code otherwise.
export async function gql(query, variables = {}, key = apiKey) {
  let response;
  try {
    response = await fetch("/graphql", {
      method: "POST",
      headers: { "Content-Type": "application/json", Authorization: `Bearer ${key}` },
      body: JSON.stringify({ query, variables }),
    });
  } catch {
    throw new ApiError(UNREACHABLE, "NETWORK");
  }
  let body;
  try {
    body = await response.json();
  } catch {
    throw new ApiError(`Tally answered with HTTP ${response.status}.`, "HTTP");
  }
  if (body.errors && body.errors.length > 0) {
    const [first] = body.errors;
    throw new ApiError(first.message, first.extensions?.code ?? "ERROR");
  }
  return body.data;
}

// The usage export's response for these URLSearchParams; an Error with the server's message
// when it refuses. (A link cannot carry the Authorization header, hence a fetch.)
export async function fetchUsageCsv(params) {
  let response;
  try {
    response = await fetch(`/usage.csv?${params}`, {
      headers: { Authorization: `Bearer ${apiKey}` },
    });
  } catch {
    throw new Error(UNREACHABLE);
  }
  if (!response.ok) throw new Error(refusalMessage(await response.text(), response.status));
  return response;
}

// The message of a refused export: /usage.csv answers its refusals as short text (400, 401,
// 403, 404, 503), so that text, else the HTTP status.
export function refusalMessage(text, status) {
  return text.trim() || `HTTP ${status}`;
}

// What a panel says when it cannot be loaded: a FORBIDDEN (a member key asking for what only an
// admin may see) as a sentence about keys, anything else with the API's message.
export function loadErrorText(error, what) {
  if (error.code === "FORBIDDEN") return `Only an admin key can see ${what}.`;
  return `${what.charAt(0).toUpperCase()}${what.slice(1)} could not be loaded: ${error.message}`;
}
