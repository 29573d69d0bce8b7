# Sourced by the scripts: under sudo, root's PATH and HOME lack the invoking
# user's rustup toolchain, so point PATH, RUSTUP_HOME and CARGO_HOME at it.
if ! command -v cargo >/dev/null 2>&1 && [ -n "${SUDO_USER:-}" ]; then
    sudo_home=$(getent passwd "$SUDO_USER" | cut -d: -f6)
    if [ -x "$sudo_home/.cargo/bin/cargo" ]; then
        export PATH="$sudo_home/.cargo/bin:$PATH"
        export CARGO_HOME="${CARGO_HOME:-$sudo_home/.cargo}"
        export RUSTUP_HOME="${RUSTUP_HOME:-$sudo_home/.rustup}"
    fi
    unset sudo_home
fi
