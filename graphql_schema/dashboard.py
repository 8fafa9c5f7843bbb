"""The workspace dashboard: a static page at `/` that talks only to the public GraphQL API.

Its own files live in `web/dashboard/` of the checkout; the chart library and the
graphql-transport-ws client come from the npm packages under `web/node_modules` (see
graphql_schema.ide), never from a CDN.
"""

from __future__ import annotations

from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, PlainTextResponse, Response

from graphql_schema.ide import node_modules

SOURCE = Path(__file__).resolve().parent.parent / "web" / "dashboard"

# Public name -> file: the page's own (in SOURCE) and the chart's (in node_modules). Only these
# are served: a new module of the page is listed here (and preloaded by index.html); its tests
# under SOURCE / "test" are not.
MODULES = [
    "app.js",  # the entry point; it imports the others
    "alerts.js",
    "api.js",
    "audit.js",
    "auditdata.js",
    "autotopup.js",
    "balanceat.js",
    "balances.js",
    "breakdown.js",
    "chart.js",
    "csv.js",
    "dates.js",
    "decimal.js",
    "deliveries.js",
    "dom.js",
    "eventdata.js",
    "events.js",
    "format.js",
    "inputs.js",
    "ledger.js",
    "limits.js",
    "live.js",
    "livestate.js",
    "savings.js",
    "state.js",
    "summary.js",
    "usage.js",
    "webhooks.js",
]
OWN = {
    **{name: name for name in MODULES},
    "style.css": "style.css",
}
NPM = {
    "uPlot.iife.min.js": "uplot/dist/uPlot.iife.min.js",
    "uPlot.min.css": "uplot/dist/uPlot.min.css",
    # The graphql-transport-ws client of the live updates (its UMD build: the global graphqlWs).
    "graphql-ws.min.js": "graphql-ws/umd/graphql-ws.min.js",
}
# The page's scripts, styles and requests all stay on this origin.
HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data: blob:; object-src 'none'; base-uri 'none'; "
        "form-action 'none'; frame-ancestors 'none'"
    ),
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
}
MISSING = """<!doctype html><title>Tally</title>
<p>The dashboard's files are not installed: it needs <code>web/dashboard/</code> of the Tally
checkout and its chart library from <code>npm ci --prefix web</code> (the README's install
command does it; TALLY_WEB_DIR names another folder holding <code>node_modules</code>).
The API itself works: POST /graphql.</p>"""


def asset_path(name: str) -> Path | None:
    if name in OWN:
        return SOURCE / OWN[name]
    if name in NPM:
        return node_modules() / NPM[name]
    return None


async def dashboard_page(request: Request) -> Response:
    page = SOURCE / "index.html"
    files = [page, *(asset_path(name) for name in (*OWN, *NPM))]
    if not all(path is not None and path.is_file() for path in files):
        return HTMLResponse(MISSING, status_code=503)
    return HTMLResponse(page.read_text("utf-8"), headers=HEADERS)


async def dashboard_asset(request: Request) -> Response:
    name = request.path_params["name"]
    path = asset_path(name)
    if path is None or not path.is_file():
        return PlainTextResponse("not found", status_code=404)
    # The page's own files change with the checkout; the npm ones only with their version.
    cache = "no-cache" if name in OWN else "public, max-age=86400"
    return FileResponse(path, headers={"Cache-Control": cache, "X-Content-Type-Options": "nosniff"})
