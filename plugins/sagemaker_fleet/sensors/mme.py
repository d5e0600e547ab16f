"""MMEModelAvailableSensor: waits until a model under an MME prefix really answers on the endpoint.

A smoke test, not a status check: it sends ``payload`` with ``TargetModel`` and succeeds on the first 200,
so the first real request after registration does not pay for (or fail on) a bad artifact. Use
``mode="reschedule"`` to free the worker slot between pokes; each poke is one short request.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow.providers.amazon.aws.sensors.base_aws import AwsBaseSensor
from airflow.providers.amazon.aws.utils.mixins import aws_template_fields

from sagemaker_fleet.hooks.sagemaker import SageMakerFleetHook
from sagemaker_fleet.links.sagemaker import SageMakerEndpointLink

if TYPE_CHECKING:
    from airflow.sdk import Context

__all__ = ["MMEModelAvailableSensor"]


class MMEModelAvailableSensor(AwsBaseSensor[SageMakerFleetHook]):
    """Poke ``InvokeEndpoint(TargetModel=target_model)`` until it answers 200.

    Errors the model or endpoint can still recover from (the endpoint is Creating/Updating, the artifact is
    not in S3 yet, a cold load timed out, throttling) count as "not yet"; the prediction of the successful
    call is pushed to XCom as ``{"endpoint_name", "target_model", "prediction", "latency_ms", "invoked_variant"}``.

    :param endpoint_name: the multi-model endpoint
    :param target_model: the model's key relative to the MME prefix (``naming.mme_artifact_key``)
    :param payload: a request body the model accepts (e.g. one CSV row of features)
    :param content_type: the payload's content type
    """

    aws_hook_class = SageMakerFleetHook
    template_fields = aws_template_fields("endpoint_name", "target_model", "payload", "content_type")
    operator_extra_links = (SageMakerEndpointLink(),)

    def __init__(
        self,
        *,
        endpoint_name: str,
        target_model: str,
        payload: str,
        content_type: str = "text/csv",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.endpoint_name = endpoint_name
        self.target_model = target_model
        self.payload = payload
        self.content_type = content_type
        self._result: dict | None = None

    def poke(self, context: Context) -> bool:
        from botocore.exceptions import ClientError

        if not self.endpoint_name or not self.target_model or not self.payload:
            raise ValueError("endpoint_name, target_model and payload must all be non-empty")
        SageMakerEndpointLink.persist_for(context, self, name=self.endpoint_name)
        try:
            answer = self.hook.invoke_endpoint(
                self.endpoint_name, self.payload, content_type=self.content_type, target_model=self.target_model
            )
        except ClientError as error:
            err = error.response.get("Error", {})
            status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            self.log.info(
                "%s on %s not available yet (HTTP %s %s: %s)",
                self.target_model,
                self.endpoint_name,
                status,
                err.get("Code"),
                err.get("Message"),
            )
            return False
        prediction = answer["body"].decode("utf-8", errors="replace").strip()
        self.log.info(
            "%s answered on %s in %.0f ms: %s", self.target_model, self.endpoint_name, answer["latency_ms"], prediction
        )
        self._result = {
            "endpoint_name": self.endpoint_name,
            "target_model": self.target_model,
            "prediction": prediction,
            "latency_ms": round(answer["latency_ms"], 3),
            "invoked_variant": answer["invoked_variant"],
        }
        return True

    def execute(self, context: Context) -> dict | None:
        super().execute(context)
        return self._result
