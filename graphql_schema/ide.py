"""GraphiQL, served with its scripts and styles from the npm packages under `web/`."""

from __future__ import annotations

import os
from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, PlainTextResponse, Response

PAGE = Path(__file__).parent / "static" / "graphiql.html"

# Public name -> path under node_modules. Only these files are served.
ASSETS = {
    "graphiql.min.css": "graphiql/graphiql.min.css",
    "graphiql.min.js": "graphiql/graphiql.min.js",
    "react.production.min.js": "react/umd/react.production.min.js",
    "react-dom.production.min.js": "react-dom/umd/react-dom.production.min.js",
    "explorer.css": "@graphiql/plugin-explorer/dist/style.css",
    "explorer.umd.js": "@graphiql/plugin-explorer/dist/index.umd.js",
}
MISSING = """<!doctype html><title>Tally GraphiQL</title>
<p>GraphiQL's files are not installed. Run <code>npm ci --prefix web</code> in the Tally
checkout (the README's install command does it), or set TALLY_WEB_DIR to a folder holding
<code>node_modules</code>. The API itself works: POST /graphql.</p>"""


def node_modules() -> Path:
    base = os.environ.get("TALLY_WEB_DIR") or Path(__file__).resolve().parent.parent / "web"
    return Path(base) / "node_modules"


def ide_html() -> str:
    if not all((node_modules() / path).is_file() for path in ASSETS.values()):
        return MISSING
    return PAGE.read_text("utf-8")


async def ide_asset(request: Request) -> Response:
    path = ASSETS.get(request.path_params["name"])
    if path is None or not (node_modules() / path).is_file():
        return PlainTextResponse("not found", status_code=404)
    return FileResponse(node_modules() / path, headers={"Cache-Control": "public, max-age=86400"})


def ide_response() -> HTMLResponse:
    return HTMLResponse(ide_html())
