# Final image: the two statically linked binaries and nothing else (no shell,
# no libc): the CNI installer uses `sriov-ovs install`, the device plugin runs
# directly. Build the binaries first; scripts/build-image.sh does both steps:
#   cargo build --release --target x86_64-unknown-linux-gnu \
#     -p sriov-device-plugin -p sriov-ovs   (RUSTFLAGS="-C target-feature=+crt-static")
FROM scratch
COPY target/x86_64-unknown-linux-gnu/release/sriov-device-plugin /usr/bin/sriov-device-plugin
COPY target/x86_64-unknown-linux-gnu/release/sriov-ovs /usr/bin/sriov-ovs
USER 0
ENTRYPOINT ["/usr/bin/sriov-device-plugin"]
