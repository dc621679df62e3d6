#!/usr/bin/env bash
# Print the Pulumi CLI `make up` runs: the one on PATH, else the pinned version, fetched once into
# .tools/ and verified. On failure: one line on stderr that says what was tried and what to do.
#
# The version has one home: the SDK pin in requirements.txt (pulumi==X.Y.Z); the workflows pin
# the same (tests/workflows check it). Release assets as pulumi/pulumi's .goreleaser.yml names
# them: pulumi-v<version>-<os>-<x64|arm64>.tar.gz (line 86) and pulumi-<version>-checksums.txt
# (line 92). The archive's SHA-256 must match that checksums file's line for it.
set -o errexit -o nounset -o pipefail
cd "$(dirname "$0")/.."

if command -v pulumi >/dev/null 2>&1; then
    command -v pulumi
    exit 0
fi

version=$(sed -n 's/^pulumi==\([0-9][0-9.]*\)[[:space:]]*$/\1/p' requirements.txt)
if [ -z "$version" ]; then
    echo "make up: requirements.txt pins no pulumi==<version>: cannot tell which Pulumi CLI to fetch" >&2
    exit 1
fi
cli=".tools/pulumi-v$version/pulumi/pulumi"
if [ -x "$cli" ]; then
    echo "$PWD/$cli"
    exit 0
fi

case "$(uname -s)" in
    Linux) os=linux ;;
    Darwin) os=darwin ;;
    *) echo "make up: no Pulumi CLI on PATH, and no release of it for $(uname -s); install it: https://www.pulumi.com/docs/install/" >&2; exit 1 ;;
esac
case "$(uname -m)" in
    x86_64 | amd64) arch=x64 ;;
    aarch64 | arm64) arch=arm64 ;;
    *) echo "make up: no Pulumi CLI on PATH, and no release of it for $(uname -m); install it: https://www.pulumi.com/docs/install/" >&2; exit 1 ;;
esac

base="${PULUMI_RELEASES_URL:-https://github.com/pulumi/pulumi/releases/download}/v$version"
archive="pulumi-v$version-$os-$arch.tar.gz"
sums="pulumi-$version-checksums.txt"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

fetch() {
    # Bounded: an offline machine answers within the connect timeout, not after minutes.
    curl --fail --silent --show-error --location --connect-timeout 10 --max-time 300 --retry 2 --retry-max-time 20 \
        --output "$work/$1" "$base/$1" 2>"$work/curl.err"
}

if [ -t 2 ]; then echo "make up: no Pulumi CLI on PATH; fetching the pinned $version into .tools/ (once)" >&2; fi
for asset in "$sums" "$archive"; do
    if ! fetch "$asset"; then
        reason=$(tail -n 1 "$work/curl.err")
        echo "make up: could not download $base/$asset (${reason:-no answer}); install Pulumi CLI $version yourself (https://www.pulumi.com/docs/install/) or put it on PATH, then run make up again" >&2
        exit 1
    fi
done
expected=$(awk -v name="$archive" '$2 == name || $2 == "*" name { print $1 }' "$work/$sums")
actual=$(sha256sum "$work/$archive" | awk '{ print $1 }')
if [ -z "$expected" ] || [ "$expected" != "$actual" ]; then
    echo "make up: $archive does not match its SHA-256 in $sums (expected ${expected:-no entry}, got $actual); not installed" >&2
    exit 1
fi
mkdir -p ".tools/pulumi-v$version"
tar -xzf "$work/$archive" -C ".tools/pulumi-v$version"
if [ ! -x "$cli" ]; then
    echo "make up: $archive has no pulumi/pulumi inside; not installed" >&2
    exit 1
fi
echo "$PWD/$cli"
