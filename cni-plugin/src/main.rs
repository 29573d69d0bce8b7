//! The `sriov-ovs` CNI plugin binary: the process's environment, stdin and stdout handed to [`sriov_ovs::run`].

fn main() {
    let env = std::env::vars().collect();
    let code = sriov_ovs::run(&env, &mut std::io::stdin().lock(), &mut std::io::stdout().lock());
    std::process::exit(code);
}
