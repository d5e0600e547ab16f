"""TrainingJobTrigger: :class:`~sagemaker_fleet.triggers.jobs.SageMakerJobTrigger` for training jobs.

It stays in this module so triggers serialized under ``sagemaker_fleet.triggers.training.TrainingJobTrigger``
(deferred tasks in a running Airflow) resume after an upgrade.
"""

from __future__ import annotations

from sagemaker_fleet.triggers.jobs import DEFAULT_TIMEOUT_SECONDS, SageMakerJobTrigger

__all__ = ["DEFAULT_TIMEOUT_SECONDS", "TrainingJobTrigger"]


class TrainingJobTrigger(SageMakerJobTrigger):
    """Wait until a training job is Completed, Failed or Stopped (see :class:`SageMakerJobTrigger`)."""

    job_type = "training"
