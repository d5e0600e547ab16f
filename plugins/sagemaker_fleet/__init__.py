"""Reusable Airflow pieces for per-location SageMaker model fleets.

Modules (import what you need; nothing heavy is imported here so DAG parsing stays fast):

- ``sagemaker_fleet.hooks.sagemaker``: :class:`SageMakerFleetHook`, the provider's SageMakerHook plus the calls it lacks
  (stop, delete, weights, listing, sagemaker-runtime invoke, MME listing, CloudWatch metrics).
- ``sagemaker_fleet.triggers.training``: :class:`TrainingJobTrigger` for deferrable training waits.
- ``sagemaker_fleet.operators.training``: :class:`SageMakerRetrySafeTrainingOperator`.
- ``sagemaker_fleet.operators.mme``: the MME registry operators.
- ``sagemaker_fleet.sensors.mme``: :class:`MMEModelAvailableSensor`.
- ``sagemaker_fleet.links.sagemaker``: extra links to training jobs and endpoints.
"""
