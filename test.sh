#!/usr/bin/env bash
# Runs every check CI runs: installs what the tests need when it is missing, then formatting,
# lints and the whole test suite. Usage: ./test.sh
set -euo pipefail
cd "$(dirname "$0")"

# Debian packages the tests and the build need (real peers on loopback, git2's OpenSSL).
packages=(pkg-config libssl-dev git docker-registry lighttpd apache2-utils)
missing=()
for package in "${packages[@]}"; do
    dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "installing: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
if ! command -v cargo-nextest >/dev/null 2>&1; then
    cargo install --locked cargo-nextest
fi

cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings
cargo nextest run --workspace --no-fail-fast
