"""The ASGI application: GraphQL (and GraphiQL) at /graphql, subscriptions over a WebSocket
on the same path, a health check, the lifespan."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

from cross_web import HTTPException  # strawberry's own, from its HTTP layer
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.http import GraphQLHTTPResponse, GraphQLRequestData, process_result
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL
from strawberry.types import ExecutionResult
from strawberry.types.unset import UNSET, UnsetType

from app.collector import tune_gc
from app.config import Settings
from app.events.listener import start_listening
from app.health import readiness
from app.logs import configure_logging
from app.metrics import CONTENT_TYPE, exposition, start_sampling
from app.query_budget import query_budget
from app.startup import close_database, start_database
from app.tracing import configure_tracing, shutdown_tracing
from app.webhooks.delivery import DeliveryWorker
from graphql_schema import json_codec, perf, persisted
from graphql_schema.context import Context
from graphql_schema.csv_export import usage_csv_endpoint
from graphql_schema.dashboard import dashboard_asset, dashboard_page
from graphql_schema.errors import client_error, forget_tracebacks, log_errors
from graphql_schema.http_errors import RETRY_AFTER_SECONDS, error_response, request_status
from graphql_schema.http_limits import BodyLimit
from graphql_schema.ide import ide_asset, ide_response
from graphql_schema.perf import http as fast_http
from graphql_schema.request_context import RequestContext, note
from graphql_schema.schema import schema_for
from graphql_schema.websocket import LiveSocketAdapter, LiveSocketHandler, accept_key
from jobs.scheduler import Scheduler

log = logging.getLogger("tally")


CONNECTION_INIT_WAIT = timedelta(seconds=10)  # a socket that sends no connection_init closes


class TallyGraphQL(GraphQL[Context, None]):
    graphql_transport_ws_handler_class = LiveSocketHandler
    websocket_adapter_class = LiveSocketAdapter

    def __init__(self, settings: Settings) -> None:
        super().__init__(
            schema_for(settings.introspection, settings.max_tokens, settings.fast_paths),
            graphql_ide="graphiql" if settings.graphiql else None,
            subscription_protocols=(GRAPHQL_TRANSPORT_WS_PROTOCOL,),
            connection_init_wait_timeout=CONNECTION_INIT_WAIT,
            max_subscriptions_per_connection=settings.max_subscriptions_per_key,
        )
        self.settings = settings
        self.fast_http = perf.http_enabled(settings.fast_paths)

    async def get_context(
        self, request: Request | WebSocket, response: Response | WebSocket
    ) -> Context:
        if isinstance(request, WebSocket):
            return Context(request=None, settings=self.settings, websocket=request)
        return Context(request=request, settings=self.settings)

    async def on_ws_connect(self, context: Context) -> UnsetType | dict[str, object] | None:
        await accept_key(context)
        return UNSET

    async def render_graphql_ide(self, request: Request) -> Response:
        return ide_response()

    def parse_json(self, data: str | bytes) -> Any:
        """A body (or GET `variables`) that is not a JSON object is the client's error, never a
        500 from strawberry reading `.get` off a string or a number."""
        try:
            # Decoded here: json.loads would take UTF-16 and UTF-32 bytes as well.
            text = data.decode("utf-8") if isinstance(data, bytes) else data
            value = json_codec.loads(text)
        except (ValueError, RecursionError):  # malformed, not UTF-8, or nested too deep
            raise HTTPException(400, "the body is not JSON text in UTF-8") from None
        if not isinstance(value, dict):
            raise HTTPException(400, "expected a JSON object: {query, variables, operationName}")
        return value

    def encode_json(self, data: object) -> str:
        return json_codec.dumps(data)

    def should_render_graphql_ide(self, request: Any) -> bool:
        """A GET carrying only a persisted query's hash asks for its result, not the IDE."""
        if "extensions" in request.query_params:
            return False
        return super().should_render_graphql_ide(request)

    async def parse_http_body(self, request: Any) -> Any:
        """The request's data, its query found by hash for a persisted query (APQ)."""
        data = await super().parse_http_body(request)
        if isinstance(data, GraphQLRequestData):
            return self.resolve_request(data)
        return data

    def resolve_request(self, data: GraphQLRequestData) -> GraphQLRequestData:
        try:
            return persisted.resolve(data)
        except persisted.PersistedQueryInvalid as error:
            raise HTTPException(400, str(error)) from None

    async def run(self, request: Any, context: Any = UNSET, root_value: Any = UNSET) -> Any:
        """strawberry answers requests it cannot read with plain text; Tally answers them in
        the GraphQL error shape with a code (API.md "HTTP")."""
        if isinstance(request, WebSocket):  # each update gets its own budget (subscriptions)
            return await super().run(request, context, root_value)
        try:
            with query_budget(self.settings.max_queries):
                if self.fast_http and fast_http.eligible(request):
                    return await fast_http.answer(self, request)
                return await super().run(request, context, root_value)
        except persisted.PersistedQueryNotFound:
            # Apollo's convention: 200 and never cached, so the client's retry with the query
            # is not answered from a cache.
            note(outcome="errors: " + persisted.NOT_FOUND)
            return error_response(
                200, persisted.NOT_FOUND, persisted.NOT_FOUND_MESSAGE, persisted.NO_CACHE
            )
        except HTTPException as error:
            code = "NOT_FOUND" if error.status_code == 404 else "BAD_REQUEST"
            # The reason may echo the client (an unknown operationName): a lone surrogate in
            # it could not be encoded, and the 400 would become a 500.
            reason = error.reason.encode("utf-8", "backslashreplace").decode()
            if reason.startswith("subscriptions are not allowed"):
                reason += "; subscribe over a WebSocket on /graphql (graphql-transport-ws)"
            return error_response(error.status_code, code, reason)

    async def process_result(
        self, request: Request, result: ExecutionResult
    ) -> GraphQLHTTPResponse:
        """Every error leaves with a code; unexpected ones are logged here and masked."""
        if result.errors:
            log_errors(result.errors)
            coded = [client_error(e) for e in result.errors]
            forget_tracebacks(result.errors)
            result.errors = coded
            codes = sorted({str((e.extensions or {}).get("code")) for e in coded})
            note(outcome="errors: " + ",".join(codes))
        else:
            note(outcome="ok")
        return process_result(result)

    # No batching: strawberry's signature also takes the list of results of a batch.
    def create_response(  # type: ignore[override]
        self, response_data: GraphQLHTTPResponse, sub_response: Response
    ) -> Response:
        """A request that failed as a whole for its size or shape is a 400, for a lost
        database a 503 with Retry-After; anything that executed is a 200."""
        response = super().create_response(response_data, sub_response)
        status = request_status(response_data)
        if status is not None:
            response.status_code = status
            if status == 503:
                response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
        return response


async def health(request: Request) -> Response:
    """Liveness: the process answers (also at the older /healthz)."""
    return JSONResponse({"status": "ok"})


async def ready(request: Request) -> Response:
    """Readiness: the database answers and every migration is applied; 503 otherwise."""
    is_ready, reason = await readiness()
    status = 200 if is_ready else 503
    return JSONResponse({"status": "ready" if is_ready else "unavailable", "reason": reason},
                        status_code=status)  # fmt: skip


async def metrics(request: Request) -> Response:
    return Response(exposition(), media_type=CONTENT_TYPE)


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
        webhooks = None
        if manage_database and settings.webhook_delivery:
            webhooks = DeliveryWorker(settings)
            webhooks.start()
        sampler = await start_sampling() if manage_database else None
        # Commits of every process reach this one's subscribers (app.events.listener).
        listener = await start_listening(settings.direct_url) if manage_database else None
        try:
            yield
        finally:
            if sampler is not None:
                sampler.cancel()
            if listener is not None:
                await listener.stop()
            if webhooks is not None:  # before the database closes under an attempt
                await webhooks.stop()
            if scheduler is not None:  # before the database closes under a running job
                await scheduler.stop()
            if manage_database:
                await close_database()
            shutdown_tracing()  # the spans still buffered are sent

    graphql = TallyGraphQL(settings)
    routes = [
        Route("/graphql", graphql),
        WebSocketRoute("/graphql", graphql),  # subscriptions (graphql-transport-ws)
        *([Route("/graphiql/assets/{name}", ide_asset)] if settings.graphiql else []),
        Route("/healthz", health),
        Route("/healthz/live", health),
        Route("/healthz/ready", ready),
        Route("/metrics", metrics),
        Route("/usage.csv", usage_csv_endpoint(settings), methods=["GET"]),
        Route("/", dashboard_page),
        Route("/dashboard/assets/{name}", dashboard_asset),
    ]
    limits = Middleware(BodyLimit, max_bytes=settings.max_body_bytes, timeout=settings.body_timeout)
    # Outermost first: a request refused for its size still gets its id and its log line.
    middleware = [Middleware(RequestContext), limits]
    return Starlette(routes=routes, middleware=middleware, lifespan=lifespan)


def app_from_env() -> Starlette:
    """Factory for `uvicorn --factory` and worker processes: settings from the environment."""
    settings = Settings.from_env()
    configure_logging(settings.log_format)
    configure_tracing()  # in each worker: OpenTelemetry's exporter thread does not fork
    return create_app(settings)
