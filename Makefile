# Two commands on a fresh Debian machine (as root, like CI):
#   make up     set up, then `pulumi up` on the dev stack (needs the Pulumi CLI and a Docker engine)
#   make test   set up, start PostgreSQL, Redis and a Docker engine, run every test
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV ?= .venv
PY := $(VENV)/bin/python
STACK ?= dev
# A self-managed backend and a dev passphrase, so no Pulumi Cloud account is needed.
# Override both for shared stacks (CI uses repository secrets).
export PULUMI_BACKEND_URL ?= file://$(CURDIR)/.pulumi-state
export PULUMI_CONFIG_PASSPHRASE ?= dev-only-passphrase
# Services and the engine need root: use sudo where we are not (GitHub's runners).
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: help host-packages policy-venv setup services docker up preview lint test rehearse rehearse-release rehearse-faults rehearse-tls rehearse-swarm rehearse-remote rehearse-down benchmark promote rollback \
	status ps logs manage shell exec backup backups restore benchmark-ops

help:
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/'

# Host packages the install and the tests need: libpq headers (psycopg[c] builds from source),
# nginx (the rendered config is checked with `nginx -t`), openssl. Installed only when missing.
HOST_PACKAGES := pg_config:libpq-dev nginx:nginx-light openssl:openssl

host-packages:
	@missing=""; for pair in $(HOST_PACKAGES); do \
	    command -v $${pair%%:*} >/dev/null || [ -x /usr/sbin/$${pair%%:*} ] || missing="$$missing $${pair#*:}"; done; \
	if [ -n "$$missing" ]; then \
	    echo "make: installing$$missing"; $(SUDO) apt-get update -qq; \
	    $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; fi

$(VENV)/.installed: requirements.txt requirements-dev.txt django_app/requirements.txt django_app/requirements-test.txt
	$(MAKE) --no-print-directory host-packages
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip==25.3
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $@

setup: $(VENV)/.installed ## Create .venv with the pinned requirements

services: ## Start PostgreSQL and Redis on loopback for the Django tests (root; installs them if missing)
	$(SUDO) bash scripts/start-services.sh

docker: ## Make sure a Docker engine answers (root; installs docker.io if missing)
	$(SUDO) bash scripts/start-docker.sh

up: setup ## pulumi up on STACK (default dev); fetches the pinned Pulumi CLI into .tools/ when none is on PATH
	@cli=$$(bash scripts/pulumi-cli.sh) || exit 1; \
	export PATH="$$(dirname "$$cli"):$(CURDIR)/$(VENV)/bin:$$PATH"; \
	mkdir -p .pulumi-state && \
	pulumi login "$$PULUMI_BACKEND_URL" && \
	pulumi stack select --create $(STACK) && \
	pulumi up --stack $(STACK)

policy/venv/.installed: policy/requirements.txt
	python3 -m venv policy/venv
	policy/venv/bin/pip install --quiet -r policy/requirements.txt
	touch $@

policy-venv: policy/venv/.installed ## The policy pack's own virtualenv (pulumi runs the pack from it)

preview: setup policy-venv ## pulumi preview --diff on STACK with the policy pack
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" pulumi preview --stack $(STACK) --diff --policy-pack policy

lint: setup ## ruff (lint and format) and mypy, as pyproject.toml configures them
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy

test: setup services docker lint ## Lint and types, then every test: program (mocks), Django (real PostgreSQL/Redis), policy, workflows, rehearsal units
	$(PY) -m pytest

rehearse: setup docker ## Boot STACK's planned topology on the local Docker engine, smoke-test it, tear it down (ARGS=--keep keeps it)
	$(PY) -m rehearsal up $(STACK) $(ARGS)

rehearse-release: setup docker ## Boot STACK as `make rehearse` does, then rehearse every release scenario under load (ARGS="--scenario NAME" for some, ARGS=--faults then the faults too)
	$(PY) -m rehearsal release $(STACK) $(ARGS)

rehearse-faults: setup docker ## Boot STACK as `make rehearse` does, then rehearse every fault under load (ARGS="--fault NAME" for some)
	$(PY) -m rehearsal faults $(STACK) $(ARGS)

rehearse-tls: setup docker ## Boot STACK with HTTPS on (a certificate made for the run, as secret config) and prove TLS end to end
	$(PY) -m rehearsal tls $(STACK)

rehearse-swarm: setup docker ## STACK with target swarm on a private single-node swarm (a second engine): smoke, new-commit and unhealthy-release under load
	$(PY) -m rehearsal swarm $(STACK)

rehearse-remote: setup docker ## STACK on a Docker host reached over ssh (a real sshd) and TCP+TLS (a private engine): refusals, boot, day-2 commands, new-commit under load (ARGS="--transport ssh" for one)
	$(PY) -m rehearsal remote $(STACK) $(ARGS)

rehearse-down: setup ## Remove what `make rehearse ARGS=--keep` left running for STACK
	$(PY) -m rehearsal down $(STACK)

benchmark: setup ## How long evaluating each stack's program takes (3 and 50 web replicas)
	$(PY) scripts/benchmark.py

promote: setup ## Preview, then apply, prod running dev's pushed digest
	bash scripts/promote.sh $(ARGS)

rollback: setup ## Pin prod to an earlier digest: make rollback DIGEST=repo@sha256:...
	@test -n "$(DIGEST)" || { echo "make rollback: set DIGEST=repo@sha256:<64 hex>" >&2; exit 2; }
	bash scripts/rollback.sh "$(DIGEST)" $(ARGS)

# Day-2 commands (ops/): they find STACK's containers by label on the stack's own Docker host
# (`docker:host`, else DOCKER_HOST, else the local socket) and change none of its resources.
status: setup ## The running release (SHA, image, when), every container's health, the URL; exit 1 when unhealthy
	@$(PY) -m ops status $(STACK)

ps: setup ## STACK's containers, like `docker compose ps`
	@$(PY) -m ops ps $(STACK)

logs: setup ## Logs of SERVICE (default: all), replicas interleaved: make logs STACK=prod SERVICE=web ARGS="--since 10m -f"
	@$(PY) -m ops logs $(STACK) $(if $(SERVICE),--service $(SERVICE)) $(ARGS)

manage: setup ## python manage.py ARGS in a one-off container of the running release: make manage STACK=prod ARGS="createsuperuser"
	@$(PY) -m ops manage $(STACK) -- $(ARGS)

shell: setup ## Django's shell in a one-off container of the running release
	@$(PY) -m ops shell $(STACK) -- $(ARGS)

exec: setup ## ARGS in one running container of SERVICE: make exec STACK=prod SERVICE=web [REPLICA=2] ARGS="sh"
	@$(PY) -m ops exec $(STACK) --service $(or $(SERVICE),web) $(if $(REPLICA),--replica $(REPLICA)) -- $(ARGS)

backup: setup ## pg_dump STACK's database into its backups volume now
	@$(PY) -m ops backup $(STACK)

backups: setup ## List STACK's backups
	@$(PY) -m ops backups $(STACK)

restore: setup ## Replace STACK's database with BACKUP=<name> (ARGS=--stop-app stops the app meanwhile); a pre-restore backup first
	@test -n "$(BACKUP)" || { echo "make restore: set BACKUP=<name> (make backups STACK=$(STACK) lists them)" >&2; exit 2; }
	@$(PY) -m ops restore $(STACK) "$(BACKUP)" $(ARGS)

benchmark-ops: setup ## How long each day-2 command takes on STACK's running containers
	$(PY) -m ops.benchmark $(STACK)
