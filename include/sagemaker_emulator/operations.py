"""The SageMaker control plane's operation table, built here and only here: AWS operation name -> handler.

Each operations module exports its handlers as ``HANDLERS`` (request and response only; the behaviour is in
the runners and planes); this table joins them, refusing a name claimed twice, so what the emulator answers
is readable in one place. (That every name is one of botocore's SageMaker operations is checked by
tests/unit/test_operation_table.py, not here: the service model loads at the first request, not at start.) A name missing from
the table answers ``UnknownOperationException``, as AWS does for an operation it does not have.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from . import control_plane, processing_operations, training_operations, transform_operations
from .control_plane import Handler, RequestContext
from .errors import AwsError
from .shapes import check_request
from .validation import unknown_operation


def _endpoint_handlers() -> Mapping[str, Handler]:
    # Without the serving plane (it failed to import, see emulator._serving_plane) the endpoint operations
    # answer UnknownOperation rather than creating endpoints nothing would ever serve.
    try:
        from .serving import endpoints
    except ImportError:
        return {}
    return endpoints.HANDLERS


def build_table(*groups: Mapping[str, Handler]) -> dict[str, Handler]:
    """One table from the modules' handler maps; a name in two groups is a bug."""
    table: dict[str, Handler] = {}
    for group in groups:
        for name, handler in group.items():
            if name in table:
                raise RuntimeError(f"operation {name} has two handlers: {table[name]!r} and {handler!r}")
            table[name] = handler
    return table


OPERATIONS: dict[str, Handler] = build_table(
    control_plane.HANDLERS,
    training_operations.HANDLERS,
    processing_operations.HANDLERS,
    transform_operations.HANDLERS,
    _endpoint_handlers(),
)


def dispatch(ctx: RequestContext, body: dict[str, Any]) -> dict[str, Any]:
    handler = OPERATIONS.get(ctx.operation)
    if handler is None:
        raise unknown_operation(ctx.operation)
    fault = ctx.emulator.faults.take("throttle", operation=ctx.operation)
    if fault is not None:
        raise AwsError("ThrottlingException", "Rate exceeded")
    return handler(ctx, check_request(ctx.operation, body))
