#!/usr/bin/env bash
# Put FILE on the pull request as one comment that later runs edit in place: the comment that
# starts with MARKER (an HTML comment, invisible on GitHub) is updated, else one is created. The
# release forecast's comment beside pulumi/actions' preview comment (.github/workflows/pull-request.yml).
#
# Usage: scripts/pr-comment.sh MARKER FILE    (GH_TOKEN, GITHUB_REPOSITORY and PR set; gh on PATH,
# as on GitHub's runners)
set -o errexit -o nounset -o pipefail

[ $# -eq 2 ] || { echo "pr-comment: usage: scripts/pr-comment.sh MARKER FILE" >&2; exit 2; }
marker=$1
file=$2
[ -r "$file" ] || { echo "pr-comment: $file: no such file" >&2; exit 2; }
: "${GITHUB_REPOSITORY:?pr-comment: GITHUB_REPOSITORY is not set}" "${PR:?pr-comment: PR (the pull request number) is not set}"

body="$marker
$(cat "$file")"
# The issues API lists a pull request's conversation comments (a pull request is an issue).
existing=$(gh api --paginate "repos/$GITHUB_REPOSITORY/issues/$PR/comments" \
    --jq ".[] | select(.body | startswith(\"$marker\")) | .id" | tail -n 1)
if [ -n "$existing" ]; then
    gh api --method PATCH "repos/$GITHUB_REPOSITORY/issues/comments/$existing" -f body="$body" > /dev/null
    echo "pr-comment: updated comment $existing on #$PR"
else
    gh api --method POST "repos/$GITHUB_REPOSITORY/issues/$PR/comments" -f body="$body" > /dev/null
    echo "pr-comment: commented on #$PR"
fi
