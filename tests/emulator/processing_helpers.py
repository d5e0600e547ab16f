"""Processing-job requests, a synthetic churn CSV shaped like the seed notebook's raw_churn.csv, and the
notebook's preprocessing script (modernised) for the processing tests and the benchmark."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import numpy as np
import pandas as pd
from botocore.exceptions import WaiterError

from tests.emulator.helpers import ROLE_ARN

# The notebook's preprocessing.py as the churn DAG ships it (one copy, in include/churn/scripts).
CHURN_SCRIPT = Path(__file__).resolve().parents[2] / "include" / "churn" / "scripts" / "preprocessing.py"
SKLEARN_IMAGE = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:{version}-cpu-py3"
STATES = ["KS", "OH", "NJ", "OK", "AL", "MA", "MO", "LA", "WV", "IN", "RI", "IA", "MT", "NY", "ID", "VT"]


def churn_csv(rows: int = 1000, seed: int = 0) -> bytes:
    """Columns and value styles of the notebook's churn data (``Churn?`` is ``True.``/``False.``), a few
    missing values for the imputers."""
    rng = np.random.default_rng(seed)
    day_mins = rng.normal(180, 50, rows).round(1)
    service_calls = rng.poisson(1.5, rows)
    intl_plan = rng.choice(["yes", "no"], rows, p=[0.1, 0.9])
    churn_score = (day_mins - 180) / 50 + service_calls * 0.6 + (intl_plan == "yes") * 1.5
    frame = pd.DataFrame(
        {
            "State": rng.choice(STATES, rows),
            "Account Length": rng.integers(1, 240, rows),
            "Area Code": rng.choice([408, 415, 510], rows),
            "Phone": [f"{rng.integers(300, 999)}-{rng.integers(1000, 9999)}" for _ in range(rows)],
            "Int'l Plan": intl_plan,
            "VMail Plan": rng.choice(["yes", "no"], rows, p=[0.3, 0.7]),
            "VMail Message": rng.poisson(8, rows),
            "Day Mins": day_mins,
            "Day Calls": rng.integers(40, 160, rows),
            "Day Charge": (day_mins * 0.17).round(2),
            "Eve Mins": rng.normal(200, 50, rows).round(1),
            "Eve Calls": rng.integers(40, 160, rows),
            "Eve Charge": rng.normal(17, 4, rows).round(2),
            "Night Mins": rng.normal(200, 50, rows).round(1),
            "Night Calls": rng.integers(40, 160, rows),
            "Night Charge": rng.normal(9, 2, rows).round(2),
            "Intl Mins": rng.normal(10, 3, rows).round(1),
            "Intl Calls": rng.poisson(4, rows),
            "Intl Charge": rng.normal(2.7, 0.7, rows).round(2),
            "CustServ Calls": service_calls,
            "Churn?": np.where(churn_score + rng.normal(0, 1, rows) > 1.5, "True.", "False."),
        }
    )
    frame.loc[rng.choice(rows, rows // 50, replace=False), "Day Mins"] = np.nan
    frame.loc[rng.choice(rows, rows // 50, replace=False), "State"] = np.nan
    buffer = io.StringIO()
    frame.to_csv(buffer, index=False)
    return buffer.getvalue().encode()


def ensure_bucket(s3, bucket: str) -> None:
    with contextlib.suppress(s3.exceptions.BucketAlreadyOwnedByYou):
        s3.create_bucket(Bucket=bucket)


def s3_input(name: str, uri: str, local: str) -> dict:
    return {
        "InputName": name,
        "S3Input": {"S3Uri": uri, "LocalPath": local, "S3DataType": "S3Prefix", "S3InputMode": "File"},
    }


def s3_output(name: str, uri: str, local: str) -> dict:
    return {"OutputName": name, "S3Output": {"S3Uri": uri, "LocalPath": local, "S3UploadMode": "EndOfJob"}}


def processing_request(
    name: str,
    *,
    code_uri: str,
    script: str,
    inputs: list[dict] = (),
    outputs: list[dict] = (),
    arguments: list[str] | None = None,
    environment: dict | None = None,
    image: str | None = None,
    max_runtime: int = 600,
) -> dict:
    """What SKLearnProcessor.run sends: the code as input ``code`` at /opt/ml/processing/input/code and
    ``python3 <script>`` as the entrypoint."""
    request = {
        "ProcessingJobName": name,
        "RoleArn": ROLE_ARN,
        "AppSpecification": {
            "ImageUri": image or SKLEARN_IMAGE.format(version="1.2-1"),
            "ContainerEntrypoint": ["python3", f"/opt/ml/processing/input/code/{script}"],
        },
        "ProcessingResources": {
            "ClusterConfig": {"InstanceCount": 1, "InstanceType": "ml.m5.xlarge", "VolumeSizeInGB": 30}
        },
        "StoppingCondition": {"MaxRuntimeInSeconds": max_runtime},
        "ProcessingInputs": [*inputs, s3_input("code", code_uri, "/opt/ml/processing/input/code")],
    }
    if arguments:
        request["AppSpecification"]["ContainerArguments"] = arguments
    if outputs:
        request["ProcessingOutputConfig"] = {"Outputs": list(outputs)}
    if environment:
        request["Environment"] = environment
    return request


def wait_processing(sm, name: str, timeout_attempts: int = 600) -> dict:
    """botocore's own waiter (delay shortened), then the job as described."""
    waiter = sm.get_waiter("processing_job_completed_or_stopped")
    try:
        waiter.wait(ProcessingJobName=name, WaiterConfig={"Delay": 0.2, "MaxAttempts": timeout_attempts})
    except WaiterError as exc:  # the waiter's failure state: the caller asserts on the description
        if exc.last_response.get("ProcessingJobStatus") != "Failed":
            raise
    return sm.describe_processing_job(ProcessingJobName=name)
