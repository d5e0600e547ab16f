# The image every service of docker-compose.yaml runs (Airflow components and the SageMaker emulator):
# the official Airflow 3.3.2 image plus the project's pinned requirements.txt.
# dags/, plugins/ and include/ are NOT baked in: docker-compose.yaml mounts them, so code changes need
# no rebuild. Rebuild (`docker compose build`) only when requirements.txt changes.
FROM apache/airflow:3.3.2-python3.11

USER root
# xgboost's wheel links libgomp (OpenMP), which the slim base image does not ship.
# /data is where the emulator keeps its state; a named volume mounted there starts as a copy of this
# directory, so it must already be writable by the airflow user (uid 50000, or any uid in group 0).
RUN apt-get update \
    && apt-get install -y --no-install-recommends libgomp1 \
    && apt-get clean \
    && rm -rf /var/lib/apt/lists/* \
    && mkdir -p /data /opt/airflow/auth \
    && chown 50000:0 /data /opt/airflow/auth \
    && chmod 2775 /data /opt/airflow/auth
USER airflow

COPY requirements.txt /requirements.txt
# Keep Airflow at the image's version (requirements.txt pins the same 3.3.2) while installing the rest.
RUN pip install --no-cache-dir "apache-airflow==${AIRFLOW_VERSION}" -r /requirements.txt
