#!/usr/bin/env bash
# The README's main command (run as root): installs what is missing, builds, brings up two
# simulated nodes (real OVN/OVS in userspace, simulated switchdev SR-IOV NICs), runs the overlay
# and underlay scenarios of the Kube-OVN offload guide through sriov-device-plugin and sriov-ovs,
# prints a result table and the datapath flows, and tears everything down.
#
#   sudo ./scripts/demo.sh            run, print, tear down; exit 1 if a scenario failed
#   sudo ./scripts/demo.sh --keep     leave the cluster up for inspection
#   sudo ./scripts/demo.sh --down     remove a cluster left by --keep
#   sudo ./scripts/demo.sh --vlan 100 underlay on VLAN 100 instead of untagged
#   sudo ./scripts/demo.sh --plain    pods through the type: sriov-ovs NAD instead of the
#                                     guide's Kube-OVN NAD and sriov-ovs-server (the default)
#   --release                         build and run optimised binaries
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/cargo-env.sh
. scripts/cargo-env.sh

if [ "$(id -u)" -ne 0 ]; then
    echo "scripts/demo.sh: run as root (it creates network namespaces, links and OVS instances)" >&2
    exit 2
fi

profile=debug
cargo_profile=()
args=()
for a in "$@"; do
    case "$a" in
        --release) profile=release; cargo_profile=(--release) ;;
        *) args+=("$a") ;;
    esac
done

target_dir="${CARGO_TARGET_DIR:-$PWD/target}"
demo="$target_dir/$profile/e2e-demo"

if [[ " ${args[*]-} " != *" --down "* ]] || [ ! -x "$demo" ]; then
    echo "==> installing what is missing"
    scripts/setup.sh
    echo "==> building sriov-device-plugin, sriov-ovs and the demo ($profile)"
    CARGO_TARGET_DIR="$target_dir" cargo build --quiet "${cargo_profile[@]}" \
        -p sriov-device-plugin -p sriov-ovs -p integration-tests --bins
fi

# The demo finds sriov-ovs and sriov-device-plugin next to itself.
E2E_NO_BUILD=1 exec "$demo" "${args[@]}"
