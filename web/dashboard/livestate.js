// How the page keeps up with the workspace, as a small state machine without side effects
// (live.js runs it): live over the GraphQL WebSocket while it holds, polling POST /graphql while
// it does not (reconnecting in the background), stopped for good when the key is refused.
//
//   connecting --connected--> live
//   connecting, live, polling --lost--> polling (a reconnect is tried after a growing wait)
//   polling --connected--> live
//   any --refused (4403, or UNAUTHENTICATED over HTTP)--> stopped
//   any --closed (logged out)--> off

export const POLL_MS = 3_000; // how often a page without its socket asks for the workspace
export const FORBIDDEN_CLOSE = 4403; // the server's close code for a refused or revoked key
const RETRY_FIRST_MS = 1_000;
const RETRY_MAX_MS = 30_000;

export const INITIAL = Object.freeze({ phase: "connecting", failures: 0 });
export const OFF = Object.freeze({ phase: "off", failures: 0 });

// The state after `event`: { type: "connected" | "lost" | "refused" | "closed", code? }. A
// "lost" with the code 4403 is a refusal: the server closes a revoked key's socket with it.
export function liveStep(state, event) {
  if (state.phase === "off" || state.phase === "stopped") return state; // nothing revives it
  switch (event.type) {
    case "connected":
      return { phase: "live", failures: 0 };
    case "lost":
      if (event.code === FORBIDDEN_CLOSE) return { phase: "stopped", failures: state.failures };
      return { phase: "polling", failures: state.failures + 1 };
    case "refused":
      return { phase: "stopped", failures: state.failures };
    case "closed":
      return OFF;
    default:
      throw new Error(`unknown live event ${event.type}`);
  }
}

// Milliseconds before reconnecting after the `failures`-th loss in a row: 1 s, 2 s, 4 s … 30 s.
export function reconnectDelay(failures) {
  const doubled = RETRY_FIRST_MS * 2 ** Math.max(0, Math.min(failures - 1, 10));
  return Math.min(doubled, RETRY_MAX_MS);
}

// Whether the page should be polling in this state.
export function isPolling(state) {
  return state.phase === "polling";
}

// What the page says about it: { text, tone } ("ok", "warn", "error" or "" for none).
export function liveView(state) {
  switch (state.phase) {
    case "connecting":
      return { text: "Connecting for live updates…", tone: "" };
    case "live":
      return { text: "Live: changes show here as they happen.", tone: "ok" };
    case "polling":
      return {
        text: `Live updates are interrupted: checking every ${POLL_MS / 1000} s ` +
          "and reconnecting.",
        tone: "warn",
      };
    case "stopped":
      return {
        text: "This API key is no longer accepted (revoked?): the page stopped updating. " +
          "Log out and open the dashboard with a current key.",
        tone: "error",
      };
    default:
      return { text: "", tone: "" };
  }
}

// `task` wrapped so that calls made while it runs merge into one more run after it: however
// many changes arrive at once, at most one load is in flight and the last change is loaded.
export function coalesce(task) {
  let running = null;
  let again = false;
  const run = async () => {
    if (running) {
      again = true;
      return running;
    }
    running = (async () => {
      try {
        do {
          again = false;
          await task();
        } while (again);
      } finally {
        running = null;
      }
    })();
    return running;
  };
  return run;
}
