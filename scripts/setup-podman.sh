#!/usr/bin/env bash
# Installs podman (Debian's, with runc) and configures it the way this project's
# image build and CNI runtime tests need it (run as root; idempotent):
#   - packages: podman, runc, busybox-static (a static busybox for test images),
#     containernetworking-plugins (the CNI reference plugins podman's CNI
#     backend calls);
#   - /etc/containers/containers.conf:
#       [containers] default_ulimits = ["nofile=20000:20000","nproc=32768:32768"]
#       [engine]     runtime = "runc"
#       [network]    network_backend = "cni"
#                    cni_plugin_dirs = [<existing entries>, "/usr/lib/cni", "/opt/cni/bin"]
#     Other settings already in the file are kept; keys we set are replaced in
#     their table, or added to it (the table is created when missing).
# Usage: scripts/setup-podman.sh [--config PATH]   (PATH for tests; default above)
set -euo pipefail

conf=/etc/containers/containers.conf
if [ "${1:-}" = "--config" ]; then
    conf=${2:?"--config needs a path"}
    shift 2
fi
if [ $# -ne 0 ]; then
    echo "usage: $0 [--config PATH]" >&2
    exit 2
fi

packages=(podman runc busybox-static containernetworking-plugins)
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
    if [ "$(id -u)" -ne 0 ]; then
        echo "setup-podman: must run as root to install ${missing[*]}" >&2
        exit 1
    fi
    echo "setup-podman: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# set_key TABLE KEY VALUE: sets KEY = VALUE in [TABLE] of $conf, replacing an
# existing (uncommented) KEY of that table, else appending it to the table,
# else appending the table. Single-line values only, which is all we write.
set_key() {
    local table=$1 key=$2 value=$3 tmp
    tmp=$(mktemp "${conf}.XXXXXX")
    awk -v table="$table" -v key="$key" -v value="$value" '
        function flush() { if (in_table && !done) { print key " = " value; done = 1 } }
        /^[[:space:]]*\[[^]]+\][[:space:]]*(#.*)?$/ {
            name = $0
            sub(/^[[:space:]]*\[/, "", name); sub(/\].*$/, "", name)
            if (in_table) flush()
            in_table = (name == table); if (in_table) seen = 1
            print; next
        }
        skipping { if ($0 ~ /\]/) skipping = 0; next }
        in_table && $0 ~ "^[[:space:]]*" key "[[:space:]]*=" {
            if (!done) { print key " = " value; done = 1 }
            # A multi-line array: drop its continuation lines too.
            rest = $0; sub(/#.*$/, "", rest)
            if (rest ~ /=[[:space:]]*\[/ && rest !~ /\]/) skipping = 1
            next
        }
        { print }
        END {
            if (in_table) flush()
            if (!seen) { print ""; print "[" table "]"; print key " = " value }
        }
    ' "$conf" >"$tmp"
    chmod 0644 "$tmp"
    mv -f "$tmp" "$conf"
}

# get_key TABLE KEY: prints the value of KEY in [TABLE] (all lines of a
# multi-line array, comments stripped).
get_key() {
    awk -v table="$1" -v key="$2" '
        collecting { sub(/#.*$/, ""); print; if ($0 ~ /\]/) exit; next }
        /^[[:space:]]*\[[^]]+\][[:space:]]*(#.*)?$/ {
            name = $0; sub(/^[[:space:]]*\[/, "", name); sub(/\].*$/, "", name)
            in_table = (name == table); next
        }
        in_table && $0 ~ "^[[:space:]]*" key "[[:space:]]*=" {
            sub("^[[:space:]]*" key "[[:space:]]*=[[:space:]]*", ""); sub(/#.*$/, "")
            print
            if ($0 ~ /^\[/ && $0 !~ /\]/) collecting = 1; else exit
        }
    ' "$conf"
}

mkdir -p "$(dirname "$conf")"
[ -f "$conf" ] || : >"$conf"

set_key containers default_ulimits '["nofile=20000:20000","nproc=32768:32768"]'
set_key engine runtime '"runc"'
set_key network network_backend '"cni"'

# cni_plugin_dirs: keep what is there, make sure ours are in it.
dirs=()
existing=$(get_key network cni_plugin_dirs)
if [ -n "$existing" ]; then
    while IFS= read -r d; do
        [ -n "$d" ] && dirs+=("$d")
    done < <(printf '%s\n' "$existing" | grep -o '"[^"]*"' | tr -d '"')
fi
for d in /usr/lib/cni /opt/cni/bin; do
    found=0
    for e in "${dirs[@]}"; do [ "$e" = "$d" ] && found=1; done
    [ $found -eq 1 ] || dirs+=("$d")
done
list=$(printf '"%s",' "${dirs[@]}")
set_key network cni_plugin_dirs "[${list%,}]"

echo "setup-podman: $(podman --version 2>/dev/null || echo 'podman missing'), config $conf"
