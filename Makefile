# Yixian — `make help` lists the targets.
.DEFAULT_GOAL := help
SHELL := /bin/bash
BOOTSTRAP := deploy/local/bootstrap.sh
# uv as the bootstrap installs it: on PATH, or else `$(PYTHON) -m uv` (pip put it off PATH)
PYTHON ?= python3
export PYTHON
UV ?= $(shell $(SHELL) $(BOOTSTRAP) uv-command)
export UV_PYTHON_DOWNLOADS ?= never
RUN := $(UV) run --frozen
STACK := $(RUN) python -m yixian.localstack

.PHONY: help
help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  \033[36m%-14s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: bootstrap
bootstrap: ## Install what this machine lacks: uv, a Java 17 JDK, Maven, PostgreSQL (as .ci/run does)
	@$(SHELL) $(BOOTSTRAP)

.PHONY: install
install: bootstrap ## Install the Python workspace (uv sync)
	$(UV) sync --frozen

.PHONY: up
up: install ## Start the local Kafka + PostgreSQL stack (idempotent)
	$(STACK) up

.PHONY: down
down: ## Stop what `make up` started
	$(STACK) down

.PHONY: status
status: ## Show the local stack's state
	$(STACK) status

.PHONY: clean-stack
clean-stack: ## Stop the stack and delete its data
	$(STACK) clean

.PHONY: test
test: install ## Run every test on the real stack (started if needed): in parallel, then the few that restart a server
	$(RUN) python -m yixian.localstack.testrun

.PHONY: test-unit
test-unit: install ## Run the unit tests only (no I/O)
	$(RUN) pytest -m "unit and not slow"

.PHONY: lint
lint: install ## ruff (lint + format check) and mypy --strict
	$(RUN) ruff check .
	$(RUN) ruff format --check .
	$(RUN) mypy

.PHONY: fmt
fmt: install ## Format and autofix
	$(RUN) ruff format .
	$(RUN) ruff check --fix .

.PHONY: schemas
schemas: install ## Export the event JSON Schemas and the AsyncAPI document into contracts/schemas/current
	$(RUN) python -m yixian.contracts.schemas export

.PHONY: schemas-check
schemas-check: install ## Fail if the committed schemas or AsyncAPI document are stale or break a published release
	$(RUN) python -m yixian.contracts.schemas check

.PHONY: chaos
chaos: up ## The chaos drill: 20,000 events while services, broker and database are killed
	$(RUN) pytest -m slow -s tests/e2e/test_chaos_drill.py

.PHONY: sim
sim: up ## The network simulation: 50 nodes on 5 node hosts, a day of 3,000 movements with faults; every replica pair compared (SIM_ARGS="--nodes 20 ...")
	$(RUN) python -m yixian.localstack.sim $(SIM_ARGS)

.PHONY: drills
drills: up ## The load drills at full size: 5,000 movements caught up, 10,000 invitations through a kill (~5 minutes)
	YIXIAN_DRILL_SCALE=full $(RUN) pytest -s tests/e2e/test_sync_resilience.py::test_partner_offline_while_origin_registers_thousands_catches_up tests/e2e/test_notify_fanout.py

.PHONY: capacity
capacity: install ## Rewrite docs/scale.md's tables (the national plan) from yixian.ops.capacity
	$(RUN) python -m yixian.ops.capacity --write docs/scale.md

.PHONY: simulate
simulate: install ## The link protocol simulated: 100,000 seeded schedules of loss, partitions, restarts, false claims (~5 minutes)
	$(RUN) python -m yixian.sync.simulation --schedules 100000 --jobs 2

.PHONY: bench
bench: up ## The benchmark: every figure beside a same-run ceiling or peer (~15 minutes)
	$(RUN) python -m yixian.bench

.PHONY: demo
demo: up ## The main job: three live nodes walk through the brief's scenarios; trace and notices
	$(STACK) demo
