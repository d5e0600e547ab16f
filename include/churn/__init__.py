"""The churn processing pipeline's domain code (seed notebook 004, the SageMaker overview): offline churn data,
the notebook's preprocessing and script-mode RandomForest scripts, requests, evaluation and the report."""
