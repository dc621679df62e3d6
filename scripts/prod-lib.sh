# Shared by scripts/promote.sh and scripts/rollback.sh (sourced, not run): messages, prod's
# config, and the preview-then-confirm step both of them end with.
# The caller sets: me (its name), prod_stack, policy_pack, assume_yes.
# shellcheck shell=bash disable=SC2154  # the caller assigns me, prod_stack, policy_pack, assume_yes

say() { echo "$me: $*" >&2; }
die() { say "ERROR: $*"; exit 1; }

config_get() {
    pulumi config get --stack "$prod_stack" "$1" 2>/dev/null || true
}

# Sets policy_args: the policy pack, when its virtualenv exists (make policy-venv).
set_policy_args() {
    policy_args=()
    if [ -d "$policy_pack/venv" ]; then
        policy_args=(--policy-pack "$policy_pack")
    else
        say "WARNING: policy pack not attached ($policy_pack/venv missing; see docs/delivery.md, 'The policy pack')"
    fi
}

# preview_and_confirm MESSAGE QUESTION: show prod's diff, then ask (unless --yes).
preview_and_confirm() {
    pulumi preview --stack "$prod_stack" --diff --message "$1" "${policy_args[@]}"
    if ! $assume_yes; then
        [ -t 0 ] || die "no terminal to confirm on; pass --yes to apply"
        read -r -p "$2 [y/N] " answer
        case $answer in y|Y|yes) ;; *) die "not applied" ;; esac
    fi
}
