//! Stand-in of Kube-OVN's CNI shim `/opt/cni/bin/kube-ovn` for the end-to-end tests; see
//! `integration_tests::kubeovn::shim` for what it follows and `KUBE_OVN_SHIM_REPLY`.

use std::io::Read;

fn main() {
    let env = std::env::vars().collect();
    let mut stdin = vec![];
    // An unreadable stdin is an empty netconf: the decode error reports it.
    let _ = std::io::stdin().read_to_end(&mut stdin);
    let code = integration_tests::kubeovn::shim::run(&env, &stdin, &mut std::io::stdout());
    std::process::exit(code);
}
