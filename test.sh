#!/usr/bin/env bash
# Runs every check CI runs: installs what the tests need when it is missing, then formatting,
# lints and the whole test suite. Usage: ./test.sh
set -euo pipefail
cd "$(dirname "$0")"

# Debian packages: the real peers the tests start on loopback (OCI registry, git over HTTP and
# SSH, skopeo as a reference OCI client), git2's OpenSSL, and kubectl's peers.
packages=(pkg-config libssl-dev git docker-registry lighttpd openssh-server openssh-client skopeo openssl curl gzip prometheus)
missing=()
for package in "${packages[@]}"; do
    dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "installing: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    # The tests start these servers themselves; keep the packages' own services from starting.
    policy=/usr/sbin/policy-rc.d
    had_policy=0
    [ -e "$policy" ] && had_policy=1
    [ "$had_policy" = 1 ] || { printf '#!/bin/sh\nexit 101\n' > "$policy"; chmod +x "$policy"; }
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}"
    [ "$had_policy" = 1 ] || rm -f "$policy"
fi
# moto's S3 server for the Bucket tests; PyYAML for the upstream CRDs' compare.py.
if ! python3 -c "import moto, flask, flask_cors, boto3, yaml" >/dev/null 2>&1; then
    python3 -m pip install --quiet 'moto[s3]>=5,<6' flask flask-cors boto3 pyyaml
fi
# The real Kubernetes and Flux programs the tests compare against, built from the Go modules
# pinned under scripts/peers/ (cached in ~/.cache/ferroflux/peers; a second run builds nothing).
bash scripts/peers.sh build etcd kube-apiserver kube-controller-manager kubectl \
    flux source-controller kustomize-controller helm oci-conformance nats-server
if ! command -v cargo-nextest >/dev/null 2>&1; then
    cargo install --locked cargo-nextest
fi

# One build, no edits: incremental state would only cost disk (about 3 GB on a clean clone).
export CARGO_INCREMENTAL=0
cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings
cargo nextest run --workspace --no-fail-fast
# The controllers' end-to-end suites again, against the real kube-apiserver: same outcomes on both
# servers (leader.rs and api_restart.rs always start the embedded server themselves).
FERROFLUX_TEST_APISERVER=kube-apiserver cargo nextest run -p ferroflux-controllers --no-fail-fast \
    -E 'kind(test) - binary(leader) - binary(api_restart)'
