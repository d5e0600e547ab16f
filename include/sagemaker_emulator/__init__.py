"""A local SageMaker: one HTTP port that speaks the real AWS protocols.

S3, CloudWatch Logs, CloudWatch, IAM and STS are served by moto in-process; the SageMaker control
plane (awsJson1_1, ``X-Amz-Target: SageMaker.<Op>``) and runtime (``POST /endpoints/{name}/invocations``)
are this package's own code. Training really runs (xgboost, scikit-learn) in worker processes and
endpoints really serve predictions. Start it with ``python -m include.sagemaker_emulator``.
"""
