# Two commands matter: `make run` (the main job on the local emulator) and `make test`.
# Both create .venv and install requirements.txt when needed.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell md5sum requirements.txt 2>/dev/null | cut -c1-12)
export PYTHONPATH := $(CURDIR):$(CURDIR)/plugins

.PHONY: install test lint run emulator bench clean

$(STAMP): requirements.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	@rm -f $(VENV)/.installed-*
	@touch $(STAMP)

install: $(STAMP)

lint: install
	$(VENV)/bin/ruff check .

test: lint
	$(PY) -m pytest -q

run: install
	$(PY) -m include.launcher

emulator: install
	$(PY) -m include.sagemaker_emulator

bench: install
	$(PY) -m bench

clean:
	rm -rf .local
