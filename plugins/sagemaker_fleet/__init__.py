"""Reusable Airflow pieces for per-location SageMaker model fleets, laid out like the Amazon provider.

Import what you need; nothing heavy is imported here, so DAG parsing stays fast:

- ``sagemaker_fleet.hooks.sagemaker``: :class:`SageMakerFleetHook`, the provider's SageMakerHook plus the calls it
  lacks (stop, delete, weights, listings, sagemaker-runtime invoke, MME listing, CloudWatch metrics and alarms),
  the endpoint state sets, ``describe_endpoint_or_none`` and the package's botocore waiters.
- ``sagemaker_fleet.operators``: ``training`` (retry-safe training), ``mme`` (the MME registry), ``deploy``
  (verified create/update, blue/green with rollback alarms), ``traffic`` (guarded weight shifts),
  ``ab_evaluation`` (paired A/B test and traffic split), ``teardown``.
- ``sagemaker_fleet.sensors``: ``endpoint`` (deferrable, rollback-aware) and ``mme`` (TargetModel smoke test).
- ``sagemaker_fleet.triggers``: ``training`` (the provider's SageMakerTrigger + on_kill) and ``endpoint``
  (an AwsBaseWaiterTrigger on ``waiters/sagemaker_fleet.json``).
- ``sagemaker_fleet.links.sagemaker``: partition-aware extra links (the provider's BaseAwsLink).
- ``sagemaker_fleet.utils``: name rules, the S3 URI parser, metrics, A/B statistics, reports, the endpoint
  probe, tags, deployment configs and settings; none of them imports Airflow at module level.
- ``sagemaker_fleet.run_settings``: environment-level settings and the run's date, the same in every task.

It imports nothing from a project's ``include/`` or ``dags/`` and installs on its own
(``pip install ./plugins``, distribution ``airflow-provider-sagemaker-fleet``).
"""
