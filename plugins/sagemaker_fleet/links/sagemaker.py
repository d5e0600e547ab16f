"""Extra links from a task to the SageMaker resource (or S3 object) it worked on.

They subclass the provider's ``BaseAwsLink``, so the console host follows the connection's partition
(``console.aws.amazon.com``, ``console.amazonaws.cn``, ``console.amazonaws-us-gov.com``). When the connection
has an ``endpoint_url`` (the local emulator) the link opens the emulator's JSON description of the resource
instead, at the *public* emulator URL when one is set (``[sagemaker_fleet] public_emulator_url``, e.g.
``http://localhost:4566`` under compose, where the workers' ``http://sagemaker-emulator:4566`` does not resolve
in a browser). The operator persists what the link needs to XCom in ``execute``, as the provider's links do,
so rendering a link in the UI needs neither the connection nor AWS.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import quote, urlsplit

from airflow.providers.amazon.aws.links.base_aws import BASE_AWS_CONSOLE_LINK, BaseAwsLink

from sagemaker_fleet.get_provider_info import EXTRA_LINKS
from sagemaker_fleet.utils.config import public_emulator_url

if TYPE_CHECKING:
    from airflow.sdk import BaseOperator, Context

__all__ = [
    "ALL_LINKS",
    "MMEArtifactLink",
    "MMERegistryRecordLink",
    "S3ReportLink",
    "SageMakerEndpointLink",
    "SageMakerProcessingJobLink",
    "SageMakerTrainingJobLink",
    "SageMakerTransformJobLink",
]

_SAGEMAKER_CONSOLE = BASE_AWS_CONSOLE_LINK + "/sagemaker/home?region={region_name}#/{section}/{name}"
_S3_CONSOLE = BASE_AWS_CONSOLE_LINK + "/s3/object/{bucket}?region={region_name}&prefix={key}"


class _FleetLink(BaseAwsLink):
    """What the package's links share: persisting from an operator and its hook, and the emulator form."""

    name: ClassVar[str]
    key: ClassVar[str]
    format_str: ClassVar[str]

    @classmethod
    def persist_for(cls, context: Context | dict[str, Any], operator: BaseOperator, **fields: str) -> None:
        """Store the link's fields with the hook's region, partition and (emulator) URL; a context without
        ``ti`` (a unit test calling ``execute({})``) stores nothing."""
        if not isinstance(context, dict) or context.get("ti") is None:
            return
        hook = operator.hook  # type: ignore[attr-defined]
        endpoint_url = hook.conn_config.get_service_endpoint_url(service_name="sagemaker")
        emulator_url = (public_emulator_url() or endpoint_url.rstrip("/")) if endpoint_url else None
        cls.persist(
            context=context,  # type: ignore[arg-type]
            operator=operator,
            region_name=hook.conn_region_name,
            aws_partition=hook.conn_partition,
            emulator_url=emulator_url,
            **fields,
        )

    def format_link(self, **conf: Any) -> str:
        if conf.get("emulator_url"):
            return self.emulator_link(conf["emulator_url"], conf)
        if not conf.get("aws_domain"):  # a partition BaseAwsLink does not know: no guessed host
            return ""
        return super().format_link(**self.quoted(conf))

    def quoted(self, conf: dict[str, Any]) -> dict[str, Any]:
        return conf

    def emulator_link(self, emulator_url: str, conf: dict[str, Any]) -> str:
        raise NotImplementedError


class _SageMakerResourceLink(_FleetLink):
    kind: ClassVar[str]  # the emulator's /_emulator/resources/<kind>/<name>
    section: ClassVar[str]  # the console's #/<section>/<name>
    format_str = _SAGEMAKER_CONSOLE

    def quoted(self, conf: dict[str, Any]) -> dict[str, Any]:
        return (
            {**conf, "section": self.section, "name": quote(conf.get("name") or "", safe="")}
            if conf.get("name")
            else {}
        )

    def emulator_link(self, emulator_url: str, conf: dict[str, Any]) -> str:
        name = conf.get("name")
        return f"{emulator_url}/_emulator/resources/{self.kind}/{quote(name, safe='')}" if name else ""


class SageMakerTrainingJobLink(_SageMakerResourceLink):
    """Link to the training job a task started or re-attached to."""

    name = "SageMaker Training Job"
    key = "sagemaker_fleet_training_job"
    kind = "training-job"
    section = "jobs"


class SageMakerProcessingJobLink(_SageMakerResourceLink):
    """Link to the processing job a task started or re-attached to."""

    name = "SageMaker Processing Job"
    key = "sagemaker_fleet_processing_job"
    kind = "processing-job"
    section = "processing-jobs"


class SageMakerTransformJobLink(_SageMakerResourceLink):
    """Link to the batch transform job a task started or re-attached to (the provider's link of the same name
    lacks the emulator form)."""

    name = "SageMaker Transform Job"
    key = "sagemaker_fleet_transform_job"
    kind = "transform-job"
    section = "transform-jobs"


class SageMakerEndpointLink(_SageMakerResourceLink):
    """Link to the endpoint a task deployed, updated, invoked or watched."""

    name = "SageMaker Endpoint"
    key = "sagemaker_fleet_endpoint"
    kind = "endpoint"
    section = "endpoints"


class _S3ObjectLink(_FleetLink):
    format_str = _S3_CONSOLE
    # On the emulator a browser cannot sign an S3 request: the link is a presigned GET (S3's maximum, 7 days),
    # made when the task ran. Never on AWS, where a credential-bearing URL must not sit in XCom.
    EMULATOR_LINK_SECONDS = 7 * 24 * 3600

    @classmethod
    def persist_for(cls, context: Context | dict[str, Any], operator: BaseOperator, **fields: str) -> None:
        hook = operator.hook  # type: ignore[attr-defined]
        if isinstance(context, dict) and context.get("ti") is not None and hook.endpoint_url:
            url = hook.s3_client.generate_presigned_url(
                "get_object",
                Params={"Bucket": fields["bucket"], "Key": fields["key"]},
                ExpiresIn=cls.EMULATOR_LINK_SECONDS,
            )
            public = public_emulator_url()
            if public:
                parsed = urlsplit(url)
                url = public + url[len(f"{parsed.scheme}://{parsed.netloc}") :]
            fields = {**fields, "object_url": url}
        super().persist_for(context, operator, **fields)

    def quoted(self, conf: dict[str, Any]) -> dict[str, Any]:
        if not conf.get("bucket") or not conf.get("key"):
            return {}
        return {**conf, "key": quote(conf["key"], safe="/")}

    def emulator_link(self, emulator_url: str, conf: dict[str, Any]) -> str:
        return conf.get("object_url") or ""


class MMEArtifactLink(_S3ObjectLink):
    """Link to the versioned model artifact a register task put under the MME prefix."""

    name = "MME Model Artifact"
    key = "sagemaker_fleet_mme_artifact"


class MMERegistryRecordLink(_S3ObjectLink):
    """Link to the location's registry record (its live version) that a register or promote task wrote."""

    name = "MME Registry Record"
    key = "sagemaker_fleet_mme_registry_record"


class S3ReportLink(_FleetLink):
    """Link to the folder of a run's report (JSON, PNG charts): the S3 console on AWS; locally the emulator's
    read-only S3 page, which shows the report's PNGs inline.

    For any task, TaskFlow ones included: persist with :meth:`persist_report` (a hook, a bucket and the
    report's prefix) and add ``S3ReportLink()`` to the task's ``operator_extra_links``.
    """

    name = "Report"
    key = "sagemaker_fleet_report"
    format_str = BASE_AWS_CONSOLE_LINK + "/s3/buckets/{bucket}?region={region_name}&prefix={prefix}&showversions=false"

    @classmethod
    def persist_report(cls, context: Context | dict[str, Any], hook: Any, *, bucket: str, prefix: str) -> None:
        """Store the link to ``s3://bucket/prefix`` (a folder, ending in ``/``) for the running task."""
        if not isinstance(context, dict) or context.get("ti") is None:
            return
        endpoint_url = hook.conn_config.get_service_endpoint_url(service_name="s3")
        emulator_url = (public_emulator_url() or endpoint_url.rstrip("/")) if endpoint_url else None
        cls.persist(
            context=context,  # type: ignore[arg-type]
            operator=context["task"],
            region_name=hook.conn_region_name,
            aws_partition=hook.conn_partition,
            emulator_url=emulator_url,
            bucket=bucket,
            prefix=prefix,
        )

    def quoted(self, conf: dict[str, Any]) -> dict[str, Any]:
        if not conf.get("bucket"):
            return {}
        return {**conf, "bucket": quote(conf["bucket"], safe=""), "prefix": quote(conf.get("prefix") or "", safe="")}

    def emulator_link(self, emulator_url: str, conf: dict[str, Any]) -> str:
        if not conf.get("bucket"):
            return ""
        return (
            f"{emulator_url}/_emulator/s3/{quote(conf['bucket'], safe='')}/{quote(conf.get('prefix') or '', safe='/')}"
        )


# Declared once, in get_provider_info.EXTRA_LINKS (which must stay free of imports); the plugin uses this.
ALL_LINKS: tuple[type[BaseAwsLink], ...] = tuple(globals()[path.rsplit(".", 1)[1]] for path in EXTRA_LINKS)
