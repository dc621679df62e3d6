# Two commands on a fresh Debian machine (as root, like CI):
#   make up     .venv with requirements.txt, a Docker engine that answers, then `pulumi up` on the dev stack
#   make test   set up, start PostgreSQL, Redis and a Docker engine, run every test
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV ?= .venv
PY := $(VENV)/bin/python
STACK ?= dev
# The Pulumi CLI, the state backend and the secrets passphrase: set up in one place for every
# command that runs the CLI (scripts/with-pulumi.sh; docs/operations.md says where each comes from).
WITH_PULUMI := VENV=$(VENV) bash scripts/with-pulumi.sh
PULUMI := STACK=$(STACK) $(WITH_PULUMI)
# Who carries out each `pulumi up` of a rehearsal: the emulation, or `pulumi` (the real CLI on PATH).
ENGINE ?= emulation
# Services and the engine need root: use sudo where we are not (GitHub's runners).
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
# A leading -T in ARGS is the day-2 command's own (no TTY, as compose's -T), not the command's.
TTY_ARGS = $(if $(filter -T,$(firstword $(ARGS))),-T -- $(wordlist 2,$(words $(ARGS)),$(ARGS)),-- $(ARGS))

.PHONY: help host-packages registry-packages runtime policy-venv setup services docker engine check up preview destroy lint test \
	rehearse rehearse-release rehearse-faults rehearse-tls rehearse-acme benchmark-http rehearse-swarm rehearse-remote rehearse-down benchmark promote rollback \
	forecast status ps logs manage shell exec backup backups restore restore-drill renew-certificate maintenance on off benchmark-ops docs docs-check compose-import e2e \
	adopt sample runtime-image

help: ## Every target, and what it does
	@awk -F ':.*## ' '/^[a-z][a-z0-9-]*:.*## / { rows[++n] = $$1; text[n] = $$2; if (length($$1) > w) w = length($$1) } \
	    END { for (i = 1; i <= n; i++) printf "  make %-*s  %s\n", w, rows[i], text[i] }' $(MAKEFILE_LIST)

# Host packages the install and the tests need: libpq headers (psycopg[c] builds from source),
# nginx (the rendered config is checked with `nginx -t`), openssl. Installed only when missing.
HOST_PACKAGES := pg_config:libpq-dev nginx:nginx-light openssl:openssl

host-packages: ## Debian packages the tests need (libpq-dev, nginx, openssl); installed only when missing
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
	touch $(VENV)/.runtime $@

setup: $(VENV)/.installed ## .venv with everything pinned (requirements-dev.txt): tests, rehearsal, day-2, tools

# What `pulumi up` itself needs: the program's requirements only, no apt package.
$(VENV)/.runtime: requirements.txt
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip==25.3
	$(PY) -m pip install --quiet -r requirements.txt
	touch $@

runtime: $(VENV)/.runtime ## .venv with only what the program imports (requirements.txt): what make up installs

services: ## Start PostgreSQL and Redis on loopback for the Django tests (root; installs them if missing)
	$(SUDO) bash scripts/start-services.sh

docker: ## Make sure a Docker engine answers (root; installs docker.io if missing)
	$(SUDO) bash scripts/start-docker.sh

engine: runtime ## Whether STACK's Docker engine answers (docker:host, DOCKER_HOST or the local socket); installs nothing
	@$(PY) -m ops engine $(STACK)

check: runtime ## STACK's configuration as `pulumi up` would take it: no CLI, no engine; every problem, or one ok line
	@$(PULUMI) --check $(PY) -m planning.check $(STACK)

up: runtime engine ## pulumi up on STACK (default dev); fetches the pinned Pulumi CLI into .tools/ when none is on PATH
	@$(PULUMI) pulumi stack select --create --stack $(STACK)
	@$(PULUMI) pulumi up --stack $(STACK) $(ARGS)

destroy: runtime ## pulumi destroy on STACK (asks first; prod's protected volumes stop it: docs/operations.md)
	@$(PULUMI) pulumi destroy --stack $(STACK) $(ARGS)

policy/venv/.installed: policy/requirements.txt
	python3 -m venv policy/venv
	policy/venv/bin/pip install --quiet -r policy/requirements.txt
	touch $@

policy-venv: policy/venv/.installed ## The policy pack's own virtualenv (pulumi runs the pack from it)

preview: runtime policy-venv ## pulumi preview --diff on STACK with the policy pack
	@$(PULUMI) pulumi preview --stack $(STACK) --diff --policy-pack policy $(ARGS)

lint: setup ## ruff (lint and format) and mypy, as pyproject.toml configures them
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy

test: setup services docker lint ## Lint and types, then every test: program (mocks), Django (real PostgreSQL/Redis), policy, workflows, rehearsal units
	$(PY) -m pytest

rehearse: setup docker ## Boot STACK's planned topology on the local Docker engine, smoke-test it, tear it down (ARGS=--keep keeps it; ENGINE=pulumi: with the real Pulumi CLI)
	$(PY) -m rehearsal up $(STACK) --engine $(ENGINE) $(ARGS)

rehearse-release: setup docker ## Boot STACK as `make rehearse` does, then rehearse every release scenario under load (ARGS="--scenario NAME" for some, ARGS=--faults then the faults too; ENGINE=pulumi: the real Pulumi CLI on PATH carries out each up)
	$(PY) -m rehearsal release $(STACK) --engine $(ENGINE) $(ARGS)

rehearse-faults: setup docker ## Boot STACK as `make rehearse` does, then rehearse every fault under load (ARGS="--fault NAME" for some)
	$(PY) -m rehearsal faults $(STACK) $(ARGS)

rehearse-tls: setup docker ## Boot STACK with HTTPS on (a certificate made for the run, as secret config) and prove TLS end to end
	$(PY) -m rehearsal tls $(STACK)

rehearse-acme: setup docker ## Boot STACK with tlsMode acme against Pebble (Let's Encrypt's test CA, on this machine): certificate, renewal under load, a refusal
	$(PY) -m rehearsal acme $(STACK)

benchmark-http: setup docker ## Boot STACK as `make rehearse` does, then measure nginx's front door on 127.0.0.1: req/s and p99 of /health/, a page, a static file; then without upstream keep-alive and without gzip
	$(PY) -m rehearsal benchmark-http $(STACK)

rehearse-swarm: setup docker registry-packages ## STACK with target swarm on a private single-node swarm (a second engine), its accessories from a private registry: smoke, new-commit, unhealthy-release, nginx-config, backend-network under load (ENGINE=pulumi: the real Pulumi CLI on PATH carries out each up; ARGS="--scenario NAME")
	$(PY) -m rehearsal swarm $(STACK) --engine $(ENGINE) $(ARGS)

registry-packages: ## Debian's docker-registry and htpasswd (a private registry for the swarm and real-engine rehearsals); installed only when missing
	@command -v docker-registry >/dev/null && command -v htpasswd >/dev/null || { \
	    echo "make: installing docker-registry apache2-utils"; $(SUDO) apt-get update -qq; \
	    $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends docker-registry apache2-utils >/dev/null; }

rehearse-remote: setup docker ## STACK on a Docker host reached over ssh (a real sshd) and TCP+TLS (a private engine): refusals, boot, day-2 commands, new-commit under load (ARGS="--transport ssh" for one)
	$(PY) -m rehearsal remote $(STACK) $(ARGS)

rehearse-down: setup ## Remove what `make rehearse ARGS=--keep` left running for STACK
	$(PY) -m rehearsal down $(STACK)

benchmark: setup ## How long evaluating each stack's program takes (3 and 50 web replicas)
	$(PY) scripts/benchmark.py

promote: runtime ## Preview, then apply, prod running dev's pushed digest (ARGS=--yes, --unpin)
	@STACK=prod $(WITH_PULUMI) bash scripts/promote.sh $(ARGS)

rollback: runtime ## Pin prod to an earlier digest: make rollback DIGEST=repo@sha256:...
	@test -n "$(DIGEST)" || { echo "make rollback: set DIGEST=repo@sha256:<64 hex>" >&2; exit 2; }
	@STACK=prod $(WITH_PULUMI) bash scripts/rollback.sh "$(DIGEST)" $(ARGS)

# Day-2 commands (ops/): they find STACK's containers by label on the stack's own Docker host
# (`docker:host`, else DOCKER_HOST, else the local socket) and change none of its resources.
forecast: setup ## What the next `pulumi up` will do to STACK's running site: containers replaced and how, release jobs, migrations and the gate's verdict, the expected disruption (a preview; nothing changes)
	@$(PULUMI) $(PY) -m tools.forecast $(STACK) $(ARGS)

status: setup ## The running release (SHA, image, when), every container's health, the URL; exit 1 when unhealthy
	@$(PY) -m ops status $(STACK)

ps: setup ## STACK's containers, like `docker compose ps`
	@$(PY) -m ops ps $(STACK)

logs: setup ## Logs of SERVICE (default: all), replicas interleaved: make logs STACK=prod SERVICE=web ARGS="--since 10m -f"
	@$(PY) -m ops logs $(STACK) $(if $(SERVICE),--service $(SERVICE)) $(ARGS)

manage: setup ## python manage.py ARGS in a one-off container of the running release: make manage STACK=prod ARGS="createsuperuser" (ARGS="-T ...": no TTY)
	@$(PY) -m ops manage $(STACK) $(TTY_ARGS)

shell: setup ## Django's shell in a one-off container of the running release (ARGS=-T: no TTY, e.g. a piped script)
	@$(PY) -m ops shell $(STACK) $(TTY_ARGS)

exec: setup ## ARGS in one running container of SERVICE: make exec STACK=prod SERVICE=web [REPLICA=2] ARGS="sh" (ARGS="-T ...": no TTY)
	@$(PY) -m ops exec $(STACK) --service $(or $(SERVICE),web) $(if $(REPLICA),--replica $(REPLICA)) $(TTY_ARGS)

backup: setup ## pg_dump STACK's database into its backups volume now (and, with off-host storage, wait until its copy there is verified)
	@$(PY) -m ops backup $(STACK)

backups: setup ## List STACK's backups, in the volume and off-host
	@$(PY) -m ops backups $(STACK)

renew-certificate: setup ## tlsMode acme: renew STACK's certificate now (whatever its days left) and reload nginx
	@$(PY) -m ops renew-certificate $(STACK)

maintenance: setup ## nginx's maintenance page for STACK: `make maintenance STACK=prod on|off` (503 + Retry-After, static still served; a reload, never a new nginx); neither: whether it is on
	@$(PY) -m ops maintenance $(STACK) $(or $(filter on off,$(MAKECMDGOALS)),status)

# `make maintenance STACK=prod on`: on and off are maintenance's argument, not targets.
on off:
	@:

# FROM=offsite may need the age identity (backupEncryptionKey): the Pulumi CLI reads it from the
# stack's config, with the backend and passphrase of scripts/with-pulumi.sh.
restore: setup ## Replace STACK's database with BACKUP=<name>, or FROM=offsite [BACKUP=<name>] (default the newest there), or AT=<UTC time>|latest (the WAL archive); a pre-restore backup first (ARGS=--stop-app for a backup)
	@test -n "$(BACKUP)$(FROM)$(AT)" || { echo "make restore: set BACKUP=<name> (make backups STACK=$(STACK) lists them), FROM=offsite or AT=<time>" >&2; exit 2; }
	@$(if $(FROM),$(PULUMI) )$(PY) -m ops restore $(STACK) $(if $(BACKUP),"$(BACKUP)") $(if $(FROM),--from "$(FROM)") $(if $(AT),--at "$(AT)") $(ARGS)

restore-drill: setup ## Restore STACK's newest off-host backup (or BACKUP=<name>) into a throwaway PostgreSQL, check its tables, rows and migrate --check, remove it, record the result
	@$(PULUMI) $(PY) -m ops restore-drill $(STACK) $(if $(BACKUP),"$(BACKUP)") $(ARGS)

benchmark-ops: setup ## How long each day-2 command takes on STACK's running containers
	$(PY) -m ops.benchmark $(STACK)

# Tools (tools/), so that no documented command needs the virtualenv activated.
docs: setup ## Regenerate docs/configuration.md's key table and the topology diagrams after Pulumi.yaml changes
	$(PY) -m tools.config_reference --write
	$(PY) -m tools.topology --write

docs-check: setup ## Exit 1 when a generated table or diagram differs from what Pulumi.yaml and the plan say
	$(PY) -m tools.config_reference --check
	$(PY) -m tools.topology --check

adopt: setup docker ## Deploy your own Django project: make adopt APP=../myproject STACK=myproject (writes its Dockerfile and Pulumi.STACK.yaml; docs/adopt.md)
	@test -n "$(APP)" || { echo "make adopt: set APP=<the Django project's directory> and STACK=<a stack name>" >&2; exit 2; }
	@$(PY) -m tools.adopt "$(APP)" --stack $(STACK) $(ARGS)

sample: setup ## A sample Django project made the way a team has one, to try adopt on: make sample KIND=split|single DIR=/tmp/shop
	@test -n "$(KIND)" -a -n "$(DIR)" || { echo "make sample: set KIND=split|single and DIR=<an empty directory>" >&2; exit 2; }
	$(PY) -m rehearsal sample $(KIND) "$(DIR)"

runtime-image: setup ## Build the runtime's image on the local engine, for a plain `docker build` of an app's Dockerfile
	$(PY) -m tools.runtime_image

compose-import: setup ## Pulumi.STACK.yaml from compose files: make compose-import STACK=staging FILES="docker-compose.yml docker-compose.prod.yml"
	@test -n "$(FILES)" || { echo "make compose-import: set FILES=\"docker-compose.yml [docker-compose.prod.yml]\"" >&2; exit 2; }
	$(PY) -m tools.compose_import $(FILES) --stack $(STACK) $(ARGS)

e2e: setup ## The end-to-end run with the real Pulumi CLI: up, smoke, preview, a second release, destroy (docs/delivery.md)
	$(PY) -m tools.e2e $(ARGS)
