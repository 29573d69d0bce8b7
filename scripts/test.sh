#!/usr/bin/env bash
# The project's test command: installs what is missing, then checks formatting,
# lints and runs every test of the workspace. Needs root (tests create network
# namespaces, veth pairs and private Open vSwitch instances).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/cargo-env.sh
. scripts/cargo-env.sh

if [ "$(id -u)" -ne 0 ]; then
    echo "scripts/test.sh: run as root (tests create namespaces, links and OVS instances)" >&2
    exit 1
fi

scripts/setup.sh
cargo fmt --all --check
cargo clippy --workspace --all-targets -- -D warnings
cargo test --workspace --no-fail-fast
