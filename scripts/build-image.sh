#!/usr/bin/env bash
# Builds the project's container image: the three binaries statically linked
# (glibc, -C target-feature=+crt-static) in release mode, then the image from
# the Dockerfile (FROM scratch) with podman, offline.
#
# Usage: scripts/build-image.sh [IMAGE]      (default localhost/sriov-ovs:<version>)
# Environment:
#   CARGO_TARGET_DIR   where cargo builds (default <repo>/target)
#   SKIP_CARGO_BUILD=1 reuse binaries already built by this script
#   BINARIES_ONLY=1    stop after building and checking the binaries (no podman)
# Run scripts/setup-podman.sh first on a fresh machine.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

version=$(sed -n '/^\[workspace.package\]/,/^\[/s/^version *= *"\(.*\)"/\1/p' Cargo.toml)
image=${1:-localhost/sriov-ovs:${version:-dev}}
triple=x86_64-unknown-linux-gnu
target_dir=${CARGO_TARGET_DIR:-$root/target}
bin_dir=$target_dir/$triple/release
binaries=(sriov-device-plugin sriov-ovs sriov-ovs-server)

if [ "${SKIP_CARGO_BUILD:-0}" != 1 ]; then
    # --target keeps build scripts and proc macros dynamic (host) while the
    # binaries get a static C runtime (ring's C code too).
    RUSTFLAGS="-C target-feature=+crt-static" \
        cargo build --release --target "$triple" -p sriov-device-plugin -p sriov-ovs \
            --bin sriov-device-plugin --bin sriov-ovs --bin sriov-ovs-server
fi

for b in "${binaries[@]}"; do
    if [ ! -x "$bin_dir/$b" ]; then
        echo "build-image: $bin_dir/$b is missing" >&2
        exit 1
    fi
    # A FROM scratch image has no dynamic loader: refuse dynamic binaries.
    if ldd "$bin_dir/$b" 2>&1 | grep -q '=>'; then
        echo "build-image: $bin_dir/$b is dynamically linked" >&2
        exit 1
    fi
done

if [ "${BINARIES_ONLY:-0}" = 1 ]; then
    echo "build-image: binaries in $bin_dir"
    exit 0
fi

# The build context holds only the Dockerfile, .dockerignore and the
# binaries at the paths the Dockerfile names, wherever CARGO_TARGET_DIR is.
context=$(mktemp -d)
trap 'rm -rf "$context"' EXIT
mkdir -p "$context/target/$triple/release"
for b in "${binaries[@]}"; do
    cp "$bin_dir/$b" "$context/target/$triple/release/$b"
done
cp Dockerfile .dockerignore "$context/"

podman build --pull=never --network=none --layers=false -t "$image" -f "$context/Dockerfile" "$context"
echo "build-image: built $image"
