#!/usr/bin/env bash
# Run a command with the Pulumi CLI, the state backend and the secrets passphrase set up: the one
# place that does it, for make up, preview, destroy, promote, rollback (and make check, --check).
#
# Usage: scripts/with-pulumi.sh [--check] COMMAND [ARGS...]
#   --check   no CLI needed (make check reads the stack file itself), and no refusal when no
#             passphrase is known: secrets are then reported present-but-encrypted
#
# - The CLI: the one on PATH, else the pinned one fetched into .tools/ (scripts/pulumi-cli.sh).
# - The backend: PULUMI_BACKEND_URL when set, else a file backend in .pulumi-state/. It is passed
#   to this invocation only: the CLI reads PULUMI_BACKEND_URL before the login it stored
#   (pulumi/pulumi pkg/workspace/creds.go, GetCurrentCloudURL), so nothing runs `pulumi login`
#   and the user's login for other projects is left as it was.
# - The passphrase (stacks on the passphrase secrets provider): PULUMI_CONFIG_PASSPHRASE or
#   PULUMI_CONFIG_PASSPHRASE_FILE when set; else, for the local .pulumi-state backend only, the
#   dev passphrase below. A shared backend never gets that default: its stacks' passphrase comes
#   from your team's secret store (docs/operations.md, first section).
# - .venv/bin (VENV) first on PATH: Pulumi.yaml's runtime runs the program with .venv's python,
#   and the promote/rollback scripts read JSON with python3.
set -o errexit -o nounset -o pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DEV_PASSPHRASE=dev-only-passphrase
check=false
if [ "${1:-}" = --check ]; then
    check=true
    shift
fi
[ $# -gt 0 ] || { echo "with-pulumi: usage: scripts/with-pulumi.sh [--check] COMMAND [ARGS...]" >&2; exit 2; }

local_backend=false
if [ -z "${PULUMI_BACKEND_URL:-}" ]; then
    PULUMI_BACKEND_URL="file://$root/.pulumi-state"
    $check || mkdir -p "$root/.pulumi-state"
    local_backend=true
fi
export PULUMI_BACKEND_URL

# Whether the stacks this command touches use the passphrase provider: a stack file that names
# another secretsprovider (awskms://, gcpkms://, azurekeyvault://, hashivault://) needs none, and
# Pulumi Cloud (https://) keeps its own keys by default.
uses_passphrase() {
    case $PULUMI_BACKEND_URL in https://*) return 1 ;; esac
    local file files
    # shellcheck disable=SC2206  # the glob is meant: every stack file when STACK is not given
    files=("$root"/Pulumi.${STACK:-*}.yaml)
    for file in "${files[@]}"; do
        [ -e "$file" ] || continue
        if ! grep -Eq '^secretsprovider:[[:space:]]*[a-z]+://' "$file"; then
            return 0
        fi
    done
    [ -n "${STACK:-}" ] && [ ! -e "$root/Pulumi.$STACK.yaml" ]  # a new stack: passphrase by default
}

source_of_passphrase="PULUMI_CONFIG_PASSPHRASE"
if [ -n "${PULUMI_CONFIG_PASSPHRASE_FILE:-}" ] && [ -z "${PULUMI_CONFIG_PASSPHRASE+set}" ]; then
    source_of_passphrase="PULUMI_CONFIG_PASSPHRASE_FILE ($PULUMI_CONFIG_PASSPHRASE_FILE)"
elif [ -z "${PULUMI_CONFIG_PASSPHRASE+set}" ]; then
    if $local_backend; then
        export PULUMI_CONFIG_PASSPHRASE=$DEV_PASSPHRASE
        source_of_passphrase="the dev default (local .pulumi-state backend only)"
    elif uses_passphrase; then
        if ! $check; then
            echo "with-pulumi: PULUMI_BACKEND_URL is a shared backend whose stacks use the passphrase provider: set PULUMI_CONFIG_PASSPHRASE or PULUMI_CONFIG_PASSPHRASE_FILE to their passphrase (from your team's secret store; docs/operations.md)" >&2
            exit 1
        fi
        source_of_passphrase="none (secrets are checked as present, not decrypted)"
    else
        source_of_passphrase="not needed (a secrets provider or Pulumi Cloud keeps the keys)"
    fi
fi

# The CLI last: a refusal above needs no download.
if ! $check; then
    cli=$(bash "$root/scripts/pulumi-cli.sh") || exit 1
    PATH="$(dirname "$cli"):$PATH"
fi
venv=${VENV:-.venv}
case $venv in /*) ;; *) venv="$root/$venv" ;; esac
PATH="$venv/bin:$PATH"
export PATH

# A backend URL may carry credentials (postgres://user:password@host): never print them.
shown_backend=$(printf '%s' "$PULUMI_BACKEND_URL" | sed -E 's#://[^/@]*@#://***@#')
$check || echo "with-pulumi: backend $shown_backend; passphrase: $source_of_passphrase" >&2
exec "$@"
