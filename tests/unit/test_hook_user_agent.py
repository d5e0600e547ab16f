"""SageMakerFleetHook names the calling operator in its clients' user agent as the provider does, without
``inspect.stack()`` (which reads every frame's source: ~0.1 s per client, paid by each task process)."""

from __future__ import annotations

import time

from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook

from sagemaker_fleet.hooks.sagemaker import SageMakerFleetHook


def _nested(depth: int, call):
    return call() if depth == 0 else _nested(depth - 1, call)


class TrainLikeOperator:
    def execute(self, hook: AwsBaseHook) -> tuple[str, float]:
        # A task's stack is deep (supervisor, runner, operator wrappers): measure from under 60 frames.
        started = time.perf_counter()
        agent = _nested(60, lambda: hook._generate_user_agent_extra_field("extra"))
        return agent, time.perf_counter() - started


class PokingSensor:
    def poke(self, hook: AwsBaseHook) -> str:
        return _nested(5, lambda: hook._get_caller())


def test_the_user_agent_names_the_operator_as_the_providers_does() -> None:
    provider_agent, _ = TrainLikeOperator().execute(AwsBaseHook(aws_conn_id=None, client_type="s3"))
    fleet_agent, _ = TrainLikeOperator().execute(SageMakerFleetHook(aws_conn_id=None))
    assert "Caller/TrainLikeOperator" in fleet_agent
    assert fleet_agent == provider_agent


def test_without_an_execute_frame_both_answer_unknown() -> None:
    assert PokingSensor().poke(SageMakerFleetHook(aws_conn_id=None)) == "Unknown"
    assert PokingSensor().poke(AwsBaseHook(aws_conn_id=None, client_type="s3")) == "Unknown"


def test_finding_the_caller_reads_no_source() -> None:
    # The provider's walk reads the source of every frame (linecache); the frame walk reads none.
    import linecache

    linecache.clearcache()
    TrainLikeOperator().execute(SageMakerFleetHook(aws_conn_id=None))
    assert __file__ not in linecache.cache
