#!/usr/bin/env bash
# Promote to prod the app image digest that the dev stack built, pushed and proved.
#
# Prod does not build. With `imageSource: stack` (its committed config) prod
# reads dev's `imageRef` output itself through a StackReference, so promoting
# is: check that dev's digest can be pulled by prod's host, show what prod
# would change to (`pulumi preview --diff`), then apply it (`pulumi up`).
#
# Usage: scripts/promote.sh [--yes] [--unpin] [--expect-git-sha SHA]
#   --yes             apply without asking (CI)
#   --unpin           prod is pinned by a rollback (imageSource: pin): switch it
#                     back to following dev first (edits Pulumi.prod.yaml: commit it)
#   --expect-git-sha  refuse unless dev's image was built from this commit
#                     (the promotion workflow passes the commit it was started on)
#
# Environment: PULUMI_BACKEND_URL and PULUMI_CONFIG_PASSPHRASE are read by the
# Pulumi CLI itself; DEV_STACK (default dev), PROD_STACK (default prod),
# POLICY_PACK (default policy/, attached when policy/venv exists), PYTHON
# (default python3).
set -o errexit -o nounset -o pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
dev_stack=${DEV_STACK:-dev}
prod_stack=${PROD_STACK:-prod}
policy_pack=${POLICY_PACK:-$root/policy}
python=${PYTHON:-python3}

me=promote
# shellcheck source=scripts/prod-lib.sh
. "$root/scripts/prod-lib.sh"

assume_yes=false
unpin=false
expect_sha=""
while [ $# -gt 0 ]; do
    case $1 in
        --yes|-y) assume_yes=true ;;
        --unpin) unpin=true ;;
        --expect-git-sha)
            [ $# -ge 2 ] || die "--expect-git-sha needs a commit SHA"
            expect_sha=$2
            shift ;;
        -h|--help) awk 'NR > 1 && !/^#/ { exit } NR > 1 { sub(/^# ?/, ""); print }' "${BASH_SOURCE[0]}"; exit 0 ;;
        *) die "unknown argument: $1 (see --help)" ;;
    esac
    shift
done

command -v pulumi >/dev/null 2>&1 || die "the Pulumi CLI is not on PATH"
cd "$root"

# dev's outputs -> "imageRef gitSha" on stdout, or one line on stderr saying
# why that image cannot be promoted (and a non-zero status).
read_dev_image() {
    local outputs
    outputs=$(pulumi stack output --stack "$dev_stack" --json) \
        || die "cannot read the outputs of stack $dev_stack (is it deployed, and the backend reachable?)"
    OUTPUTS=$outputs DEV_STACK=$dev_stack "$python" - <<'PY'
import json, os, re, sys
stack = os.environ["DEV_STACK"]
def refuse(message):
    print(f"promote: ERROR: {message}", file=sys.stderr)
    sys.exit(1)
try:
    outputs = json.loads(os.environ["OUTPUTS"])
except ValueError:
    refuse(f"the outputs of stack {stack} are not JSON")
ref, pushed, sha = outputs.get("imageRef"), outputs.get("imagePushed"), outputs.get("gitSha", "")
if not isinstance(ref, str) or not ref:
    refuse(f"stack {stack} has no imageRef output: deploy {stack} first")
if pushed is not True:
    refuse(f"dev's image {ref} was not pushed to a registry (imagePushed={json.dumps(pushed)}): "
           f"prod's Docker host cannot pull it. Deploy {stack} with imageRegistry set, then promote.")
if not re.fullmatch(r"[^@\s]+@sha256:[0-9a-f]{64}", ref):
    refuse(f"stack {stack} exports imageRef {ref!r}, which is not repo@sha256:<64 hex>")
print(ref, sha or "unknown")
PY
}


dev_image=$(read_dev_image) || exit 1
image_ref=${dev_image%% *}
git_sha=${dev_image##* }
if [ -n "$expect_sha" ] && [ "$git_sha" != "$expect_sha" ]; then
    die "dev runs an image built from $git_sha, not $expect_sha: deploy that commit to dev first"
fi

source_kind=$(config_get imageSource)
case $source_kind in
    stack) ;;
    pin)
        $unpin || die "prod is pinned to $(config_get imagePin) (a rollback); pass --unpin to follow dev again"
        say "switching prod from its pin back to following $dev_stack (Pulumi.$prod_stack.yaml changes: commit it)"
        pulumi config set --stack "$prod_stack" imageSource stack
        pulumi config rm --stack "$prod_stack" imagePin >/dev/null 2>&1 || true ;;
    *) die "prod's imageSource is '${source_kind:-unset}', not stack: prod must not build" ;;
esac
source_stack=$(config_get imageSourceStack)
case $source_stack in
    "$dev_stack"|*/"$dev_stack") ;;
    *) die "prod reads its image from '${source_stack:-unset}', not from stack $dev_stack" ;;
esac

set_policy_args

message="promote $image_ref (dev git $git_sha)"
say "dev runs $image_ref (git $git_sha); what prod would change to:"
preview_and_confirm "$message" "Apply this to $prod_stack?"

# dev may have been redeployed while the preview ran: apply only what was shown.
now=$(read_dev_image) || exit 1
[ "${now%% *}" = "$image_ref" ] || die "dev moved to ${now%% *} during the preview; run promote again"

pulumi up --stack "$prod_stack" --yes --diff --message "$message" "${policy_args[@]}"

deployed=$(pulumi stack output --stack "$prod_stack" imageRef)
[ "$deployed" = "$image_ref" ] || die "prod's imageRef is $deployed after the update, expected $image_ref"
say "prod runs $image_ref"
