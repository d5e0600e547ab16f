"""Extra links from a task to the SageMaker resource it worked on.

On AWS the link opens the SageMaker console; when the connection has an ``endpoint_url`` (the local
emulator) it opens the emulator's JSON description of the resource instead. The operator persists
what the link needs (name, region, endpoint_url) to XCom in ``execute``, as the provider's links do,
so rendering the link in the UI needs neither the connection nor AWS.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import quote

from airflow.providers.common.compat.sdk import BaseOperatorLink, XCom

if TYPE_CHECKING:
    from airflow.sdk import BaseOperator, Context
    from airflow.sdk.types import TaskInstanceKey

__all__ = ["SageMakerEndpointLink", "SageMakerTrainingJobLink", "resource_url"]

CONSOLE = "https://console.aws.amazon.com/sagemaker/home?region={region}#/{section}/{name}"
_SECTIONS = {"training-job": "jobs", "endpoint": "endpoints"}


def resource_url(kind: str, name: str, *, region_name: str | None, endpoint_url: str | None) -> str:
    """Console URL on AWS; ``<endpoint_url>/_emulator/resources/<kind>/<name>`` on the emulator."""
    if kind not in _SECTIONS:
        raise ValueError(f"kind must be one of {sorted(_SECTIONS)}, got {kind!r}")
    if not name:
        return ""
    if endpoint_url:
        return f"{endpoint_url.rstrip('/')}/_emulator/resources/{kind}/{quote(name, safe='')}"
    return CONSOLE.format(region=region_name or "us-east-1", section=_SECTIONS[kind], name=quote(name, safe=""))


class _SageMakerResourceLink(BaseOperatorLink):
    name: ClassVar[str]
    key: ClassVar[str]
    kind: ClassVar[str]

    @classmethod
    def persist(
        cls, context: Context | dict[str, Any], *, name: str, region_name: str | None, endpoint_url: str | None
    ) -> None:
        """Store what the link needs in XCom; a context without ``ti`` (a unit test) is a no-op."""
        ti = context.get("ti") if isinstance(context, dict) else None
        if ti is None:
            return
        ti.xcom_push(key=cls.key, value={"name": name, "region_name": region_name, "endpoint_url": endpoint_url})

    def get_link(self, operator: BaseOperator, *, ti_key: TaskInstanceKey) -> str:
        try:
            conf = XCom.get_value(key=self.key, ti_key=ti_key)
        except Exception:  # the UI must render even when XCom cannot be read
            return ""
        return self.format_link(conf)

    def format_link(self, conf: dict[str, Any] | None) -> str:
        if not conf:
            return ""
        return resource_url(
            self.kind, conf.get("name", ""), region_name=conf.get("region_name"), endpoint_url=conf.get("endpoint_url")
        )


class SageMakerTrainingJobLink(_SageMakerResourceLink):
    """Link to the training job a task started or re-attached to."""

    name = "SageMaker Training Job"
    key = "sagemaker_fleet_training_job"
    kind = "training-job"


class SageMakerEndpointLink(_SageMakerResourceLink):
    """Link to the endpoint a task deployed, updated or invoked."""

    name = "SageMaker Endpoint"
    key = "sagemaker_fleet_endpoint"
    kind = "endpoint"
