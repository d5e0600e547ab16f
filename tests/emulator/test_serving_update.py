"""UpdateEndpoint is blue/green: no failed request while it runs, rollback when the new configuration cannot
load or an alarm fires, canary traffic shifting, UpdateEndpointWeightsAndCapacities, retained properties."""

from __future__ import annotations

import threading
from collections import Counter

import boto3
import pytest
from botocore.exceptions import ClientError

from include.sagemaker_emulator.process import EmulatorProcess
from tests.conftest import inject_fault
from tests.emulator.helpers import unique
from tests.emulator.serving_helpers import (
    create_config,
    create_model,
    csv_row,
    deploy,
    housing_like,
    upload_xgboost,
    wait_status,
)

BUCKET = "serving-update"
ROW = csv_row(housing_like(1, seed=3)[0][0])


def _two_configs(sm, s3) -> tuple[str, str]:
    blue_model, green_model = unique("blue"), unique("green")
    create_model(sm, blue_model, upload_xgboost(s3, BUCKET, f"{blue_model}/model.tar.gz", seed=1))
    create_model(sm, green_model, upload_xgboost(s3, BUCKET, f"{green_model}/model.tar.gz", seed=2, scale=3.0))
    blue, green = unique("blue-config"), unique("green-config")
    create_config(sm, blue, [("xgboost-model", blue_model, 1.0)])
    create_config(sm, green, [("linear-model", green_model, 1.0)])
    return blue, green


class Invoker(threading.Thread):
    """Invokes in a loop until stopped, counting answers by variant and failures."""

    def __init__(self, url: str, endpoint: str):
        super().__init__(daemon=True)
        self.client = boto3.client("sagemaker-runtime", endpoint_url=url, region_name="us-east-1")
        self.endpoint = endpoint
        self.stop = threading.Event()
        self.seen: list[str] = []
        self.failures: list[str] = []

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                answer = self.client.invoke_endpoint(EndpointName=self.endpoint, ContentType="text/csv", Body=ROW)
                self.seen.append(answer["InvokedProductionVariant"])
            except Exception as exc:  # every failure is a test failure; keep counting
                self.failures.append(repr(exc))

    def finish(self) -> None:
        self.stop.set()
        self.join(10)


@pytest.fixture(scope="module")
def slow_emulator(tmp_path_factory):
    """An emulator whose transitions take observable time (4 nominal minutes = 0.72 s)."""
    with EmulatorProcess(tmp_path_factory.mktemp("slow") / "data", time_scale=0.003) as emu:
        yield emu


def _clients(emu):
    kwargs = {"endpoint_url": emu.url, "region_name": "us-east-1"}
    return boto3.client("sagemaker", **kwargs), boto3.client("s3", **kwargs)


def test_update_with_continuous_traffic_has_no_failed_request(slow_emulator):
    sm, s3 = _clients(slow_emulator)
    blue, green = _two_configs(sm, s3)
    endpoint = unique("notebook")
    sm.create_endpoint(EndpointName=endpoint, EndpointConfigName=blue)
    with pytest.raises(ClientError) as in_progress:
        sm.update_endpoint(EndpointName=endpoint, EndpointConfigName=green)
    assert in_progress.value.response["Error"]["Message"].startswith("Cannot update in-progress endpoint")
    wait_status(sm, endpoint, "InService")
    invoker = Invoker(slow_emulator.url, endpoint)
    invoker.start()
    sm.update_endpoint(EndpointName=endpoint, EndpointConfigName=green)
    updating = sm.describe_endpoint(EndpointName=endpoint)
    assert updating["EndpointStatus"] == "Updating"
    assert updating["EndpointConfigName"] == blue  # the old configuration until the switch
    assert updating["PendingDeploymentSummary"]["EndpointConfigName"] == green
    done = wait_status(sm, endpoint, "InService")
    invoker.finish()
    assert invoker.failures == []
    assert done["EndpointConfigName"] == green
    assert "PendingDeploymentSummary" not in done
    assert [v["VariantName"] for v in done["ProductionVariants"]] == ["linear-model"]
    seen = Counter(invoker.seen)
    assert seen["xgboost-model"] > 0 and seen["linear-model"] > 0
    # Once switched, only the new fleet answers.
    last = invoker.seen.index("linear-model")
    assert "xgboost-model" not in invoker.seen[last:]


def test_update_that_cannot_load_rolls_back(slow_emulator):
    sm, s3 = _clients(slow_emulator)
    blue, _ = _two_configs(sm, s3)
    broken_model, broken = unique("broken"), unique("broken-config")
    create_model(sm, broken_model, f"s3://{BUCKET}/nothing/model.tar.gz")
    create_config(sm, broken, [("xgboost-model", broken_model, 1.0)])
    endpoint = unique("rollback")
    sm.create_endpoint(EndpointName=endpoint, EndpointConfigName=blue)
    wait_status(sm, endpoint, "InService")
    invoker = Invoker(slow_emulator.url, endpoint)
    invoker.start()
    sm.update_endpoint(EndpointName=endpoint, EndpointConfigName=broken)
    rolling = wait_status(sm, endpoint, "RollingBack")
    assert "Failed to download model data" in rolling["FailureReason"]
    back = wait_status(sm, endpoint, "InService")
    invoker.finish()
    assert invoker.failures == [] and invoker.seen
    assert back["EndpointConfigName"] == blue
    assert 'for container "container_1" from URL: "s3://serving-update/nothing/model.tar.gz"' in back["FailureReason"]


def test_canary_with_alarm_rolls_back_and_weights_update(slow_emulator):
    sm, s3 = _clients(slow_emulator)
    cloudwatch = boto3.client("cloudwatch", endpoint_url=slow_emulator.url, region_name="us-east-1")
    blue, green = _two_configs(sm, s3)
    endpoint = unique("canary")
    sm.create_endpoint(EndpointName=endpoint, EndpointConfigName=blue)
    wait_status(sm, endpoint, "InService")
    alarm = unique("latency-alarm")
    cloudwatch.put_metric_alarm(
        AlarmName=alarm,
        MetricName="ModelLatency",
        Namespace="AWS/SageMaker",
        Statistic="Average",
        Period=60,
        EvaluationPeriods=1,
        Threshold=1e9,
        ComparisonOperator="GreaterThanThreshold",
    )
    cloudwatch.set_alarm_state(AlarmName=alarm, StateValue="ALARM", StateReason="test")
    deployment = {
        "BlueGreenUpdatePolicy": {
            "TrafficRoutingConfiguration": {
                "Type": "CANARY",
                "CanarySize": {"Type": "CAPACITY_PERCENT", "Value": 50},
                "WaitIntervalInSeconds": 60,
            }
        },
        "AutoRollbackConfiguration": {"Alarms": [{"AlarmName": alarm}]},
    }
    sm.update_endpoint(EndpointName=endpoint, EndpointConfigName=green, DeploymentConfig=deployment)
    wait_status(sm, endpoint, "RollingBack")
    back = wait_status(sm, endpoint, "InService")
    assert back["EndpointConfigName"] == blue
    assert alarm in back["FailureReason"]

    # With the alarm back to OK the same canary deployment goes through.
    cloudwatch.set_alarm_state(AlarmName=alarm, StateValue="OK", StateReason="test")
    sm.update_endpoint(EndpointName=endpoint, EndpointConfigName=green, DeploymentConfig=deployment)
    done = wait_status(sm, endpoint, "InService", timeout=30)
    assert done["EndpointConfigName"] == green and "FailureReason" not in done
    assert done["LastDeploymentConfig"]["BlueGreenUpdatePolicy"]["TrafficRoutingConfiguration"]["Type"] == "CANARY"


def test_injected_deployment_failure_and_weights(emulator, sm, s3, runtime, clear_faults):
    blue, green = _two_configs(sm, s3)
    endpoint = unique("fault")
    inject_fault(emulator, {"type": "deployment_failure", "endpoint_name": endpoint, "count": 1})
    failed = deploy(sm, endpoint, blue)
    assert failed["EndpointStatus"] == "Failed"
    assert "did not pass the ping health check" in failed["FailureReason"]
    sm.delete_endpoint(EndpointName=endpoint)

    # A/B endpoint: move all traffic to one variant, then update with retained weights.
    blue_model = sm.describe_endpoint_config(EndpointConfigName=blue)["ProductionVariants"][0]["ModelName"]
    green_model = sm.describe_endpoint_config(EndpointConfigName=green)["ProductionVariants"][0]["ModelName"]
    ab, ab2 = unique("ab-config"), unique("ab2-config")
    create_config(sm, ab, [("champion", blue_model, 1.0), ("challenger", green_model, 1.0)])
    create_config(sm, ab2, [("champion", green_model, 1.0), ("challenger", blue_model, 1.0)])
    endpoint = unique("weights")
    assert deploy(sm, endpoint, ab)["EndpointStatus"] == "InService"
    with pytest.raises(ClientError) as unknown:
        sm.update_endpoint_weights_and_capacities(
            EndpointName=endpoint, DesiredWeightsAndCapacities=[{"VariantName": "nope", "DesiredWeight": 1.0}]
        )
    assert "nope" in unknown.value.response["Error"]["Message"]
    with pytest.raises(ClientError):
        sm.update_endpoint_weights_and_capacities(
            EndpointName=endpoint,
            DesiredWeightsAndCapacities=[
                {"VariantName": "champion", "DesiredWeight": 0.0},
                {"VariantName": "challenger", "DesiredWeight": 0.0},
            ],
        )
    sm.update_endpoint_weights_and_capacities(
        EndpointName=endpoint, DesiredWeightsAndCapacities=[{"VariantName": "champion", "DesiredWeight": 0.0}]
    )
    described = wait_status(sm, endpoint, "InService")
    weights = {v["VariantName"]: (v["CurrentWeight"], v["DesiredWeight"]) for v in described["ProductionVariants"]}
    assert weights == {"champion": (0.0, 0.0), "challenger": (1.0, 1.0)}
    seen = {
        runtime.invoke_endpoint(EndpointName=endpoint, ContentType="text/csv", Body=ROW)["InvokedProductionVariant"]
        for _ in range(30)
    }
    assert seen == {"challenger"}
    sm.update_endpoint(EndpointName=endpoint, EndpointConfigName=ab2, RetainAllVariantProperties=True)
    retained = wait_status(sm, endpoint, "InService")
    assert retained["EndpointConfigName"] == ab2
    assert {v["VariantName"]: v["CurrentWeight"] for v in retained["ProductionVariants"]} == {
        "champion": 0.0,
        "challenger": 1.0,
    }
