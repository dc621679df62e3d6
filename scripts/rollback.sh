#!/usr/bin/env bash
# Roll prod back to an earlier image digest, by pinning it.
#
# Sets prod's config to `imageSource: pin` and `imagePin: DIGEST`, shows what
# prod would change to (`pulumi preview --diff`), then applies it. If the
# preview fails or is not confirmed, prod's config is put back as it was.
#
# The pin lives in Pulumi.prod.yaml: commit it, so the repository says what
# prod runs. To follow dev again:
#   pulumi config set --stack prod imageSource stack
#   pulumi config rm --stack prod imagePin
# then `make promote` (or scripts/promote.sh --unpin, which does both).
#
# Usage: scripts/rollback.sh DIGEST [--yes]
#   DIGEST  repo@sha256:<64 hex>, e.g. one listed by
#           pulumi stack history --stack prod --json (see docs/operations.md,
#           "Which digests prod has run")
#   --yes   apply without asking
#
# Environment: PULUMI_BACKEND_URL and PULUMI_CONFIG_PASSPHRASE are read by the
# Pulumi CLI itself; PROD_STACK (default prod), POLICY_PACK (default policy/,
# attached when policy/venv exists).
set -o errexit -o nounset -o pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
prod_stack=${PROD_STACK:-prod}
policy_pack=${POLICY_PACK:-$root/policy}

me=rollback
# shellcheck source=scripts/prod-lib.sh
. "$root/scripts/prod-lib.sh"

digest=""
assume_yes=false
while [ $# -gt 0 ]; do
    case $1 in
        --yes|-y) assume_yes=true ;;
        -h|--help) awk 'NR > 1 && !/^#/ { exit } NR > 1 { sub(/^# ?/, ""); print }' "${BASH_SOURCE[0]}"; exit 0 ;;
        -*) die "unknown option: $1 (see --help)" ;;
        *)
            [ -z "$digest" ] || die "one DIGEST only (got $digest and $1)"
            digest=$1 ;;
    esac
    shift
done

[ -n "$digest" ] || die "usage: scripts/rollback.sh repo@sha256:<64 hex> [--yes]"
# A registry repository (no tag: the digest alone names the image) and a
# sha256 digest. A bare local image id cannot be pulled by prod's host.
repo=${digest%@*}
if ! [[ $digest =~ ^[a-z0-9][a-z0-9._/:-]*@sha256:[0-9a-f]{64}$ ]] || [[ ${repo##*/} == *:* ]]; then
    die "'$digest' is not repo@sha256:<64 hex> (lowercase, no tag), e.g. registry.example.com/django-docker/web@sha256:..."
fi

command -v pulumi >/dev/null 2>&1 || die "the Pulumi CLI is not on PATH"
cd "$root"

config_put_back() {
    if [ -n "$2" ]; then
        pulumi config set --stack "$prod_stack" "$1" "$2"
    else
        pulumi config rm --stack "$prod_stack" "$1" >/dev/null 2>&1 || true
    fi
}

previous_source=$(config_get imageSource)
previous_pin=$(config_get imagePin)
applied=false
restore() {
    if ! $applied; then
        say "prod's config put back (imageSource=${previous_source:-unset})"
        config_put_back imageSource "$previous_source"
        config_put_back imagePin "$previous_pin"
    fi
}
trap restore EXIT

pulumi config set --stack "$prod_stack" imageSource pin
pulumi config set --stack "$prod_stack" imagePin "$digest"

set_policy_args

message="rollback to $digest"
say "what prod would change to with $digest:"
preview_and_confirm "$message" "Roll $prod_stack back to this image?"

# From here the pin is what prod is being changed to: keep it even if the
# update fails half-way, so a retry aims at the same image.
applied=true
pulumi up --stack "$prod_stack" --yes --diff --message "$message" "${policy_args[@]}"

deployed=$(pulumi stack output --stack "$prod_stack" imageRef)
[ "$deployed" = "$digest" ] || die "prod's imageRef is $deployed after the update, expected $digest"
say "prod runs $digest, pinned. Commit Pulumi.$prod_stack.yaml."
