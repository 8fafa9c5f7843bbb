"""A POST of a JSON body answered without strawberry's request handling for every transport.

strawberry's `AsyncBaseHTTPView.run` serves GET, multipart uploads, batches and streaming from
one path: for a plain POST of JSON it still parses the Content-Type through `email.message`,
parses the query string to decide about the IDE, looks for a streaming transport and builds
request adapters, about a sixth of a charge request's CPU (bench/README.md). `answer` serves
exactly that request the way `run` does, through the view's hooks (`parse_json`,
`get_sub_response`, `get_context`, `process_result`, `create_response`) and
`schema.execute`, with strawberry's own messages for a malformed request. Any other request
(GET, another content type, a streaming Accept) goes to strawberry's `run`.

Not strawberry's public API (the order `run` calls its hooks in, its messages), so it is
installed with the other fast paths (graphql_schema.perf: the off switch and the version
check), and tests/api/test_fast_http.py compares its answers with strawberry's for a table of
requests, well-formed and not.
"""

from __future__ import annotations

from typing import Any

from cross_web import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from strawberry.exceptions import MissingQueryError
from strawberry.http import GraphQLRequestData
from strawberry.schema.exceptions import CannotGetOperationTypeError, InvalidOperationTypeError
from strawberry.types.graphql import OperationType

# What strawberry allows over POST (OperationType.from_http("POST")).
POST_OPERATIONS = frozenset(
    (OperationType.QUERY, OperationType.MUTATION, OperationType.SUBSCRIPTION)
)
_STREAMING = ("multipart/mixed", "text/event-stream")


def eligible(request: Request) -> bool:
    """A POST whose body is declared JSON and that asks for no streamed answer."""
    if request.method != "POST":
        return False
    headers = request.headers
    # Spelled exactly; anything else is answered by strawberry (which refuses "Application/JSON").
    media_type = headers.get("content-type", "").partition(";")[0].strip()
    if media_type != "application/json":
        return False
    accept = headers.get("accept", "")
    return not any(kind in accept for kind in _STREAMING)


def request_data(data: dict[str, Any]) -> GraphQLRequestData:
    """strawberry's checks of a JSON object's members, with its messages."""
    query = data.get("query")
    if not isinstance(query, (str, type(None))):
        raise HTTPException(
            400, "The GraphQL operation's `query` must be a string or null, if provided."
        )
    variables = data.get("variables")
    if not isinstance(variables, (dict, type(None))):
        raise HTTPException(
            400, "The GraphQL operation's `variables` must be an object or null, if provided."
        )
    extensions = data.get("extensions")
    if not isinstance(extensions, (dict, type(None))):
        raise HTTPException(
            400, "The GraphQL operation's `extensions` must be an object or null, if provided."
        )
    return GraphQLRequestData(
        query=query,
        variables=variables,
        operation_name=data.get("operationName"),
        extensions=extensions,
        protocol="http",
    )


async def answer(view: Any, request: Request) -> Response:
    """The response strawberry's `run` gives an eligible request (HTTPException as it does).

    `view.parse_json` refuses a body that is not a JSON object (batches are not enabled), and
    `view.resolve_request` applies what the view's `parse_http_body` adds (persisted queries)."""
    sub_response = await view.get_sub_response(request)
    context = await view.get_context(request, response=sub_response)
    data = view.resolve_request(request_data(view.parse_json(await request.body())))
    try:
        result = await view.schema.execute(
            data.query,
            root_value=None,
            variable_values=data.variables,
            context_value=context,
            operation_name=data.operation_name,
            allowed_operation_types=POST_OPERATIONS,
            operation_extensions=data.extensions,
        )
    except CannotGetOperationTypeError as error:
        raise HTTPException(400, error.as_http_error_reason()) from error
    except InvalidOperationTypeError as error:
        raise HTTPException(400, error.as_http_error_reason("POST")) from error
    except MissingQueryError as error:
        raise HTTPException(400, "No GraphQL query found in the request") from error
    response_data = await view.process_result(request, result)
    return view.create_response(response_data, sub_response)
