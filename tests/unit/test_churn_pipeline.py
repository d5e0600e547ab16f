"""include.churn.pipeline without AWS: Params, names, the SageMaker requests, scoring, evaluation and the report.

S3 is a dict-backed stand-in with the three calls the module makes (put_object, get_object, list_objects_v2).
"""

from __future__ import annotations

import io
import json
import tarfile

import numpy as np
import pytest

from include.churn import pipeline

SETTINGS = {"bucket": "sagemaker-fleet-local", "role_arn": "arn:aws:iam::123456789012:role/SageMakerExecution"}


class FakeS3:
    def __init__(self) -> None:
        self.objects: dict[tuple[str, str], bytes] = {}

    def put_object(self, Bucket: str, Key: str, Body: bytes, ContentType: str = "") -> None:
        self.objects[(Bucket, Key)] = Body

    def get_object(self, Bucket: str, Key: str) -> dict:
        return {"Body": io.BytesIO(self.objects[(Bucket, Key)])}

    def list_objects_v2(self, Bucket: str, Prefix: str) -> dict:
        keys = sorted(k for b, k in self.objects if b == Bucket and k.startswith(Prefix))
        return {"Contents": [{"Key": k} for k in keys]} if keys else {}


def make_plan(**params) -> dict:
    return pipeline.build_plan(params, SETTINGS, "2026-11-23", dag_id="churn_processing_pipeline",
                               run_id="manual__2026-11-23T00:00:00+00:00", region="us-east-1")  # fmt: skip


def test_plan_names_are_deterministic_valid_and_distinct() -> None:
    plan = make_plan()
    assert plan == make_plan()
    assert plan["prefix"].startswith("churn-20261123-") and len(plan["prefix"]) == 21
    assert plan["processing_job_name"] == plan["prefix"] + "-preprocessing"
    assert plan["training_job_names"] == {"xgboost": plan["prefix"] + "-xgb", "random_forest": plan["prefix"] + "-rf"}
    assert plan["images"]["xgboost"].endswith("/sagemaker-xgboost:0.90-2-cpu-py3")
    assert plan["images"]["sklearn"].endswith("/sagemaker-scikit-learn:1.2-1-cpu-py3")
    other = pipeline.build_plan({}, SETTINGS, "2026-11-23", dag_id="d", run_id="another", region="us-east-1")
    assert other["prefix"] != plan["prefix"]
    json.dumps(plan)  # XCom-safe


def test_bad_params_are_all_named_before_anything_is_created() -> None:
    with pytest.raises(pipeline.InvalidParamsError) as raised:
        pipeline.validate_params({"rows": 10, "n_estimators": 0, "train_test_split_ratio": 0.9, "deploy_best": False,
                                  "keep_endpoint": True, "endpoint_instance_type": "big", "color": "red"})  # fmt: skip
    message = str(raised.value)
    for expected in ("rows must be", "n_estimators must be", "train_test_split_ratio must be",
                     "keep_endpoint needs deploy_best", "endpoint_instance_type must be", "unknown parameter"):  # fmt: skip
        assert expected in message, message
    with pytest.raises(pipeline.InvalidParamsError, match="role_arn"):
        pipeline.environment_settings(lambda variable, env, default: "not-an-arn" if "role" in variable else None)
    with pytest.raises(ValueError, match="region"):
        pipeline.build_plan({}, SETTINGS, "2026-11-23", dag_id="d", run_id="r", region="../etc")


def test_requests_follow_the_notebook_and_the_sdk() -> None:
    plan = make_plan(n_estimators=7, train_test_split_ratio=0.25)
    processing = pipeline.processing_request(plan)
    assert processing["AppSpecification"]["ContainerArguments"] == ["--train-test-split-ratio", "0.25", "--no-header"]
    local = {i["InputName"]: i["S3Input"]["LocalPath"] for i in processing["ProcessingInputs"]}
    assert local == {"input-1": "/opt/ml/processing/input", "code": "/opt/ml/processing/input/code"}
    outputs = {o["OutputName"]: o["S3Output"]["S3Uri"] for o in processing["ProcessingOutputConfig"]["Outputs"]}
    assert outputs == {"train.csv": plan["processed"]["train"], "test.csv": plan["processed"]["test"]}

    training = pipeline.training_requests(plan)
    xgb, rf = training["xgboost"], training["random_forest"]
    assert xgb["HyperParameters"] == {"max_depth": "5", "subsample": "0.8", "num_round": "600", "eta": "0.2",
                                      "gamma": "4", "min_child_weight": "6", "silent": "0",
                                      "objective": "binary:logistic"}  # fmt: skip
    assert [c["ChannelName"] for c in xgb["InputDataConfig"]] == ["train", "validation"]
    # The SDK JSON-encodes every hyperparameter value.
    assert rf["HyperParameters"]["n_estimators"] == "7"
    assert rf["HyperParameters"]["sagemaker_program"] == '"sklearn_rf.py"'
    assert json.loads(rf["HyperParameters"]["sagemaker_submit_directory"]) == plan["sourcedir_uri"]
    assert rf["AlgorithmSpecification"]["TrainingImage"] == plan["images"]["sklearn"]

    model = pipeline.model_request(plan, "random_forest", "s3://b/rf/model.tar.gz")
    assert model["PrimaryContainer"]["Environment"]["SAGEMAKER_PROGRAM"] == "sklearn_rf.py"
    assert model["PrimaryContainer"]["Environment"]["SAGEMAKER_SUBMIT_DIRECTORY"] == plan["sourcedir_uri"]
    assert "Environment" not in pipeline.model_request(plan, "xgboost", "s3://b/x/model.tar.gz")["PrimaryContainer"]
    with pytest.raises(ValueError, match="no model artifact"):
        pipeline.model_request(plan, "xgboost", None)

    transform = pipeline.transform_request(plan, "xgboost")
    assert transform["ModelName"] == plan["model_names"]["xgboost"]
    assert transform["DataProcessing"] == {"InputFilter": "$[1:]", "JoinSource": "Input", "OutputFilter": "$[0,-1]"}
    assert transform["TransformInput"]["SplitType"] == "Line" and transform["TransformOutput"]["AssembleWith"] == "Line"

    spec = pipeline.endpoint_spec(plan, "xgboost", pipeline.model_request(plan, "xgboost", "s3://b/x/model.tar.gz"))
    assert spec["endpoint_config"]["ProductionVariants"][0]["ModelName"] == plan["model_names"]["xgboost"]
    with pytest.raises(ValueError, match="do not match"):
        pipeline.endpoint_spec(plan, "random_forest", spec["models"][0])


def test_teardown_keeps_only_what_keep_endpoint_asks_for() -> None:
    assert pipeline.run_resources(make_plan())["endpoints"] == [make_plan()["endpoint_name"]]
    kept = pipeline.run_resources(make_plan(keep_endpoint=True))
    assert kept["endpoints"] == [] and len(kept["models"]) == 2


def test_inputs_land_in_s3_with_a_packed_sourcedir() -> None:
    s3, plan = FakeS3(), make_plan(rows=600)
    summary = pipeline.upload_inputs(s3, plan)
    assert summary["raw_shape"] == [600, 21] and summary["churned"] + summary["stayed"] == 600
    bucket, key = plan["sourcedir_uri"].removeprefix("s3://").split("/", 1)
    with tarfile.open(fileobj=io.BytesIO(s3.objects[(bucket, key)])) as archive:
        assert archive.getnames() == ["sklearn_rf.py"]
        assert b"def model_fn" in archive.extractfile("sklearn_rf.py").read()
    assert pipeline.sourcedir_tarball() == pipeline.sourcedir_tarball()  # a retry uploads the same bytes


def test_evaluation_of_synthetic_scores() -> None:
    labels = np.array([0, 0, 0, 0, 1, 1, 0, 1])
    perfect = pipeline.evaluate_scores(labels, [0.1, 0.2, 0.3, 0.4, 0.9, 0.8, 0.2, 0.7])
    assert perfect["auc"] == 1.0 and perfect["accuracy"] == 1.0
    assert perfect["confusion_matrix"]["rows_true_columns_predicted"] == [[5, 0], [0, 3]]
    flawed = pipeline.evaluate_scores(labels, [0.6, 0.2, 0.3, 0.1, 0.9, 0.4, 0.2, 0.7])
    assert flawed["confusion_matrix"]["rows_true_columns_predicted"] == [[4, 1], [1, 2]]
    assert flawed["accuracy"] == 0.75 and 0.5 < flawed["auc"] < 1.0
    assert flawed["precision"] == pytest.approx(2 / 3) and flawed["recall"] == pytest.approx(2 / 3)
    assert flawed["roc_curve"]["fpr"][0] == 0.0 and flawed["roc_curve"]["tpr"][-1] == 1.0
    assert pipeline.choose_winner({"xgboost": flawed, "random_forest": perfect}) == "random_forest"
    assert pipeline.choose_winner({"xgboost": perfect, "random_forest": perfect}) == "xgboost"
    with pytest.raises(ValueError, match="probabilities"):
        pipeline.evaluate_scores(labels, [2.0] * 8)
    with pytest.raises(ValueError, match="one class"):
        pipeline.evaluate_scores([0, 0], [0.1, 0.2])


def test_transform_output_is_read_and_checked() -> None:
    s3, plan = FakeS3(), make_plan()
    bucket, prefix = plan["transform_output"]["xgboost"].removeprefix("s3://").split("/", 1)
    s3.put_object(Bucket=bucket, Key=prefix + "test.csv.out", Body=b"0,0.12\n1,0.93\n0,0.4\n")
    read = pipeline.read_transform_scores(s3, plan, "xgboost")
    assert read["labels"].tolist() == [0, 1, 0] and read["scores"].tolist() == [0.12, 0.93, 0.4]
    s3.put_object(Bucket=bucket, Key=prefix + "test.csv.out", Body=b"0,1.5,0.12\n")
    with pytest.raises(ValueError, match="2 columns"):
        pipeline.read_transform_scores(s3, plan, "xgboost")
    with pytest.raises(ValueError, match="no .out object"):
        pipeline.read_transform_scores(s3, plan, "random_forest")


def test_smoke_test_compares_the_endpoint_with_the_batch_scores() -> None:
    s3, plan = FakeS3(), make_plan()
    bucket, key = (plan["processed"]["test"] + "test.csv").removeprefix("s3://").split("/", 1)
    s3.put_object(Bucket=bucket, Key=key, Body=b"".join(b"%d,1.0,2.0,%d\n" % (i % 2, i) for i in range(8)))
    sent = []

    def xgboost_endpoint(body: str) -> bytes:  # 0.90-2 real time: one comma-joined line
        sent.append(body)
        return b"0.1,0.2,0.3,0.4,0.5"

    result = pipeline.smoke_test(s3, xgboost_endpoint, plan, "xgboost", [0.1, 0.2, 0.3, 0.4, 0.5, 0.6])
    assert result["rows"] == 5 and sent[0].splitlines()[0] == "1.0,2.0,0"  # features only, no label
    assert pipeline.smoke_test(s3, lambda body: b"0.1\n0.2\n0.3\n0.4\n0.5\n", plan, "random_forest",
                               [0.1, 0.2, 0.3, 0.4, 0.5])["max_difference_from_transform"] == 0  # fmt: skip
    with pytest.raises(ValueError, match="differ from the batch transform"):
        pipeline.smoke_test(s3, xgboost_endpoint, plan, "xgboost", [0.9, 0.2, 0.3, 0.4, 0.5])


def test_report_json_png_and_summary() -> None:
    s3, plan = FakeS3(), make_plan()
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 200)
    evaluations = {
        "xgboost": pipeline.evaluate_scores(labels, np.clip(labels * 0.6 + rng.uniform(0, 0.4, 200), 0, 1)),
        "random_forest": pipeline.evaluate_scores(labels, rng.uniform(0, 1, 200)),
    }
    trainings = {key: {"job_name": f"job-{key}", "metrics": {}, "billable_seconds": 3,
                       "model_artifact": "s3://b/m.tar.gz"} for key in pipeline.MODELS}  # fmt: skip
    report = pipeline.build_report(
        plan, data={"raw_shape": [3333, 21], "churned": 480}, processing={"job_name": "p", "outputs": {}},
        trainings=trainings, transforms={key: {"job_name": key} for key in pipeline.MODELS}, evaluations=evaluations,
    )  # fmt: skip
    assert report["winner"] == "xgboost" and report["test_rows"] == 200
    uris = pipeline.write_report(s3, plan, report)
    png = s3.objects[tuple(uris["png"].removeprefix("s3://").split("/", 1))]
    assert png.startswith(b"\x89PNG") and len(png) > 10_000
    stored = json.loads(s3.objects[tuple(uris["json"].removeprefix("s3://").split("/", 1))])
    assert stored["models"]["xgboost"]["auc"] == evaluations["xgboost"]["auc"]
    summary = pipeline.summary_text(report)
    assert "Winner by AUC, then accuracy: built-in XGBoost 0.90-2" in summary and "AUC" in summary
