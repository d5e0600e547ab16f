"""The Amazon provider's own training pieces, unchanged, pointed at the emulator through ``aws_default``."""

from __future__ import annotations

import pytest
from botocore.exceptions import WaiterError

from tests.emulator.helpers import training_request, unique, upload_housing_channels

BUCKET = "provider-tests"


@pytest.fixture(scope="module")
def channels(emulator):
    import boto3

    return upload_housing_channels(
        boto3.client("s3", endpoint_url=emulator.url, region_name="us-east-1"), BUCKET, "provider"
    )


def test_sagemaker_hook_reaches_the_emulator_through_the_connection(emulator, channels):
    from airflow.providers.amazon.aws.hooks.sagemaker import SageMakerHook

    hook = SageMakerHook(aws_conn_id="aws_default")
    assert hook.conn_config.endpoint_url == emulator.url
    name = unique("hook")
    config = training_request(name, channels, f"s3://{BUCKET}/output")
    # check_training_config runs HeadBucket and the prefix listing on the channels first.
    hook.create_training_job(config, wait_for_completion=True, print_log=False, check_interval=1)
    assert hook.describe_training_job(name)["TrainingJobStatus"] == "Completed"


def test_training_operator_with_log_tailing_and_check_if_job_exists(emulator, channels, capfd):
    # The provider re-describes a job only every 30 s while it tails logs, so this test takes ~30 s.
    from airflow.providers.amazon.aws.operators.sagemaker import SageMakerTrainingOperator

    name = unique("op")
    config = training_request(name, channels, f"s3://{BUCKET}/output")
    train = SageMakerTrainingOperator(
        task_id="train",
        config=config,
        wait_for_completion=True,
        print_log=True,
        check_interval=1,
        check_if_job_exists=True,
        action_if_job_exists="timestamp",
    )
    result = train.execute(context={})
    printed = "".join(capfd.readouterr())
    assert result["Training"]["TrainingJobStatus"] == "Completed"
    # print_log=True tails the job's CloudWatch stream into the task log.
    assert "#011train-rmse:" in printed
    assert "Billable seconds" in printed
    # A second run with the same name: the provider's documented behaviour is a timestamped new job.
    train_again = SageMakerTrainingOperator(
        task_id="train_again",
        config=training_request(name, channels, f"s3://{BUCKET}/output"),
        wait_for_completion=True,
        print_log=False,
        check_interval=1,
        check_if_job_exists=True,
    )
    again = train_again.execute(context={})
    assert again["Training"]["TrainingJobName"].startswith(f"{name}-")
    assert again["Training"]["TrainingJobStatus"] == "Completed"


def test_training_sensor_and_botocore_waiter(emulator, channels):
    import boto3
    from airflow.providers.amazon.aws.sensors.sagemaker import SageMakerTrainingSensor

    sm = boto3.client("sagemaker", endpoint_url=emulator.url, region_name="us-east-1")
    name = unique("sensor")
    sm.create_training_job(**training_request(name, channels, f"s3://{BUCKET}/output"))
    sm.get_waiter("training_job_completed_or_stopped").wait(
        TrainingJobName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 60}
    )
    wait = SageMakerTrainingSensor(task_id="wait", job_name=name, print_log=True)
    assert wait.poke(context={}) is True


def test_training_sensor_fails_on_a_failed_job(emulator, channels):
    import boto3
    from airflow.providers.amazon.aws.sensors.sagemaker import SageMakerTrainingSensor

    sm = boto3.client("sagemaker", endpoint_url=emulator.url, region_name="us-east-1")
    name = unique("sensorfail")
    sm.create_training_job(**training_request(name, channels, f"s3://{BUCKET}/output", hyperparameters={}))
    # botocore's waiter treats Failed as a terminal failure, as on AWS.
    with pytest.raises(WaiterError, match="Failed"):
        sm.get_waiter("training_job_completed_or_stopped").wait(
            TrainingJobName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 60}
        )
    wait = SageMakerTrainingSensor(task_id="wait", job_name=name, print_log=False)
    with pytest.raises(Exception, match="num_round"):
        wait.poke(context={})
