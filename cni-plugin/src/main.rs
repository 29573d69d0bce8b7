//! The `sriov-ovs` CNI plugin binary: the process's environment, stdin and stdout handed to
//! [`sriov_ovs::run`]; with arguments (`install --dest DIR`, `--help`, `--version`) it is the installer;
//! `doctor [flags]` checks the node.

fn main() {
    let args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    if args.first().is_some_and(|a| a == "doctor") {
        let code = sriov_ovs::doctor::command_line(
            &args[1..],
            &mut std::io::stdout().lock(),
            &mut std::io::stderr().lock(),
        );
        std::process::exit(code);
    }
    if let Some(code) = sriov_ovs::install::command_line(
        &args,
        &mut std::io::stdout().lock(),
        &mut std::io::stderr().lock(),
    ) {
        std::process::exit(code);
    }
    let env = std::env::vars().collect();
    let code = sriov_ovs::run(&env, &mut std::io::stdin().lock(), &mut std::io::stdout().lock());
    std::process::exit(code);
}
