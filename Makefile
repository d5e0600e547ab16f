# Two commands matter: `make run` (the main job on the local emulator) and `make test`.
# Every target creates .venv and installs requirements.txt when needed.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell md5sum requirements.txt 2>/dev/null | cut -c1-12)
export PYTHONPATH := $(CURDIR):$(CURDIR)/plugins
export PY
# Suites that `make test` leaves out: CI runs scheduler, distributed and ui after it (.ci/run);
# package downloads, so it runs by hand only.
SEPARATE_SUITES := scheduler or distributed or ui or package
# Kill -9 rounds of the chaos suite: 5 in `make test`, 20 (or CHAOS_ROUNDS=N) in `make chaos`.
CHAOS_ROUNDS ?= 20

.PHONY: install lint test test-fast chaos test-scheduler test-distributed test-ui test-package run run-distributed distributed-servers emulator bench clean

$(STAMP): requirements.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	@rm -f $(VENV)/.installed-*
	@touch $(STAMP)

install: $(STAMP)

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

# ruff, then unit, emulator, plugins, dags and chaos (5 rounds).
test: lint
	CHAOS_ROUNDS=5 $(PY) -m pytest -q -m "not ($(SEPARATE_SUITES))"

# Unit tests only: no server, under a minute.
test-fast: install
	.ci/suite unit -q

chaos: install
	CHAOS_ROUNDS=$(CHAOS_ROUNDS) .ci/suite chaos -q

test-scheduler: install
	.ci/suite scheduler -q

test-distributed: install distributed-servers
	.ci/suite distributed -q

# The browser test drives Debian's chromium (Playwright's own browser downloads are not used).
CHROMIUM := /usr/bin/chromium
$(CHROMIUM):
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium

test-ui: install $(CHROMIUM)
	.ci/suite ui -q

test-package: install
	.ci/suite package -q

run: install
	$(PY) -m include.launcher

# The CeleryExecutor shape as local processes: PostgreSQL, Redis, the emulator, Airflow with two Celery
# workers (include/distributed.py). Ports: AIRFLOW_PORT 8090, EMULATOR_PORT 4576, POSTGRES_PORT 5442,
# REDIS_PORT 6389; RUN_CONF='{"houses_per_location": 200}' for the triggered run.
run-distributed: install distributed-servers
	$(PY) -m include.distributed

# Debian's PostgreSQL and Redis servers, installed only when missing (apt-get update only when apt does
# not know them yet); as root on CI, through sudo elsewhere.
distributed-servers:
	@missing=""; \
	ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing="$$missing postgresql"; \
	command -v redis-server >/dev/null 2>&1 || missing="$$missing redis-server"; \
	if [ -n "$$missing" ]; then \
		sudo=""; [ "$$(id -u)" -eq 0 ] || sudo="sudo"; \
		echo "Installing$$missing with apt-get"; \
		apt-cache show $$missing >/dev/null 2>&1 || $$sudo apt-get update -qq || exit 1; \
		DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq --no-install-recommends $$missing || exit 1; \
	fi

emulator: install
	$(PY) -m include.sagemaker_emulator

bench: install
	$(PY) -m bench

clean:
	rm -rf .local

# The airflow command against the stack `make run` started (its AIRFLOW_HOME, DAGs, plugins and the
# emulator's aws_default), e.g. make airflow ARGS="dags list-runs housing_mme_nightly"
RUN_AIRFLOW_HOME := $(CURDIR)/.local/airflow
.PHONY: airflow
airflow: install
	@AIRFLOW_HOME=$(RUN_AIRFLOW_HOME) AIRFLOW__CORE__DAGS_FOLDER=$(CURDIR)/dags \
	AIRFLOW__CORE__PLUGINS_FOLDER=$(CURDIR)/plugins AIRFLOW__CORE__LOAD_EXAMPLES=False \
	AIRFLOW_CONN_AWS_DEFAULT='{"conn_type": "aws", "extra": {"endpoint_url": "http://127.0.0.1:'$${EMULATOR_PORT:-4566}'", "region_name": "us-east-1"}}' \
	AWS_ACCESS_KEY_ID=$${AWS_ACCESS_KEY_ID:-local} AWS_SECRET_ACCESS_KEY=$${AWS_SECRET_ACCESS_KEY:-local} \
	$(VENV)/bin/airflow $(ARGS)

# The nightly DAG with 200 locations under the real scheduler (<= 35 min); SCALE_LOCATIONS=N for another count.
.PHONY: bench-scale
bench-scale: install
	$(PY) -m bench.bench_scale --locations $${SCALE_LOCATIONS:-200}
