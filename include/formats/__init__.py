"""Data formats shared by the emulator's algorithms and the DAGs' data preparation (no Airflow, no AWS)."""
