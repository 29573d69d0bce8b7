# Final image: the three statically linked binaries and nothing else (no shell,
# no libc). The device plugin is the entrypoint; the CNI installer DaemonSet
# runs `/usr/bin/sriov-ovs install --dest /host/opt/cni/bin`, which copies the
# binary atomically without a shell; the node server DaemonSet runs
# `/usr/bin/sriov-ovs-server` (Kube-OVN's CNI shim talks to it).
#
# scripts/build-image.sh builds the binaries and this image:
#   RUSTFLAGS="-C target-feature=+crt-static" cargo build --release \
#     --target x86_64-unknown-linux-gnu -p sriov-device-plugin -p sriov-ovs \
#     --bin sriov-device-plugin --bin sriov-ovs --bin sriov-ovs-server
#   podman build -t IMAGE .      (context: the repository, or the script's staging copy)
FROM scratch
LABEL org.opencontainers.image.title="sriov-ovs" \
      org.opencontainers.image.description="SR-IOV device plugin, OVS-offload CNI plugin and Kube-OVN node server for switchdev NICs" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY target/x86_64-unknown-linux-gnu/release/sriov-device-plugin /usr/bin/sriov-device-plugin
COPY target/x86_64-unknown-linux-gnu/release/sriov-ovs /usr/bin/sriov-ovs
COPY target/x86_64-unknown-linux-gnu/release/sriov-ovs-server /usr/bin/sriov-ovs-server
USER 0
ENTRYPOINT ["/usr/bin/sriov-device-plugin"]
