// Live updates: the `workspaceUpdated` subscription over graphql-transport-ws on /graphql (the
// `graphql-ws` npm package's client, the global of its UMD build, which the page loads before
// its modules), the key in connection_init's payload. Each update hands the workspace to
// `onWorkspace`; when the socket is lost the page polls with `poll` every few seconds and
// reconnects in the background; a refused key (4403) stops both. livestate.js decides.

import {
  FORBIDDEN_CLOSE, INITIAL, OFF, POLL_MS, isPolling, liveStep, liveView, reconnectDelay,
} from "./livestate.js";

// The same fields as the Dashboard query's workspace, so an update replaces it whole.
export const WORKSPACE_FIELDS = `id name plan { code name } creditTier billingInterval status
  trialEndsAt createdAt currentPeriod { start end }
  pendingChange { plan { code name } creditTier billingInterval effectiveAt }
  actions { capacity used remaining resetsAt }
  dataCredits { balance cap monthlyGrant held available }
  workbooks { id name spendLimit spent }`;
const SUBSCRIPTION = `subscription Live { workspaceUpdated { ${WORKSPACE_FIELDS} } }`;
const KEEP_ALIVE_MS = 15_000; // our pings, so that no proxy takes the socket for idle
const ACK_WAIT_MS = 5_000; // a server that does not acknowledge by then counts as lost

let current = null; // the open page's connection, if any

// Starts keeping the page up to date with `key`:
//   onWorkspace(workspace, first): an update (`first`: the state a new socket starts with);
//   poll(): one round of reloading over HTTP, an ApiError UNAUTHENTICATED when the key is refused;
//   onState(view, state): what to say about it (livestate.liveView).
export function openLive(options) {
  closeLive();
  current = new LiveConnection(options);
  current.connect();
}

// Logged out: the socket is closed, the timers stopped, nothing more is delivered.
export function closeLive() {
  if (current) current.close();
  current = null;
}

// The key was refused over HTTP (a poll or any other request): stop as a 4403 would.
export function liveRefused() {
  if (current) current.dispatch({ type: "refused" });
}

// The browser's WebSocket, except that a message sent once the socket is closing is dropped
// quietly: graphql-ws may send one then (a subscribe racing a logout, a pong to a ping that
// crossed our close), which the browser would drop anyway but report as a console error.
let QuietWebSocket = null;
function quietWebSocket() {
  if (!QuietWebSocket && typeof WebSocket !== "undefined") {
    QuietWebSocket = class extends WebSocket {
      send(data) {
        if (this.readyState === WebSocket.OPEN) super.send(data);
      }
    };
  }
  return QuietWebSocket ?? undefined;
}

function socketUrl() {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  return `${scheme}://${location.host}/graphql`;
}

class LiveConnection {
  constructor({ key, onWorkspace, poll, onState, createClient = null, url = null }) {
    this.key = key;
    this.onWorkspace = onWorkspace;
    this.poll = poll;
    this.onState = onState;
    this.createClient = createClient ?? globalThis.graphqlWs?.createClient;
    this.url = url ?? socketUrl();
    this.state = INITIAL;
    this.client = null;
    this.pollTimer = null;
    this.retryTimer = null;
    this.attempt = 0; // numbers each socket, so a late callback of an old one is ignored
    this.show();
  }

  connect() {
    const attempt = ++this.attempt;
    if (!this.createClient) {
      this.dispatch({ type: "lost", code: null }); // no client library: poll instead
      return;
    }
    let first = true;
    const mine = () => attempt === this.attempt && this.state.phase !== "off";
    this.client = this.createClient({
      url: this.url,
      connectionParams: { Authorization: `Bearer ${this.key}` },
      lazy: true,
      retryAttempts: 0, // livestate.js decides when to reconnect, and shows it
      keepAlive: KEEP_ALIVE_MS,
      connectionAckWaitTimeout: ACK_WAIT_MS,
      on: { connected: () => mine() && this.dispatch({ type: "connected" }) },
      webSocketImpl: quietWebSocket(),
    });
    this.client.subscribe({ query: SUBSCRIPTION }, {
      next: (result) => {
        if (!mine()) return;
        if (result.errors?.length) {
          this.lose(result.errors[0].extensions?.code === "UNAUTHENTICATED" ? FORBIDDEN_CLOSE : null);
          return;
        }
        this.onWorkspace(result.data.workspaceUpdated, first);
        first = false;
      },
      // A CloseEvent (its code), an Error, or the server's GraphQL errors: all a lost socket.
      error: (error) => mine() && this.lose(typeof error?.code === "number" ? error.code : null),
      complete: () => mine() && this.lose(null),
    });
  }

  lose(code) {
    this.dispatch({ type: "lost", code });
  }

  dispatch(event) {
    const before = this.state;
    this.state = liveStep(this.state, event);
    if (this.state === before) return;
    if (this.state.phase !== "live" && event.type !== "connected") this.dropClient();
    this.schedule();
    this.show();
  }

  // Polls while the state says so, and plans the next reconnect after a loss.
  schedule() {
    clearTimeout(this.retryTimer);
    this.retryTimer = null;
    if (isPolling(this.state)) {
      if (!this.pollTimer) this.pollTimer = setInterval(() => this.pollOnce(), POLL_MS);
      this.retryTimer = setTimeout(() => this.connect(), reconnectDelay(this.state.failures));
    } else {
      clearInterval(this.pollTimer);
      this.pollTimer = null;
    }
  }

  async pollOnce() {
    try {
      await this.poll();
    } catch (error) {
      if (error?.code === "UNAUTHENTICATED") this.dispatch({ type: "refused" });
      // anything else: the next poll tries again, the status line already says why
    }
  }

  dropClient() {
    this.attempt++;
    const client = this.client;
    this.client = null;
    if (client) client.dispose();
  }

  show() {
    this.onState(liveView(this.state), this.state);
  }

  close() {
    this.state = OFF;
    this.dropClient();
    this.schedule();
  }
}
