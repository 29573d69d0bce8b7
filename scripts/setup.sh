#!/usr/bin/env bash
# Installs what building and testing need on a fresh Debian machine (run as root):
# Open vSwitch, OVN, the CNI reference plugins, iproute2/ethtool, protoc, podman
# (image build and the CNI runtime tests, via setup-podman.sh) and the
# rustfmt/clippy components. Already-installed pieces are left alone.
set -euo pipefail

packages=(openvswitch-switch ovn-central ovn-host containernetworking-plugins
          iproute2 iputils-ping ethtool protobuf-compiler)
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
    echo "setup: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

"$(dirname "$0")/setup-podman.sh"

if ! command -v cargo >/dev/null; then
    echo "setup: cargo not found; install the Rust toolchain (rustup) first" >&2
    exit 1
fi
for c in rustfmt clippy; do
    rustup component list --installed 2>/dev/null | grep -q "^$c" || rustup component add "$c"
done
