"""housing_ab_rollout under the real scheduler: one run, triggered through the REST API as the UI does.

Deferred training and deployment (the triggerer), a setup/teardown pair, a probed blue/green update:
the run must end with the better challenger serving alone on the endpoint, verified, nothing rolled back.
The run is started by the ``ab_rollout_run`` fixture before the nightly tests and overlaps them.
"""

from __future__ import annotations

import json

from include.housing.ab_rollout import run_prefix
from tests.scheduler.conftest import AB_ENDPOINT, BUCKET, AirflowStack

DAG_ID = "housing_ab_rollout"
ENDPOINT = AB_ENDPOINT
RUN_TIMEOUT_S = 420


def test_ab_rollout_promotes_the_better_challenger(airflow_stack: AirflowStack, ab_rollout_run: str, s3) -> None:
    import boto3

    run_id = ab_rollout_run
    states = airflow_stack.wait_for_runs(DAG_ID, [run_id], RUN_TIMEOUT_S)
    tasks = airflow_stack.task_states(DAG_ID, run_id)
    assert states[run_id] == "success", tasks
    assert set(tasks.values()) == {"success"}, tasks

    run = airflow_stack.run(DAG_ID, run_id)
    assert run["logical_date"] is None  # no logical date: the date is the time it was queued for
    prefix = run_prefix(DAG_ID, run_id, run["run_after"][:10])
    key = f"ab-rollout/{ENDPOINT}/{prefix}/reports/rollout.json"
    report = json.loads(s3.get_object(Bucket=BUCKET, Key=key)["Body"].read())
    assert report["winner"] == "challenger", report

    sagemaker = boto3.client("sagemaker", endpoint_url=airflow_stack.emulator.url, region_name="us-east-1")
    endpoint = sagemaker.describe_endpoint(EndpointName=ENDPOINT)
    assert endpoint["EndpointStatus"] == "InService"
    config = sagemaker.describe_endpoint_config(EndpointConfigName=endpoint["EndpointConfigName"])
    (variant,) = config["ProductionVariants"]
    assert variant["VariantName"] == "challenger", config
