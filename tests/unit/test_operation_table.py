"""The emulator's one operation table (operations.py): what it holds, what it refuses, how it dispatches."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from include.sagemaker_emulator import (
    control_plane,
    operations,
    processing_operations,
    training_operations,
    transform_operations,
)
from include.sagemaker_emulator.control_plane import RequestContext
from include.sagemaker_emulator.errors import AwsError
from include.sagemaker_emulator.faults import FaultRegistry
from include.sagemaker_emulator.serving import endpoints
from include.sagemaker_emulator.shapes import operation_names

MODULES = (control_plane, training_operations, processing_operations, transform_operations, endpoints)


def test_table_is_exactly_the_modules_handlers():
    expected = {name: handler for module in MODULES for name, handler in module.HANDLERS.items()}
    table = operations.OPERATIONS
    assert table == expected
    # The job kinds and endpoints are all there (a module dropped from the table would silently vanish).
    for name in ("CreateTrainingJob", "ListProcessingJobs", "StopTransformJob", "UpdateEndpoint", "AddTags"):
        assert name in operations.OPERATIONS


def test_every_name_is_a_sagemaker_operation_in_botocore():
    assert set(operations.OPERATIONS) <= operation_names()


def test_build_table_refuses_a_name_claimed_twice():
    def first(ctx, body):
        return {}

    def second(ctx, body):
        return {}

    with pytest.raises(RuntimeError, match="DescribeModel has two handlers"):
        operations.build_table({"DescribeModel": first}, {"DescribeModel": second})


def _context(operation: str) -> RequestContext:
    return RequestContext(SimpleNamespace(faults=FaultRegistry()), "us-east-1", operation)  # type: ignore[arg-type]


def test_dispatch_answers_unknown_operation_for_a_name_not_in_the_table():
    assert "CreateNotebookInstance" in operation_names()  # real in SageMaker, not emulated
    with pytest.raises(AwsError) as raised:
        operations.dispatch(_context("CreateNotebookInstance"), {})
    assert raised.value.code == "UnknownOperationException"
    assert "'CreateNotebookInstance'" in raised.value.message


def test_dispatch_checks_the_request_against_the_model_before_the_handler(monkeypatch):
    seen = []
    monkeypatch.setitem(operations.OPERATIONS, "DescribeModel", lambda ctx, body: seen.append(body) or {"ok": 1})
    with pytest.raises(AwsError) as raised:
        operations.dispatch(_context("DescribeModel"), {})
    assert raised.value.code == "ValidationException" and "modelName" in raised.value.message
    assert seen == []
    assert operations.dispatch(_context("DescribeModel"), {"ModelName": "m"}) == {"ok": 1}
    assert seen == [{"ModelName": "m"}]
