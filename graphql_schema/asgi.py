"""The ASGI application: GraphQL (and GraphiQL) at /graphql, a health check, the lifespan."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

from cross_web import HTTPException  # strawberry's own, from its HTTP layer
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from strawberry.asgi import GraphQL
from strawberry.http import GraphQLHTTPResponse, process_result
from strawberry.types import ExecutionResult
from strawberry.types.unset import UNSET

from app.catalog import load_catalog
from app.catalog.store import seed_catalog
from app.config import Settings
from app.db import close_database, open_database
from graphql_schema.context import Context
from graphql_schema.csv_export import usage_csv_endpoint
from graphql_schema.dashboard import dashboard_asset, dashboard_page
from graphql_schema.errors import client_error, log_errors
from graphql_schema.gc_tuning import tune_gc
from graphql_schema.ide import ide_asset, ide_response
from graphql_schema.schema import schema
from jobs.scheduler import Scheduler

log = logging.getLogger("tally")


class TallyGraphQL(GraphQL[Context, None]):
    def __init__(self, settings: Settings) -> None:
        super().__init__(schema)
        self.settings = settings

    async def get_context(self, request: Request, response: Response) -> Context:  # type: ignore[override]
        return Context(request=request, settings=self.settings)

    async def render_graphql_ide(self, request: Request) -> Response:  # type: ignore[override]
        return ide_response()

    async def run(self, request: Any, context: Any = UNSET, root_value: Any = UNSET) -> Any:
        """Strawberry answers some bad requests with a plain-text reason that echoes the client
        (an unknown operationName): one holding a lone surrogate could not be encoded, and the
        client got a 500 instead of the 400."""
        try:
            return await super().run(request, context, root_value)
        except HTTPException as error:
            reason = error.reason.encode("utf-8", "backslashreplace").decode()
            raise HTTPException(error.status_code, reason) from None

    async def process_result(  # type: ignore[override]
        self, request: Request, result: ExecutionResult
    ) -> GraphQLHTTPResponse:
        """Every error leaves with a code; unexpected ones are logged here and masked."""
        if result.errors:
            log_errors(result.errors)
            result.errors = [client_error(e) for e in result.errors]
        return process_result(result)


async def health(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def start_database(settings: Settings) -> None:
    await open_database(settings.database_url)
    await seed_catalog(load_catalog(settings.catalog_path))


def create_app(settings: Settings, *, manage_database: bool = True) -> Starlette:
    """`manage_database=False` leaves the ORM to the caller (tests initialise it themselves)."""

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if manage_database:
            await start_database(settings)
        tune_gc()
        scheduler = None
        if manage_database and settings.scheduler:
            scheduler = Scheduler(settings.scheduler_interval)
            scheduler.start()
        try:
            yield
        finally:
            if scheduler is not None:  # before the database closes under a running job
                await scheduler.stop()
            if manage_database:
                await close_database()

    routes = [
        Route("/graphql", TallyGraphQL(settings)),
        Route("/graphiql/assets/{name}", ide_asset),
        Route("/healthz", health),
        Route("/usage.csv", usage_csv_endpoint(settings), methods=["GET"]),
        Route("/", dashboard_page),
        Route("/dashboard/assets/{name}", dashboard_asset),
    ]
    return Starlette(routes=routes, lifespan=lifespan)


def app_from_env() -> Starlette:
    """Factory for `uvicorn --factory` and worker processes: settings from the environment."""
    return create_app(Settings.from_env())
